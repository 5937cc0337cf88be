"""The stock check applies hold deltas: its writes do not grow with the tab; finished holds are purged."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from omniman.contrib.stock.models import StockHold, StockLevel
from omniman.models import Directive, Session
from omniman.services import ModifyService, SessionService
from tests.factories import make_channel

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stock_app")]

STOCK_CHECK = {"required_checks_on_commit": ["stock"], "checks": {"stock": {"directive_topic": "stock.hold", "label": "Stock"}}}
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@pytest.fixture
def stock_app(settings):
    from django.apps import apps

    if not apps.is_installed("omniman.contrib.stock"):
        pytest.skip("omniman.contrib.stock is not installed in this test run")


def open_tab(lines: int, prefix: str) -> Session:
    channel = make_channel(f"tab-{prefix}".lower(), config=STOCK_CHECK, pricing_policy="internal")
    skus = [f"{prefix}-{i:03}" for i in range(lines + 1)]
    StockLevel.objects.bulk_create([StockLevel(sku=sku, on_hand=Decimal(100), track=True) for sku in skus])
    session = SessionService.open_session(
        channel.code, items=[{"sku": sku, "qty": "1", "unit_price_q": 500, "name": sku} for sku in skus[:-1]]
    )
    check(session)
    return session


def check(session: Session) -> dict:
    """Run the session's pending stock check as the engine runs it; its write statements and hold rows written."""
    from omniman import engine

    directive = Directive.objects.filter(topic="stock.hold", payload__session_key=session.session_key).latest("pk")
    before = dict(StockHold.objects.filter(reference=session.session_key).values_list("pk", "updated_at"))
    with CaptureQueriesContext(connection) as queries:
        result = engine.process(topics=["stock.hold"], requeue=False)
    assert result.outcomes == [(directive.pk, "done")], result
    after = dict(StockHold.objects.filter(reference=session.session_key).values_list("pk", "updated_at"))
    return {
        "statements": sum(bool(WRITE.match(q["sql"])) for q in queries if "omniman_directive" not in q["sql"]),
        "hold_rows": sum(1 for pk, at in after.items() if before.get(pk) != at),
    }


def modify(session: Session, ops: list[dict]) -> Session:
    return ModifyService.modify_session(session.session_key, session.channel.code, ops)


def test_the_checks_writes_do_not_grow_with_the_tabs_lines():
    costs = {}
    for lines, prefix in ((5, "FEW"), (50, "MANY")):
        session = open_tab(lines, prefix)
        assert StockHold.objects.filter(reference=session.session_key, status="active").count() == lines
        # A tap adds a line: one hold inserted, none of the others touched.
        session = modify(session, [{"op": "add_line", "sku": f"{prefix}-{lines:03}", "qty": "1", "unit_price_q": 500}])
        added = check(session)
        assert added["hold_rows"] == 1, added
        # A tap changes a quantity: that SKU's hold changed in place, nothing inserted or released.
        line = session.lines[0]
        session = modify(session, [{"op": "set_qty", "line_id": line["line_id"], "qty": "2"}])
        changed = check(session)
        assert changed["hold_rows"] == 1, changed
        assert StockHold.objects.filter(reference=session.session_key, status="active").count() == lines + 1
        assert not StockHold.objects.filter(reference=session.session_key).exclude(status="active").exists()
        assert StockHold.objects.get(reference=session.session_key, sku=line["sku"]).qty == 2
        # The check lists all the tab's live holds.
        result = Session.objects.get(pk=session.pk).data["checks"]["stock"]["result"]
        assert sorted(result["holds"]) == sorted(
            StockHold.objects.filter(reference=session.session_key, status="active").values_list("pk", flat=True)
        )
        costs[lines] = (added, changed)
    print(f"\nstock check writes: 5 lines {costs[5]}, 50 lines {costs[50]}")
    assert costs[5] == costs[50]


