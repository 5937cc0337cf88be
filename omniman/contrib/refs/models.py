from __future__ import annotations

from django.db import models
from django.db.models import Q


class Ref(models.Model):
    """A locator: within ``scope``, ``key`` points at a session and/or an order.

    At most one *active* (unreleased) ref per (scope, key), enforced by the
    database. Marketplace ids (``marketplace:<channel>``) and pickup tickets
    (``pickup:<channel>:<day>``) are never released; a ref bound only to a
    session lapses when that session is abandoned.
    """

    scope = models.CharField(max_length=128)
    key = models.CharField(max_length=128)
    session_key = models.CharField(max_length=64, blank=True, default="")
    order_ref = models.CharField(max_length=64, blank=True, default="", db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_refs"
        ordering = ["scope", "key", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["scope", "key"], condition=Q(released_at__isnull=True), name="omniman_ref_active_key"
            ),
            models.CheckConstraint(
                condition=~Q(session_key="") | ~Q(order_ref=""), name="omniman_ref_points_somewhere"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scope}/{self.key} → {self.order_ref or self.session_key}"


class TicketSequence(models.Model):
    """A daily counter per scope (``pickup:<channel>``): the last number handed out that day."""

    scope = models.CharField(max_length=128)
    day = models.DateField()
    last = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_refs"
        ordering = ["-day", "scope"]
        constraints = [models.UniqueConstraint(fields=["scope", "day"], name="omniman_ticket_sequence_day")]

    def __str__(self) -> str:
        return f"{self.scope} {self.day}: {self.last}"
