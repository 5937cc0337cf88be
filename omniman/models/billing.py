"""Bills and payments (issue #15, SPEC §10): what a table, a basket or a draft owes, and how it was paid.

A :class:`Bill` gathers the unpaid orders of one handle (a table's rounds) or
one order (a counter sale); its ``total_q`` is derived (its orders' totals plus
its own adjustments) and its ``paid_q`` is the sum of its payments. Payments,
refunds and bill events are written once and never change. Only the services
(``omniman.services.BillService`` / ``PaymentService``) write any of them.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from omniman.exceptions import OmnimanError
from omniman.models.channel import Channel
from omniman.models.order import ImmutableQuerySet


class Bill(models.Model):
    """What one handle (a table) or one order owes, until payments cover it (or a manager writes it off)."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        SETTLED = "settled", _("Settled")
        WRITTEN_OFF = "written_off", _("Written off")

    ref = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="bills")
    handle_type = models.CharField(max_length=32, blank=True, default="")
    handle_ref = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True)
    rev = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=8)
    # Bill-level adjustments (discounts on sent items or the whole bill, voids, write-off): the §1 dict shape.
    adjustments = models.JSONField(default=list, blank=True, editable=False)
    # The current split plan: [{"index", "label", "amount_q", "lines", "paid_q"}].
    splits = models.JSONField(default=list, blank=True, editable=False)
    # Derived by the services: its orders' totals plus the adjustments; the sum of its payments.
    total_q = models.BigIntegerField(default=0, editable=False)
    paid_q = models.BigIntegerField(default=0, editable=False)
    opened_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    settled_at = models.DateTimeField(null=True, blank=True, db_index=True)
    closed_by = models.CharField(max_length=150, blank=True, default="")
    note = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "handle_type", "handle_ref"],
                condition=Q(status="open") & ~Q(handle_ref=""),
                name="omniman_one_open_bill_per_handle",
            ),
        ]
        indexes = [models.Index(fields=["channel", "status", "-opened_at"], name="omniman_bill_listing")]

    def __str__(self) -> str:
        return self.ref

    @property
    def due_q(self) -> int:
        """What is still owed (never negative)."""
        return max(int(self.total_q) - int(self.paid_q), 0)

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN

    @property
    def is_closed(self) -> bool:
        """Settled or written off: nothing more is owed, nothing more may be paid."""
        return self.status in (self.Status.SETTLED, self.Status.WRITTEN_OFF)

    @property
    def adjustments_q(self) -> int:
        """The signed sum of the bill-level adjustments."""
        return sum(int(adjustment.get("amount_q") or 0) for adjustment in self.adjustments or [])

    def summary(self) -> dict[str, Any]:
        """The bill in a few numbers (an error's context, a log line)."""
        return {
            "bill_ref": self.ref,
            "status": self.status,
            "rev": self.rev,
            "currency": self.currency,
            "total_q": self.total_q,
            "paid_q": self.paid_q,
            "due_q": self.due_q,
        }


class _WriteOnce(models.Model):
    """A row written once: saving it again or deleting it raises ``immutable``."""

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise OmnimanError("immutable", f"{type(self).__name__} rows are written once")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise OmnimanError("immutable", f"{type(self).__name__} rows cannot be deleted")


class Payment(_WriteOnce):
    """Money taken for a bill: ``amount_q`` goes to the bill, ``tip_q`` to the staff, ``change_q`` back to the customer."""

    class Status(models.TextChoices):
        CAPTURED = "captured", _("Captured")

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="payments")
    # The shift open on the payment's register when it was taken (null only for payments older than shifts).
    shift = models.ForeignKey(
        "omniman.Shift", on_delete=models.PROTECT, related_name="payments", null=True, blank=True, db_index=True
    )
    method = models.CharField(max_length=32, db_index=True)
    amount_q = models.BigIntegerField()
    tip_q = models.BigIntegerField(default=0)
    tendered_q = models.BigIntegerField(default=0)
    change_q = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=8)
    reference = models.CharField(max_length=128, blank=True, default="")
    brand = models.CharField(max_length=32, blank=True, default="")
    part = models.PositiveSmallIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CAPTURED)
    actor = models.CharField(max_length=150, blank=True, default="")
    idempotency_key = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    meta = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["bill", "idempotency_key"], name="omniman_payment_idempotency"),
            models.CheckConstraint(condition=Q(amount_q__gt=0), name="omniman_payment_amount_positive"),
            models.CheckConstraint(condition=Q(tip_q__gte=0), name="omniman_payment_tip_not_negative"),
            models.CheckConstraint(condition=Q(change_q__gte=0), name="omniman_payment_change_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount_q} ({self.bill_id})"


class Refund(_WriteOnce):
    """Money given back out of one payment (never more than it took)."""

    class Status(models.TextChoices):
        REFUNDED = "refunded", _("Refunded")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    # The shift open when the refund was made (its cash leaves that drawer); null only for refunds older than shifts.
    shift = models.ForeignKey(
        "omniman.Shift", on_delete=models.PROTECT, related_name="refunds", null=True, blank=True, db_index=True
    )
    amount_q = models.BigIntegerField()
    reason = models.CharField(max_length=255)
    actor = models.CharField(max_length=150, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.REFUNDED)
    reference = models.CharField(max_length=128, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(amount_q__gt=0), name="omniman_refund_amount_positive")]

    def __str__(self) -> str:
        return f"refund {self.amount_q} of payment {self.payment_id}"


class BillEvent(_WriteOnce):
    """The append-only audit trail of a bill (payloads carry the totals before and after)."""

    bill = models.ForeignKey(Bill, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=64, db_index=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.type} by {self.actor or '-'}"
