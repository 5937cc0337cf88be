"""The kitchen's mutable state: one row per order line (its station, its status there), and the 86 list.

Orders and their items never change (§2); what the kitchen does with an item
does. A ``KitchenItem`` is written with its order (in the commit's
transaction) and moves only through ``omniman.services.KitchenService``.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from omniman.models.order import Order, OrderItem


class KitchenItem(models.Model):
    """One order line at its kitchen station: where it is in its channel's ``kitchen_flow``."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="kitchen_items")
    item = models.OneToOneField(OrderItem, on_delete=models.PROTECT, related_name="kitchen")
    line_id = models.CharField(max_length=64)
    station = models.CharField(max_length=32, blank=True, default="", db_index=True)
    status = models.CharField(max_length=32)
    # Held (a later course): greyed on the board, not bumpable, until fired.
    held = models.BooleanField(default=False)
    # The status before the last bump, and when/who bumped it: what an undo restores.
    previous_status = models.CharField(max_length=32, blank=True, default="")
    moved_at = models.DateTimeField(null=True, blank=True)
    moved_by = models.CharField(max_length=150, blank=True, default="")
    # Voids: how much of the line was voided; shown as VOID on the board until a cook acknowledges it.
    voided_qty = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("0"))
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.CharField(max_length=255, blank=True, default="")
    void_acknowledged_at = models.DateTimeField(null=True, blank=True)
    void_acknowledged_by = models.CharField(max_length=150, blank=True, default="")
    rev = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order_id", "id"]
        constraints = [models.UniqueConstraint(fields=["order", "line_id"], name="omniman_kitchenitem_line")]
        indexes = [models.Index(fields=["station", "status"], name="omniman_kitchen_station")]

    def __str__(self) -> str:
        return f"{self.order_id}:{self.line_id}@{self.station or '-'} {self.status}"

    @property
    def is_voided(self) -> bool:
        """Is the whole line voided (it no longer counts)?"""
        return self.voided_at is not None and self.voided_qty >= self.item.qty

    @property
    def void_pending(self) -> bool:
        """Is a void waiting for a cook to acknowledge it?"""
        return self.voided_at is not None and self.void_acknowledged_at is None

    @property
    def is_live(self) -> bool:
        """Does the item still count for its order's progress (not wholly voided, not held)?"""
        return not self.held and not self.is_voided


class SoldOut(models.Model):
    """A product the kitchen marked sold out ("86"): the POS refuses it while ``sold_out``."""

    sku = models.CharField(max_length=64, unique=True)
    sold_out = models.BooleanField(default=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku}{' (86)' if self.sold_out else ''}"
