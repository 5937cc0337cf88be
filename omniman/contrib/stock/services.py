"""Stock use cases outside the directive handlers: set a level, expire old holds."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from omniman.contrib.stock import get_stock_backend
from omniman.contrib.stock.models import StockLevel, StockMovement
from omniman.exceptions import ValidationError
from omniman.monetary import MAX_QTY, to_decimal

QTY_STEP = Decimal("0.001")


def _on_hand(value) -> Decimal:
    try:
        amount = to_decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        amount = None
    if amount is None or not amount.is_finite() or abs(amount) > MAX_QTY or amount != amount.quantize(QTY_STEP):
        raise ValidationError("invalid_qty", "on_hand must be a number with at most 3 decimal places.", {"field": "on_hand", "value": str(value)})
    return amount.quantize(QTY_STEP)


class StockService:
    @staticmethod
    @transaction.atomic
    def set_on_hand(sku: str, on_hand, *, track: bool | None = None, actor: str = "system") -> StockLevel:
        """Set the units on hand of ``sku`` (creating its level), recording the change as an ``adjust`` movement."""
        if not isinstance(sku, str) or not sku.strip() or len(sku.strip()) > 64:
            raise ValidationError("invalid_field", "sku must be 1-64 characters.", {"field": "sku"})
        sku = sku.strip()
        amount = _on_hand(on_hand)
        level = StockLevel.objects.select_for_update().filter(sku=sku).first()
        if level is None:
            try:
                with transaction.atomic():
                    level = StockLevel.objects.create(sku=sku, on_hand=Decimal("0"), track=True if track is None else track)
            except IntegrityError:  # created meanwhile: adjust that one
                level = StockLevel.objects.select_for_update().get(sku=sku)
        delta = amount - level.on_hand
        level.on_hand = amount
        if track is not None:
            level.track = track
        level.updated_at = timezone.now()
        level.save(update_fields=["on_hand", "track", "updated_at"])
        if delta:
            StockMovement.objects.create(sku=sku, delta=delta, reason=StockMovement.Reason.ADJUST, actor=actor)
        return level

    @staticmethod
    def release_expired_holds(*, dry_run: bool = False) -> int:
        """Mark active holds past their ``expires_at`` as expired (availability ignores them already)."""
        return get_stock_backend().release_expired_holds(dry_run=dry_run)

    @staticmethod
    def purge_finished_holds(*, older_than: timedelta, dry_run: bool = False) -> int:
        """Delete released and expired holds finished more than ``older_than`` ago (a backend without
        ``purge_finished_holds`` keeps them: 0)."""
        purge = getattr(get_stock_backend(), "purge_finished_holds", None)
        return purge(older_than=older_than, dry_run=dry_run) if purge is not None else 0


__all__ = ["StockService"]
