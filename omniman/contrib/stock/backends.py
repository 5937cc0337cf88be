"""The database-backed default: ``StockLevel``, ``StockHold`` and ``StockMovement`` rows.

Concurrency: whoever computes availability or creates a hold first locks the
SKUs' ``StockLevel`` rows (``SELECT … FOR UPDATE``, in SKU order, so two
callers never wait on each other crosswise). The locks last until the
caller's transaction ends, so the holds counted and the holds created are
seen by the next caller.

Cost: every method runs a fixed number of queries whatever the number of
SKUs (bulk ``UPDATE``/``INSERT``; on SQLite a bulk write is split into
batches of a few hundred rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import nullcontext
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from omniman.contrib.stock.models import StockHold, StockLevel, StockMovement
from omniman.contrib.stock.protocols import UNLIMITED, Hold, HoldReplacement
from omniman.exceptions import OmnimanError, ValidationError
from omniman.models import ModelRows, insert_rows, kept_per_connection
from omniman.monetary import parse_qty

ZERO = Decimal("0")


def as_qty(value, field: str = "qty") -> Decimal:
    """A positive quantity with at most 3 decimals, else ``ValidationError("invalid_qty")``."""
    qty = parse_qty(value)
    if qty is None:
        raise ValidationError("invalid_qty", context={"field": field, "value": str(value)})
    return qty


def _hold(row: StockHold) -> Hold:
    return Hold(
        id=row.pk, sku=row.sku, qty=row.qty, reference=row.reference, line_id=row.line_id,
        status=row.status, expires_at=row.expires_at,
    )


def _own_transaction():
    """A transaction for a method's locks when the caller has none; inside the caller's, nothing of its own.

    The locks last until the caller's transaction ends either way; a savepoint
    there would only add a ``SAVEPOINT``/``RELEASE`` round trip pair and
    protect nothing (an error leaves the method, and the caller's transaction
    decides: the stock handlers run in the directive's savepoint).
    """
    return nullcontext() if transaction.get_connection().in_atomic_block else transaction.atomic()


# The reads of every stock check — the SKUs' levels, then the other sessions' live holds and the session's own
# holds in one statement — as SQL written once per connection (and SKU count): the ORM spent more CPU building
# and compiling them than the database spent running them (``benchmarks/profile_api.py``).


def _marks(count: int) -> str:
    return ", ".join(["%s"] * count)


def _lock_levels(skus: Iterable[str], *, lock: bool = True) -> dict[str, StockLevel]:
    """The ``StockLevel`` rows of ``skus``, locked in SKU order (call inside a transaction)."""
    skus = sorted(set(skus))
    if not skus:
        return {}
    connection = connections[router.db_for_write(StockLevel) if lock else router.db_for_read(StockLevel)]
    locking = lock and connection.features.has_select_for_update
    if locking and connection.get_autocommit():
        raise transaction.TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    rows = ModelRows.of(StockLevel, connection, "l")

    def build() -> str:
        qn = connection.ops.quote_name
        sku = f"l.{qn(StockLevel._meta.get_field('sku').column)}"
        return (
            f"SELECT {rows.columns} FROM {qn(StockLevel._meta.db_table)} l WHERE {sku} IN ({_marks(len(skus))}) "
            f"ORDER BY {sku}{' FOR UPDATE' if locking else ''}"
        )

    sql = kept_per_connection(connection, ("stock.levels", len(skus), locking), build) if len(skus) <= 64 else build()
    with connection.cursor() as cursor:
        cursor.execute(sql, skus)
        found = cursor.fetchall()
    return {level.sku: level for level in (rows.load(connection.alias, values) for values in found)}


def _hold_reader():
    """The holds' connection, whether it locks rows (``FOR UPDATE``), and the reader of their columns (alias ``h``);
    a locking read outside a transaction is refused, as the ORM refuses it."""
    connection = connections[router.db_for_write(StockHold)]
    locking = connection.features.has_select_for_update
    if locking and connection.get_autocommit():
        raise transaction.TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    return connection, locking, ModelRows.of(StockHold, connection, "h")


def _own_active_holds(reference: str) -> list[StockHold]:
    """``reference``'s active holds, locked, oldest first (call inside a transaction)."""
    connection, locking, rows = _hold_reader()

    def build() -> str:
        qn = connection.ops.quote_name
        column = {name: f"h.{qn(StockHold._meta.get_field(name).column)}" for name in ("reference", "status")}
        return (
            f"SELECT {rows.columns} FROM {qn(StockHold._meta.db_table)} h "
            f"WHERE {column['reference']} = %s AND {column['status']} = %s "
            f"ORDER BY h.{qn(StockHold._meta.pk.column)}{' FOR UPDATE' if locking else ''}"
        )

    sql = kept_per_connection(connection, ("stock.own_holds", locking), build)
    with connection.cursor() as cursor:
        cursor.execute(sql, [reference, StockHold.Status.ACTIVE])
        found = cursor.fetchall()
    return [rows.load(connection.alias, values) for values in found]


def _held_and_own(skus: list[str], reference: str) -> tuple[dict[str, Decimal], list[StockHold]]:
    """``_held(skus, exclude_reference=reference)`` and ``_own_active_holds(reference)`` in one statement.

    Call it inside a transaction, after locking the SKUs' levels (:func:`_lock_levels`), in a statement of
    its own: the levels' lock is what makes the sum complete (whoever adds a hold for these SKUs locks their
    levels first), and a statement sees only what committed before it started — a sum read in the statement
    that waited for the levels' lock could miss the holds of the transaction it waited for. Here the only lock
    is on the session's own holds (``FOR UPDATE`` in the ``WITH`` query: PostgreSQL refuses it on a
    ``UNION``), taken in id order as :func:`_own_active_holds` takes it; the others' sum locks nothing.
    One ``UNION ALL``: the own rows (oldest first), then one row per SKU with live holds of other sessions,
    its id ``NULL`` and its sum in ``qty``.
    """
    connection, locking, rows = _hold_reader()

    def build() -> str:
        qn = connection.ops.quote_name
        table = qn(StockHold._meta.db_table)
        column = {field.name: f"h.{qn(field.column)}" for field in rows.fields}
        pk = qn(StockHold._meta.pk.column)
        active = f"'{StockHold.Status.ACTIVE.value}'"  # a literal: a generic plan can use the partial index (see _held)
        # The sums' row has the own rows' shape: NULL for every column but the SKU and the quantity.
        summed = ", ".join(
            column["sku"] if field.name == "sku" else f"SUM({column['qty']})" if field.name == "qty" else "NULL"
            for field in rows.fields
        )
        return (
            f"WITH own AS (SELECT {rows.columns} FROM {table} h "
            f"WHERE {column['reference']} = %s AND {column['status']} = {active} "
            f"ORDER BY h.{pk}{' FOR UPDATE' if locking else ''}) "
            f"SELECT * FROM own UNION ALL "
            f"SELECT {summed} FROM {table} h "
            f"WHERE {column['sku']} IN ({_marks(len(skus))}) AND {column['status']} = {active} "
            f"AND {column['expires_at']} > %s AND {column['reference']} <> %s GROUP BY {column['sku']}"
        )

    sql = kept_per_connection(connection, ("stock.held_and_own", len(skus), locking), build) if len(skus) <= 64 else build()
    params = [reference, *skus, connection.ops.adapt_datetimefield_value(timezone.now()), reference]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    held: dict[str, Decimal] = {}
    own: list[StockHold] = []
    for row in (rows.load(connection.alias, values) for values in found):
        if row.pk is None:
            held[row.sku] = row.qty
        else:
            own.append(row)
    own.sort(key=lambda row: row.pk)  # a UNION promises no order: the WITH query's
    return held, own


def _available(skus: Iterable[str], levels: Mapping[str, StockLevel], held: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """On hand minus ``held`` for tracked SKUs (never below zero), ``UNLIMITED`` for the rest; SKU order."""
    available: dict[str, Decimal] = {}
    for sku in sorted(skus):
        level = levels.get(sku)
        if level is None or not level.track:
            available[sku] = UNLIMITED
        else:
            available[sku] = max(level.on_hand - held.get(sku, ZERO), ZERO)
    return available


def _insufficient(sku: str, qty: Decimal, free: Decimal) -> OmnimanError:
    free = max(free, ZERO)
    return OmnimanError(
        "insufficient_stock",
        f"Only {free} of {sku} free, {qty} asked.",
        {"sku": sku, "requested": str(qty), "available": str(free)},
    )


def _insert_holds(
    skus_qty: Mapping[str, Decimal],
    *,
    reference: str,
    line_ids: Mapping[str, str],
    expires_at: datetime,
    requested: Mapping[str, Decimal] | None = None,
) -> list[StockHold]:
    """One new active hold per SKU, in SKU order, with one ``INSERT`` (``requested``: what was asked, default ``qty``)."""
    requested = requested or {}
    rows = [
        StockHold(
            sku=sku, qty=qty, requested=requested.get(sku, qty), reference=reference, line_id=line_ids.get(sku) or "",
            expires_at=expires_at,
        )
        for sku, qty in sorted(skus_qty.items())
    ]
    if not rows:
        return []
    rows = insert_rows(StockHold, rows)
    if all(row.pk is not None for row in rows):
        return rows
    # A database that cannot return the ids of a bulk insert: read the new rows back (the newest per SKU).
    newest: dict[str, StockHold] = {}
    for row in StockHold.objects.filter(
        reference=reference, status=StockHold.Status.ACTIVE, expires_at=expires_at, sku__in=list(skus_qty)
    ).order_by("pk"):
        newest[row.sku] = row
    return [newest[row.sku] for row in rows]


def _finish_for_reference(reference: str, status: str, *, order: tuple[str, ...] = ("pk",)) -> list[int]:
    """Give every active hold of ``reference`` ``status`` (rows locked in ``order`` first); their ids."""
    active = StockHold.objects.filter(reference=reference, status=StockHold.Status.ACTIVE)
    ids = list(active.select_for_update().order_by(*order).values_list("pk", flat=True))
    if ids:
        StockHold.objects.filter(pk__in=ids, status=StockHold.Status.ACTIVE).update(
            status=status, updated_at=timezone.now()
        )
    return ids


def _apply_hold_deltas(
    reference: str,
    holding: Mapping[str, Decimal],
    wanted: Mapping[str, Decimal],
    *,
    current: list[StockHold],
    line_ids: Mapping[str, str],
    expires_at: datetime,
) -> list[StockHold]:
    """Make ``reference``'s active holds ``holding`` (one per SKU) by changing only what differs; its holds, SKU order.

    A live hold made for the same request (the SKU's quantity asked, its line)
    that holds the same quantity is kept; a SKU's hold whose quantity (or line)
    changed is changed in place, all of them in one ``UPDATE``; the holds of
    SKUs no longer held are released and the SKUs new to the tab get new holds
    (one ``INSERT``). So a check after one tapped line writes one hold row, not
    every hold of the tab, and a tab tapped all evening keeps one row per SKU.
    Kept holds keep their expiry unless less than half of the time asked for
    (``expires_at`` − now) is left: then all of those are extended in one
    ``UPDATE`` (at most once per half a time-to-live). ``current``: the
    reference's active holds, locked, oldest first. Call it inside a
    transaction, after locking the SKUs' levels.
    """
    now = timezone.now()
    keep: dict[str, StockHold] = {}
    change: dict[str, StockHold] = {}
    drop: list[int] = []
    for row in current:
        held = holding.get(row.sku)
        if held is None or row.sku in keep or row.sku in change:
            drop.append(row.pk)
            continue
        same = row.qty == held and row.requested == wanted.get(row.sku) and row.line_id == (line_ids.get(row.sku) or "")
        if same and row.expires_at > now:
            keep[row.sku] = row
        else:
            change[row.sku] = row
    if drop:
        StockHold.objects.filter(pk__in=drop, status=StockHold.Status.ACTIVE).update(status=StockHold.Status.RELEASED, updated_at=now)
    if change:
        for sku, row in change.items():
            row.qty, row.requested, row.line_id = holding[sku], wanted.get(sku, holding[sku]), line_ids.get(sku) or ""
            row.expires_at, row.updated_at = expires_at, now
        StockHold.objects.bulk_update(list(change.values()), ["qty", "requested", "line_id", "expires_at", "updated_at"])
    refresh_before = now + (expires_at - now) / 2
    stale = [row for row in keep.values() if row.expires_at < refresh_before]
    if stale:
        StockHold.objects.filter(pk__in=[row.pk for row in stale]).update(expires_at=expires_at, updated_at=now)
        for row in stale:
            row.expires_at, row.updated_at = expires_at, now
    created = _insert_holds(
        {sku: qty for sku, qty in holding.items() if sku not in keep and sku not in change},
        reference=reference, line_ids=line_ids, expires_at=expires_at, requested=wanted,
    )
    return sorted([*keep.values(), *change.values(), *created], key=lambda row: row.sku)


def _held(skus: Iterable[str], *, exclude_reference: str = "") -> dict[str, Decimal]:
    """Units held by live (active, unexpired) holds, per SKU."""
    skus = list(skus)
    if not skus:
        return {}
    connection = connections[router.db_for_read(StockHold)]
    excluding = bool(exclude_reference)

    def build() -> tuple[str, object, list]:
        qn = connection.ops.quote_name
        column = {name: f"h.{qn(StockHold._meta.get_field(name).column)}" for name in ("sku", "qty", "status", "expires_at", "reference")}
        qty = StockHold._meta.get_field("qty").get_col(StockHold._meta.db_table)
        other = f" AND {column['reference']} <> %s" if excluding else ""
        sql = (
            f"SELECT {column['sku']}, SUM({column['qty']}) FROM {qn(StockHold._meta.db_table)} h "
            # The status as a literal, not a parameter: a prepared statement's generic plan can then use the
            # partial index on active holds (stock_hold_active_sku); with a parameter it scans every hold ever made.
            f"WHERE {column['sku']} IN ({_marks(len(skus))}) AND {column['status']} = '{StockHold.Status.ACTIVE.value}' "
            f"AND {column['expires_at']} > %s{other} GROUP BY {column['sku']}"
        )
        # The quantity's converters (SQLite sums decimals as floats): what the ORM applies to the column.
        return sql, qty, [*connection.ops.get_db_converters(qty), *qty.get_db_converters(connection)]

    key = ("stock.held", len(skus), excluding)
    sql, qty, converters = kept_per_connection(connection, key, build) if len(skus) <= 64 else build()
    params = [*skus, connection.ops.adapt_datetimefield_value(timezone.now())]
    if excluding:
        params.append(exclude_reference)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = cursor.fetchall()
    held = {}
    for sku, total in found:
        for converter in converters:
            total = converter(total, qty, connection)
        held[sku] = total
    return held


class DatabaseStockBackend:
    """Stock levels and holds in this database."""

    # Its writes are rows of this database, undone with a rolled-back transaction: the stock
    # handlers may then be claimed inside the directive engine's batch (``database_only``).
    database_only = True

    def check_availability(
        self, skus_qty: Mapping[str, Decimal], *, reference: str = "", lock: bool = True
    ) -> dict[str, Decimal]:
        skus = set(skus_qty)
        if not skus:
            return {}
        # Without the lock it is a plain read (no transaction, no savepoint): an advisory answer.
        with _own_transaction() if lock else nullcontext():
            levels = _lock_levels(skus, lock=lock)
            tracked = [sku for sku, level in levels.items() if level.track]
            held = _held(tracked, exclude_reference=reference) if tracked else {}
        return _available(skus, levels, held)

    def create_hold(
        self, sku: str, qty: Decimal, *, reference: str, line_id: str = "", expires_at: datetime
    ) -> Hold:
        [hold] = self.create_holds({sku: qty}, reference=reference, line_ids={sku: line_id}, expires_at=expires_at)
        return hold

    def create_holds(
        self,
        skus_qty: Mapping[str, Decimal],
        *,
        reference: str,
        line_ids: Mapping[str, str] | None = None,
        expires_at: datetime,
    ) -> list[Hold]:
        wanted = {sku: as_qty(qty) for sku, qty in skus_qty.items()}
        if not reference:
            raise ValidationError("missing_field", "A hold needs a reference.", {"field": "reference"})
        if not wanted:
            return []
        with _own_transaction():
            levels = _lock_levels(wanted)
            tracked = [sku for sku, level in levels.items() if level.track]
            held = _held(tracked) if tracked else {}
            for sku in tracked:  # SKU order: the first short SKU is the one reported
                free = levels[sku].on_hand - held.get(sku, ZERO)
                if wanted[sku] > free:
                    raise _insufficient(sku, wanted[sku], free)
            rows = _insert_holds(wanted, reference=reference, line_ids=line_ids or {}, expires_at=expires_at)
        return [_hold(row) for row in rows]

    def replace_holds(
        self,
        reference: str,
        skus_qty: Mapping[str, Decimal],
        *,
        line_ids: Mapping[str, str] | None = None,
        expires_at: datetime,
    ) -> HoldReplacement:
        if not reference:
            raise ValidationError("missing_field", "A hold needs a reference.", {"field": "reference"})
        wanted = {sku: Decimal(qty) for sku, qty in skus_qty.items()}
        with _own_transaction():
            # Stock rows first (one query, SKU order), then the hold rows: the order every caller uses.
            levels = _lock_levels(wanted) if wanted else {}
            tracked = [sku for sku, level in levels.items() if level.track]
            # The others' live holds and this reference's own (locked): one read after the levels' lock.
            held, current = _held_and_own(tracked, reference) if tracked else ({}, _own_active_holds(reference))
            available = _available(wanted, levels, held)
            holding = {sku: min(wanted[sku], available[sku]) for sku in tracked}
            holding = {sku: as_qty(qty) for sku, qty in holding.items() if qty > 0}
            rows = _apply_hold_deltas(
                reference, holding, wanted, current=current, line_ids=line_ids or {}, expires_at=expires_at
            )
        return HoldReplacement(available=available, holds=[_hold(row) for row in rows])

    def release_hold(self, hold_id: int) -> bool:
        return self._finish(hold_id, StockHold.Status.RELEASED)

    def fulfill_hold(self, hold_id: int) -> bool:
        return self._finish(hold_id, StockHold.Status.FULFILLED)

    def _finish(self, hold_id: int, status: str) -> bool:
        changed = StockHold.objects.filter(pk=hold_id, status=StockHold.Status.ACTIVE).update(
            status=status, updated_at=timezone.now()
        )
        if not changed and not StockHold.objects.filter(pk=hold_id).exists():
            raise OmnimanError("not_found", f"No stock hold {hold_id!r}.", {"hold_id": hold_id})
        return bool(changed)

    def release_holds_for_reference(self, reference: str) -> list[int]:
        with _own_transaction():
            return _finish_for_reference(reference, StockHold.Status.RELEASED)

    def fulfill_holds_for_reference(self, reference: str) -> list[int]:
        with _own_transaction():
            return _finish_for_reference(reference, StockHold.Status.FULFILLED, order=("sku", "pk"))

    def holds_for_reference(self, reference: str) -> list[Hold]:
        rows = StockHold.objects.filter(reference=reference, status=StockHold.Status.ACTIVE).order_by("sku", "pk")
        return [_hold(row) for row in rows]

    def record_sale(self, order_ref: str, skus_qty: Mapping[str, Decimal], *, actor: str = "") -> dict[str, Decimal]:
        wanted = {sku: Decimal(qty) for sku, qty in skus_qty.items() if Decimal(qty) > 0}
        with _own_transaction():
            levels = _lock_levels(wanted)
            done = set(
                StockMovement.objects.filter(reference=order_ref, reason=StockMovement.Reason.COMMIT).values_list("sku", flat=True)
            )
            taken = {sku: wanted[sku] for sku, level in levels.items() if level.track and sku not in done}
            _move(levels, {sku: -qty for sku, qty in taken.items()}, reason=StockMovement.Reason.COMMIT, reference=order_ref, actor=actor)
        return taken

    def restore_sale(self, order_ref: str, *, actor: str = "") -> dict[str, Decimal]:
        with _own_transaction():
            sold = dict(
                StockMovement.objects.filter(reference=order_ref, reason=StockMovement.Reason.COMMIT).values_list("sku", "delta")
            )
            levels = _lock_levels(sold)
            done = set(
                StockMovement.objects.filter(reference=order_ref, reason=StockMovement.Reason.RELEASE).values_list("sku", flat=True)
            )
            restored = {sku: -delta for sku, delta in sorted(sold.items()) if sku in levels and sku not in done}
            _move(levels, restored, reason=StockMovement.Reason.RELEASE, reference=order_ref, actor=actor)
        return restored

    def release_expired_holds(self, *, dry_run: bool = False) -> int:
        expired = StockHold.objects.filter(status=StockHold.Status.ACTIVE, expires_at__lte=timezone.now())
        if dry_run:
            return expired.count()
        return expired.update(status=StockHold.Status.EXPIRED, updated_at=timezone.now())

    def purge_finished_holds(self, *, older_than: timedelta, dry_run: bool = False) -> int:
        """Delete released and expired holds finished more than ``older_than`` ago; how many (would be) deleted.

        They hold nothing and nothing refers to them (a check lists its active
        holds; ``stock.committed`` records the fulfilled ones, which stay).
        """
        finished = StockHold.objects.filter(
            status__in=[StockHold.Status.RELEASED, StockHold.Status.EXPIRED], updated_at__lt=timezone.now() - older_than
        )
        if dry_run:
            return finished.count()
        deleted, _ = finished.delete()
        return deleted


def _move(levels: Mapping[str, StockLevel], deltas: Mapping[str, Decimal], *, reason: str, reference: str, actor: str) -> None:
    """Add ``deltas`` to the (locked) levels' ``on_hand`` and record one movement per SKU: one ``UPDATE``, one ``INSERT``."""
    if not deltas:
        return
    now = timezone.now()
    changed = []
    for sku, delta in deltas.items():
        level = levels[sku]
        level.on_hand, level.updated_at = F("on_hand") + delta, now
        changed.append(level)
    StockLevel.objects.bulk_update(changed, ["on_hand", "updated_at"])
    StockMovement.objects.bulk_create(
        [StockMovement(sku=sku, delta=delta, reason=reason, reference=reference, actor=actor) for sku, delta in deltas.items()]
    )


__all__ = ["DatabaseStockBackend", "as_qty"]
