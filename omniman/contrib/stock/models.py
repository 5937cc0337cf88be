"""Stock levels, holds (reservations for open sessions) and movements (the ledger of on-hand changes)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q


class StockLevel(models.Model):
    """Units on hand of one SKU. A SKU without a row, or with ``track`` off, is unlimited."""

    sku = models.CharField(max_length=64, unique=True)
    on_hand = models.DecimalField(
        max_digits=12, decimal_places=3, default=Decimal("0"),
        help_text="Units on hand. May go below zero when an external channel sells what was not there.",
    )
    track = models.BooleanField(default=True, help_text="Off: the SKU is never short and never held.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_stock"
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku}: {self.on_hand}" if self.track else f"{self.sku}: untracked"


class StockHold(models.Model):
    """A reservation of ``qty`` units for an open session (``reference`` is its session key)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        FULFILLED = "fulfilled", "Fulfilled"
        RELEASED = "released", "Released"
        EXPIRED = "expired", "Expired"

    sku = models.CharField(max_length=64)
    qty = models.DecimalField(max_digits=12, decimal_places=3)
    reference = models.CharField(max_length=128, help_text="The session key the hold is for.")
    line_id = models.CharField(max_length=64, blank=True, default="")
    requested = models.DecimalField(
        max_digits=12, decimal_places=3, null=True, blank=True,
        help_text="What the session asked for when the hold was made (more than qty when stock was short).",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_stock"
        ordering = ["-created_at", "-id"]
        indexes = [
            # Availability: the live holds of a SKU.
            models.Index(fields=["sku", "expires_at"], condition=Q(status="active"), name="stock_hold_active_sku"),
            # A session's holds (replace, fulfil, release).
            models.Index(fields=["reference", "status"], name="stock_hold_reference"),
            # release_expired_holds.
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="stock_hold_active_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.qty} × {self.sku} for {self.reference} ({self.status})"


class StockMovement(models.Model):
    """One change of ``on_hand``: a sale (``commit``), its reversal (``release``) or a manual ``adjust``.

    A sale and its reversal happen at most once per (order, SKU): the unique
    constraint is what makes ``stock.commit`` and ``stock.release`` idempotent.
    """

    class Reason(models.TextChoices):
        COMMIT = "commit", "Sold (stock.commit)"
        RELEASE = "release", "Put back (stock.release)"
        ADJUST = "adjust", "Adjusted"

    sku = models.CharField(max_length=64)
    delta = models.DecimalField(max_digits=12, decimal_places=3)
    reason = models.CharField(max_length=16, choices=Reason.choices)
    reference = models.CharField(max_length=128, blank=True, default="", help_text="The order ref, for sales.")
    actor = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_stock"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["reference", "reason", "sku"],
                condition=~Q(reference=""),
                name="stock_movement_once_per_reference",
            ),
        ]
        indexes = [models.Index(fields=["sku", "-created_at"], name="stock_movement_sku")]

    def __str__(self) -> str:
        return f"{self.delta:+} {self.sku} ({self.reason} {self.reference})".strip()
