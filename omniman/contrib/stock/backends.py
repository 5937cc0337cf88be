"""The database-backed default: ``StockLevel``, ``StockHold`` and ``StockMovement`` rows.

Concurrency: whoever computes availability or creates a hold first locks the
SKUs' ``StockLevel`` rows (``SELECT … FOR UPDATE``, in SKU order, so two
callers never wait on each other crosswise). The locks last until the
caller's transaction ends, so the holds counted and the holds created are
seen by the next caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from omniman.contrib.stock.models import StockHold, StockLevel, StockMovement
from omniman.contrib.stock.protocols import UNLIMITED, Hold
from omniman.exceptions import OmnimanError, ValidationError
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


def _lock_levels(skus: Iterable[str], *, lock: bool = True) -> dict[str, StockLevel]:
    """The ``StockLevel`` rows of ``skus``, locked in SKU order (call inside a transaction)."""
    rows = StockLevel.objects.filter(sku__in=sorted(set(skus))).order_by("sku")
    if lock:
        rows = rows.select_for_update()
    return {level.sku: level for level in rows}


def _held(skus: Iterable[str], *, exclude_reference: str = "") -> dict[str, Decimal]:
    """Units held by live (active, unexpired) holds, per SKU."""
    holds = StockHold.objects.filter(sku__in=list(skus), status=StockHold.Status.ACTIVE, expires_at__gt=timezone.now())
    if exclude_reference:
        holds = holds.exclude(reference=exclude_reference)
    return {row["sku"]: row["total"] for row in holds.values("sku").annotate(total=Sum("qty")).order_by()}


class DatabaseStockBackend:
    """Stock levels and holds in this database."""

    def check_availability(
        self, skus_qty: Mapping[str, Decimal], *, reference: str = "", lock: bool = True
    ) -> dict[str, Decimal]:
        skus = set(skus_qty)
        if not skus:
            return {}
        with transaction.atomic():
            levels = _lock_levels(skus, lock=lock)
            tracked = [sku for sku, level in levels.items() if level.track]
            held = _held(tracked, exclude_reference=reference) if tracked else {}
        available: dict[str, Decimal] = {}
        for sku in sorted(skus):
            level = levels.get(sku)
            if level is None or not level.track:
                available[sku] = UNLIMITED
            else:
                available[sku] = max(level.on_hand - held.get(sku, ZERO), ZERO)
        return available

    def create_hold(
        self, sku: str, qty: Decimal, *, reference: str, line_id: str = "", expires_at: datetime
    ) -> Hold:
        qty = as_qty(qty)
        if not reference:
            raise ValidationError("missing_field", "A hold needs a reference.", {"field": "reference"})
        with transaction.atomic():
            level = _lock_levels([sku]).get(sku)
            if level is not None and level.track:
                free = level.on_hand - _held([sku]).get(sku, ZERO)
                if qty > free:
                    raise OmnimanError(
                        "insufficient_stock",
                        f"Only {max(free, ZERO)} of {sku} free, {qty} asked.",
                        {"sku": sku, "requested": str(qty), "available": str(max(free, ZERO))},
                    )
            row = StockHold.objects.create(
                sku=sku, qty=qty, reference=reference, line_id=line_id or "", expires_at=expires_at
            )
        return _hold(row)

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
        active = StockHold.objects.filter(reference=reference, status=StockHold.Status.ACTIVE)
        with transaction.atomic():
            ids = list(active.select_for_update().order_by("pk").values_list("pk", flat=True))
            if ids:
                StockHold.objects.filter(pk__in=ids, status=StockHold.Status.ACTIVE).update(
                    status=StockHold.Status.RELEASED, updated_at=timezone.now()
                )
        return ids

    def holds_for_reference(self, reference: str) -> list[Hold]:
        rows = StockHold.objects.filter(reference=reference, status=StockHold.Status.ACTIVE).order_by("sku", "pk")
        return [_hold(row) for row in rows]

    def record_sale(self, order_ref: str, skus_qty: Mapping[str, Decimal], *, actor: str = "") -> dict[str, Decimal]:
        wanted = {sku: Decimal(qty) for sku, qty in skus_qty.items() if Decimal(qty) > 0}
        taken: dict[str, Decimal] = {}
        with transaction.atomic():
            levels = _lock_levels(wanted)
            done = set(
                StockMovement.objects.filter(reference=order_ref, reason=StockMovement.Reason.COMMIT).values_list("sku", flat=True)
            )
            for sku, level in levels.items():
                if not level.track or sku in done:
                    continue
                StockLevel.objects.filter(pk=level.pk).update(on_hand=F("on_hand") - wanted[sku], updated_at=timezone.now())
                StockMovement.objects.create(
                    sku=sku, delta=-wanted[sku], reason=StockMovement.Reason.COMMIT, reference=order_ref, actor=actor
                )
                taken[sku] = wanted[sku]
        return taken

    def restore_sale(self, order_ref: str, *, actor: str = "") -> dict[str, Decimal]:
        restored: dict[str, Decimal] = {}
        with transaction.atomic():
            sold = dict(
                StockMovement.objects.filter(reference=order_ref, reason=StockMovement.Reason.COMMIT).values_list("sku", "delta")
            )
            levels = _lock_levels(sold)
            done = set(
                StockMovement.objects.filter(reference=order_ref, reason=StockMovement.Reason.RELEASE).values_list("sku", flat=True)
            )
            for sku, delta in sorted(sold.items()):
                level = levels.get(sku)
                if level is None or sku in done:
                    continue
                StockLevel.objects.filter(pk=level.pk).update(on_hand=F("on_hand") - delta, updated_at=timezone.now())
                StockMovement.objects.create(
                    sku=sku, delta=-delta, reason=StockMovement.Reason.RELEASE, reference=order_ref, actor=actor
                )
                restored[sku] = -delta
        return restored

    def release_expired_holds(self, *, dry_run: bool = False) -> int:
        expired = StockHold.objects.filter(status=StockHold.Status.ACTIVE, expires_at__lte=timezone.now())
        if dry_run:
            return expired.count()
        return expired.update(status=StockHold.Status.EXPIRED, updated_at=timezone.now())


__all__ = ["DatabaseStockBackend", "as_qty"]