def test_a_tab_tapped_many_times_keeps_one_hold_row_per_sku():
    session = open_tab(5, "TAPS")
    rows = set(StockHold.objects.filter(reference=session.session_key).values_list("pk", flat=True))
    costs = set()
    for qty in range(2, 22):  # twenty taps on the same lines, each checked
        line = session.lines[qty % 2]
        session = modify(session, [{"op": "set_qty", "line_id": line["line_id"], "qty": str(qty)}])
        costs.add(tuple(check(session).items()))
    assert set(StockHold.objects.filter(reference=session.session_key).values_list("pk", flat=True)) == rows
    assert StockHold.objects.filter(reference=session.session_key, status="active").count() == 5
    held = dict(StockHold.objects.filter(reference=session.session_key).values_list("sku", "qty"))
    assert held[session.lines[0]["sku"]] == 20 and held[session.lines[1]["sku"]] == 21
    assert costs == {(("statements", 2), ("hold_rows", 1))}  # the hold's UPDATE and the session's check


def test_kept_holds_are_extended_once_less_than_half_their_time_is_left():
    session = open_tab(3, "OLD")
    soon = timezone.now() + timedelta(minutes=2)  # of 15: less than half left
    StockHold.objects.filter(reference=session.session_key).update(expires_at=soon)
    session = modify(session, [{"op": "add_line", "sku": "OLD-003", "qty": "1", "unit_price_q": 500}])
    cost = check(session)
    assert cost["hold_rows"] == 4  # one new, the three old ones extended (one UPDATE)
    holds = StockHold.objects.filter(reference=session.session_key, status="active")
    assert holds.count() == 4 and all(hold.expires_at > timezone.now() + timedelta(minutes=14) for hold in holds)
    stored = Session.objects.get(pk=session.pk).data["checks"]["stock"]
    assert parse_datetime(stored["expires_at"]) == min(hold.expires_at for hold in holds)


def test_a_check_lasts_as_long_as_its_earliest_hold():
    session = open_tab(2, "EARLY")
    earliest = timezone.now() + timedelta(minutes=10)  # more than half of 15 left: kept as is
    StockHold.objects.filter(reference=session.session_key, sku="EARLY-000").update(expires_at=earliest)
    session = modify(session, [{"op": "add_line", "sku": "EARLY-002", "qty": "1", "unit_price_q": 500}])
    assert check(session)["hold_rows"] == 1
    stored = Session.objects.get(pk=session.pk).data["checks"]["stock"]
    assert parse_datetime(stored["expires_at"]) == StockHold.objects.get(sku="EARLY-000").expires_at


def test_the_maintenance_command_deletes_finished_holds():
    now = timezone.now()
    common = {"sku": "X", "qty": 1, "expires_at": now + timedelta(minutes=5)}
    old_released = StockHold.objects.create(reference="S-1", status="released", **common)
    old_expired = StockHold.objects.create(reference="S-2", status="expired", **common)
    recent = StockHold.objects.create(reference="S-3", status="released", **common)
    fulfilled = StockHold.objects.create(reference="S-4", status="fulfilled", **common)
    active = StockHold.objects.create(reference="S-5", **common)
    StockHold.objects.filter(pk__in=[old_released.pk, old_expired.pk, fulfilled.pk]).update(updated_at=now - timedelta(hours=2))

    out = io.StringIO()
    call_command("release_expired_holds", "--dry-run", stdout=out)
    assert "would delete 2 finished holds" in out.getvalue()
    assert StockHold.objects.count() == 5
    call_command("release_expired_holds", stdout=out)
    assert "deleted 2 finished holds" in out.getvalue()
    assert sorted(StockHold.objects.values_list("pk", flat=True)) == sorted([recent.pk, fulfilled.pk, active.pk])
    call_command("release_expired_holds", "--purge-after-minutes", "0", stdout=out)
    assert StockHold.objects.count() == 3
