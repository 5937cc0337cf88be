"""The cost of modify and commit does not grow with the basket.

Ceilings, counted as Django counts them (BEGIN, COMMIT and savepoints included),
documented in docs/api/services.rst. Each directive enqueued with a dedupe key
costs 3 statements (the NOTIFY that wakes workers on PostgreSQL is sent by a trigger).
``modify_session`` (one check directive) ≤ 5 + one directive; ``commit`` (a
price override, one post-commit directive, an auto transition, one
``on_enter`` directive) ≤ 12: its events are one INSERT, its directives another.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.services import CommitService, ModifyService, SessionWriteService
from tests.factories import create_session_at, make_channel

pytestmark = pytest.mark.django_db(transaction=True)



def per_directive() -> int:
    return 3  # savepoint, insert, release (PostgreSQL's NOTIFY comes from a trigger, no round trip)


def modify_ceiling() -> int:
    return 5 + per_directive()


def commit_ceiling() -> int:
    # BEGIN, the session, the key, the order, its items, the catalog's stations, the kitchen items, the events,
    # the session's UPDATE, the directives, the key's upsert, COMMIT.
    return 12


def _channel():
    return make_channel(
        config={
            "required_checks_on_commit": ["stock"],
            "post_commit_directives": ["notification.send"],
            "order_flow": {"auto_transitions": {"on_create": "confirmed"}, "on_enter": {"confirmed": ["kitchen.print"]}},
        }
    )


def _count_modify(lines: int) -> int:
    session = create_session_at(_channel(), lines=lines)
    line_id = session.items[-1]["line_id"]
    ops = [
        {"op": "add_line", "sku": "NEW", "qty": 1, "unit_price_q": 100},
        {"op": "set_qty", "line_id": line_id, "qty": 3},
        {"op": "set_line_meta", "line_id": line_id, "path": "note", "value": "no onions"},
        {"op": "set_data", "path": "customer.name", "value": "Ana"},
    ]
    with CaptureQueriesContext(connection) as ctx:
        ModifyService.modify_session(session.session_key, session.channel.code, ops, expected_rev=session.rev)
    return len(ctx.captured_queries)


def _count_commit(lines: int) -> int:
    session = create_session_at(_channel(), lines=lines)
    line_id = session.items[0]["line_id"]
    session = ModifyService.modify_session(
        session.session_key,
        session.channel.code,
        [{"op": "override_price", "line_id": line_id, "unit_price_q": 1, "reason": "staff", "actor": "m"}],
    )
    SessionWriteService.write_check(
        session.session_key, session.channel.code, check_code="stock", expected_rev=session.rev, result={}
    )
    with CaptureQueriesContext(connection) as ctx:
        result = CommitService.commit(session.session_key, session.channel.code, idempotency_key=uuid.uuid4().hex)
    assert result["items_count"] == lines
    # One bulk INSERT of the order's items; SQLite splits it at its bound-parameter limit
    # (999 per statement), PostgreSQL never: count it once.
    item_inserts = sum(q["sql"].startswith('INSERT INTO "omniman_orderitem"') for q in ctx.captured_queries)
    assert item_inserts >= 1
    if connection.vendor == "postgresql":
        assert item_inserts == 1
    return len(ctx.captured_queries) - (item_inserts - 1)


# The basket sizes of issue 19's growth target (benchmarks/bench_kernel.py prints the time of each).
SIZES = (5, 50, 200)


def test_modify_session_queries_do_not_grow_with_lines():
    counts = {lines: _count_modify(lines) for lines in (1, *SIZES)}
    assert len(set(counts.values())) == 1, counts
    assert counts[200] <= modify_ceiling()


def test_commit_queries_do_not_grow_with_lines():
    counts = {lines: _count_commit(lines) for lines in (1, *SIZES)}
    assert len(set(counts.values())) == 1, counts
    assert counts[200] <= commit_ceiling(), counts
