"""The stock check's reads: the other sessions' live holds and the session's own holds in one statement."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman.contrib.stock import get_stock_backend
from omniman.contrib.stock.models import StockHold, StockLevel
from omniman.contrib.stock.protocols import UNLIMITED

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("stock_app")]

HOLDS = StockHold._meta.db_table


@pytest.fixture
def stock_app():
    from django.apps import apps

    if not apps.is_installed("omniman.contrib.stock"):
        pytest.skip("omniman.contrib.stock is not installed in this test run")


def level(sku: str, on_hand: str, *, track: bool = True) -> StockLevel:
    return StockLevel.objects.create(sku=sku, on_hand=Decimal(on_hand), track=track)


def hold(sku: str, qty: str, reference: str, *, status: str = "active", minutes: float = 15) -> StockHold:
    return StockHold.objects.create(
        sku=sku, qty=Decimal(qty), requested=Decimal(qty), reference=reference, status=status,
        expires_at=timezone.now() + timedelta(minutes=minutes),
    )


def hold_reads(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("SELECT", "WITH")) and HOLDS in q["sql"]]


def test_replace_holds_reads_the_others_live_holds_and_its_own_in_one_statement():
    level("BEANS", "10")
    level("TEA", "5")
    level("MUGS", "9", track=False)
    hold("BEANS", "1.5", "OTHER-1")
    hold("BEANS", "0.25", "OTHER-2")
    hold("BEANS", "4", "OTHER-3", minutes=-1)  # expired, not yet marked: counts for nobody
    hold("TEA", "2", "OTHER-1", status="released")
    own_beans = hold("BEANS", "2", "MINE")
    own_tea = hold("TEA", "1", "MINE")
    hold("TEA", "3", "MINE", status="fulfilled")  # not active: not its hold any more
    expires_at = timezone.now() + timedelta(minutes=15)

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        done = get_stock_backend().replace_holds(
            "MINE", {"BEANS": Decimal("9"), "TEA": Decimal("1"), "MUGS": Decimal("1")}, expires_at=expires_at
        )

    assert len(hold_reads(queries)) == 1, hold_reads(queries)  # the others' sum and its own rows: one read
    # Its own holds don't count against it; the others' live ones do (1.5 + 0.25), the expired and released don't.
    assert done.available == {"BEANS": Decimal("8.25"), "MUGS": UNLIMITED, "TEA": Decimal("5")}
    assert [(h.sku, h.qty) for h in done.holds] == [("BEANS", Decimal("8.25")), ("TEA", Decimal("1"))]
    # Its BEANS hold changed in place (the quantity asked changed), its TEA hold kept: no new row, none released.
    assert [h.id for h in done.holds] == [own_beans.pk, own_tea.pk]
    assert StockHold.objects.filter(reference="MINE").count() == 3
    assert not StockHold.objects.filter(reference="MINE", status="released").exists()


def test_replace_holds_of_a_reference_that_held_nothing_and_of_untracked_skus():
    level("BEANS", "3")
    level("MUGS", "9", track=False)
    hold("BEANS", "1", "OTHER")
    expires_at = timezone.now() + timedelta(minutes=15)
    backend = get_stock_backend()

    done = backend.replace_holds("NEW", {"BEANS": Decimal("5")}, expires_at=expires_at)
    assert done.available == {"BEANS": Decimal("2")}
    assert [(h.sku, h.qty, h.reference) for h in done.holds] == [("BEANS", Decimal("2"), "NEW")]

    # No tracked SKU left: its holds are released (no sum to read).
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        done = backend.replace_holds("NEW", {"MUGS": Decimal("1")}, expires_at=expires_at)
    assert (done.available, done.holds) == ({"MUGS": UNLIMITED}, [])
    assert len(hold_reads(queries)) == 1
    assert list(StockHold.objects.filter(reference="NEW").values_list("status", flat=True)) == ["released"]


@pytest.mark.postgres
def test_the_one_read_locks_the_sessions_own_holds_and_not_the_others():
    level("BEANS", "10")
    mine = hold("BEANS", "2", "MINE")
    other = hold("BEANS", "1", "OTHER")
    outcome: dict[int, str] = {}

    def try_lock(pk: int) -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(f"SELECT id FROM {HOLDS} WHERE id = %s FOR UPDATE NOWAIT", [pk])
            outcome[pk] = "locked it"
        except OperationalError:
            outcome[pk] = "busy"
        finally:
            connections.close_all()

    with transaction.atomic():
        get_stock_backend().replace_holds("MINE", {"BEANS": Decimal("2")}, expires_at=mine.expires_at)
        for pk in (mine.pk, other.pk):
            thread = threading.Thread(target=try_lock, args=(pk,))
            thread.start()
            thread.join(timeout=30)
    assert outcome == {mine.pk: "busy", other.pk: "locked it"}


@pytest.mark.postgres
def test_the_one_read_uses_the_holds_indexes_in_a_prepared_generic_plan():
    """The others' sum keeps the partial index of active holds (the status a literal); the own rows, the reference's."""
    from omniman.contrib.stock.backends import _held_and_own

    if not connection.settings_dict["OPTIONS"].get("server_side_binding"):
        pytest.skip("prepared statements are off (DATABASE_PREPARED_STATEMENTS=0)")
    level("BEANS", str(10**6))
    expires_at = timezone.now() + timedelta(minutes=15)
    StockHold.objects.bulk_create(
        StockHold(sku="BEANS", qty=Decimal(1), requested=Decimal(1), reference=f"S-{i}", status="fulfilled", expires_at=expires_at)
        for i in range(3000)
    )
    hold("BEANS", "2", "LIVE")
    hold("BEANS", "1", "MINE")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {HOLDS}")
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        for _ in range(3):  # psycopg prepares a statement from its second run
            held, own = _held_and_own(["BEANS"], "MINE")
            assert held == {"BEANS": Decimal(2)} and [(row.reference, row.qty) for row in own] == [("MINE", Decimal(1))]
        with connection.cursor() as cursor:
            cursor.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE %s", ["WITH own AS %"])
            [(name,)] = cursor.fetchall()
            cursor.execute(f"EXPLAIN EXECUTE {name}('MINE', 'BEANS', now(), 'MINE')")
            plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan, plan
    assert "stock_hold_active_" in plan and "stock_hold_reference" in plan, plan
