"""Registers, shifts and the cash drawer (issue #18): who opened which drawer with what float, what went in and out, how it closed.

A :class:`Register` is one cash drawer (a POS device or a counter). A
:class:`Shift` is one opening-to-closing period of a register: at most one is
open per register (a partial unique constraint, so a race of two opens has one
winner). Every payment and refund belongs to the shift open on its register
when it was made (``Payment.shift`` / ``Refund.shift``); cash put in or taken
out during the shift is a :class:`CashMovement`. Every state change writes a
:class:`ShiftEvent` (the audit trail). Only ``omniman.services.ShiftService``
writes any of them.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from omniman.models.billing import _WriteOnce

MAIN_REGISTER = "main"


class Register(models.Model):
    """One cash drawer. ``config`` holds ``difference_threshold_q`` (int) and ``denominations`` (list of ints, in cents)."""

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=128)
    is_active = models.BooleanField(_("active"), default=True)
    config = models.JSONField(_("configuration"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("register")
        verbose_name_plural = _("registers")

    def __str__(self) -> str:
        return self.name or self.code


class Shift(models.Model):
    """One opening-to-closing period of a register's drawer."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    register = models.ForeignKey(
        Register, on_delete=models.PROTECT, related_name="shifts", verbose_name=_("register")
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    currency = models.CharField(_("currency"), max_length=8)
    opening_float_q = models.BigIntegerField(_("opening float"), default=0)
    # {"<denomination in cents>": count} when the float was counted by denomination, {} when a total was typed.
    opening_count = models.JSONField(_("opening count"), default=dict, blank=True)
    opened_by = models.CharField(_("opened by"), max_length=150, blank=True, default="")
    opened_at = models.DateTimeField(_("opened at"), auto_now_add=True, db_index=True)
    auto_opened = models.BooleanField(_("opened automatically"), default=False)
    closed_by = models.CharField(_("closed by"), max_length=150, blank=True, default="")
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True, db_index=True)
    counted_q = models.BigIntegerField(_("counted"), null=True, blank=True)
    closing_count = models.JSONField(_("closing count"), default=dict, blank=True)
    expected_cash_q = models.BigIntegerField(_("expected cash"), null=True, blank=True)
    difference_q = models.BigIntegerField(_("difference"), null=True, blank=True)
    difference_approved_by = models.CharField(_("difference approved by"), max_length=150, blank=True, default="")
    difference_reason = models.CharField(_("difference reason"), max_length=255, blank=True, default="")
    rev = models.PositiveIntegerField(_("revision"), default=0)

    class Meta:
        ordering = ["-opened_at", "-id"]
        verbose_name = _("shift")
        verbose_name_plural = _("shifts")
        constraints = [
            models.UniqueConstraint(
                fields=["register"], condition=Q(status="open"), name="one_open_shift_per_register"
            ),
        ]
        indexes = [models.Index(fields=["register", "-opened_at"], name="omniman_shift_listing")]

    def __str__(self) -> str:
        return f"{self.register_id}#{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    def summary(self) -> dict[str, Any]:
        """The shift in a few numbers (an error's context, a log line)."""
        return {
            "shift_id": self.pk,
            "status": self.status,
            "rev": self.rev,
            "currency": self.currency,
            "opening_float_q": self.opening_float_q,
        }


class CashMovement(_WriteOnce):
    """Cash put into (``in``) or taken out of (``out``) a shift's drawer, with its reason."""

    class Kind(models.TextChoices):
        IN = "in", _("Cash in")
        OUT = "out", _("Cash out")

    shift = models.ForeignKey(Shift, on_delete=models.PROTECT, related_name="cash_movements", verbose_name=_("shift"))
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    amount_q = models.BigIntegerField(_("amount"))
    reason = models.CharField(_("reason"), max_length=255)
    actor = models.CharField(_("actor"), max_length=150, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("cash movement")
        verbose_name_plural = _("cash movements")
        constraints = [
            models.CheckConstraint(condition=Q(amount_q__gt=0), name="omniman_cash_movement_amount_positive"),
            models.CheckConstraint(condition=Q(kind__in=["in", "out"]), name="omniman_cash_movement_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_q} ({self.shift_id})"

    @property
    def signed_q(self) -> int:
        return int(self.amount_q) if self.kind == self.Kind.IN else -int(self.amount_q)


class ShiftEvent(_WriteOnce):
    """The append-only audit trail of a shift: opened, cash_in, cash_out, closed, difference_approved."""

    shift = models.ForeignKey(Shift, on_delete=models.PROTECT, related_name="events", verbose_name=_("shift"))
    type = models.CharField(_("type"), max_length=64, db_index=True)
    actor = models.CharField(_("actor"), max_length=150, blank=True, default="")
    reason = models.CharField(_("reason"), max_length=255, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("shift event")
        verbose_name_plural = _("shift events")

    def __str__(self) -> str:
        return f"{self.type} by {self.actor or '-'}"
