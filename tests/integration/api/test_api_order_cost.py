"""What one API order costs on the demo's counter channel, in statements and commits (issue 19).

The three requests of ``benchmarks/bench_api.py`` — open, modify (three
lines, two of them stock-tracked), commit with an idempotency key — on the
channel ``seed_demo`` makes, with the checks the project runs in the request
(``DISPATCH_ON_COMMIT``: the stock hold in the modify's transaction, the
ticket number in the commit's, ``engine.dispatch_before_commit``). The counts are those of ``docs/deployment/performance.rst``
(*The REST API*); a change that adds a statement or a commit to an order shows
here first. Counted as Django counts them (BEGIN, COMMIT and savepoints
included).
"""

from __future__ import annotations

import uuid

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.contrib.stock.models import StockHold
from omniman.models import Directive, Order, Session
from tests.integration.api.conftest import make_user, token_client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.contrib(
        "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock", "omniman.contrib.refs"
    ),
]

LINES = [("PDQ", 2), ("CRO", 1), ("ESP", 1)]  # benchmarks/bench_api.py's order: PDQ and CRO are stock-tracked

# Statements (open, modify, commit) and commits per counter order, as measured; the same on both databases (a
# directive run before the commit opens its savepoint in a statement of its own: PostgreSQL's prepared statements
# take one command at a time), but for the open (one more on SQLite) and the ticket's writes (one statement on
# PostgreSQL, three on SQLite).
# open: a new basket is one autocommitted statement (no BEGIN/COMMIT: counted as no commit) that reads the
# channel and inserts the session on PostgreSQL; elsewhere the channel's read and the insert. modify: the kitchen's
# 86 list is read by the statement that locks the session; the check runs in its transaction, on the session it
# holds (no second transaction, no re-read; the answer carries the check), its others' and own holds one read.
# commit: the key upserted in its transaction (not read first: the upsert finds a key that is another's), the order
# inserted confirmed, its events in one INSERT, its directives in another, and the ticket (the counter bump, the
# ref, the event: one data-modifying WITH on PostgreSQL; the order the commit holds is shared with it, not locked
# again) run before the COMMIT. The catalog's rows, prices and option-group flags are one read
# (CatalogPricingBackend.read_for_lines). A directive run before the commit (the stock hold, the ticket) is
# inserted already done: its run is its savepoint's statement and its handler's, no done mark of its own.
# Issue 19, fifth pass: open 5 → 2 (h-open), modify 15 → 12 (h-open, h-modify, h-engine), commit 19 → 14 (h-commit,
# h-engine).
STATEMENTS = {"open": 2, "modify": 12, "commit": 14}
SQLITE_TICKET = 2  # the ticket's bump, ref and event are three statements on SQLite
COMMITS = {"open": 0, "modify": 1, "commit": 1}


@pytest.fixture
def counter(settings):
    call_command("seed_demo", "--no-users", verbosity=0)
    Session.objects.all().delete()  # the demo's open baskets
    settings.OMNIMAN = {**settings.OMNIMAN, "DISPATCH_ON_COMMIT": ["stock.hold", "pricing.check", "refs.assign_ticket"]}
    return token_client(make_user("counter-manager", "manager"))


def place(client) -> dict[str, tuple[int, int]]:
    counts = {}

    def post(kind: str, path: str, body: dict) -> dict:
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(path, body, format="json")
        assert response.status_code in (200, 201), (kind, response.content)
        sql = [q["sql"] for q in ctx.captured_queries]
        counts[kind] = (len(sql), sum(q.strip().upper() == "COMMIT" for q in sql))
        return response.json()

    opened = post("open", "/api/sessions/", {"channel_code": "counter"})
    ops = [{"op": "add_line", "sku": sku, "qty": qty, "unit_price_q": 500} for sku, qty in LINES]
    modified = post(
        "modify",
        f"/api/sessions/{opened['session_key']}/modify/",
        {"channel_code": "counter", "ops": ops, "expected_rev": opened["rev"]},
    )
    session = Session.objects.get(session_key=modified["session_key"])
    assert session.data["checks"]["stock"]["status"] == "ok"  # the hold ran in the request, in its transaction
    assert not Directive.objects.filter(topic="stock.hold").exclude(status="done").exists()  # its directive is done
    assert modified["checks"]["stock"]["status"] == "ok"  # and the answer shows it (SessionService.as_checked)
    committed = post(
        "commit",
        f"/api/sessions/{opened['session_key']}/commit/",
        {"channel_code": "counter", "idempotency_key": uuid.uuid4().hex},
    )
    order = Order.objects.get(ref=committed["order_ref"])
    assert order.events.filter(type="ticket.assigned").exists()  # the ticket number was assigned in the request
    assert Directive.objects.get(topic="refs.assign_ticket", payload__order_ref=order.ref).status == "done"
    assert StockHold.objects.filter(reference=opened["session_key"]).count() == 2
    return counts


def test_a_counter_order_costs_its_statements_and_commits(counter):
    place(counter)  # the first order warms per-process statements (token, session, catalog SQL)
    counts = place(counter)
    expected = dict(STATEMENTS)
    if connection.vendor != "postgresql":
        expected["open"] += 1
        expected["commit"] += SQLITE_TICKET
    assert {kind: n for kind, (n, _) in counts.items()} == expected
    assert {kind: c for kind, (_, c) in counts.items()} == COMMITS
