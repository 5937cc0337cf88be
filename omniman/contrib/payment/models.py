from __future__ import annotations

from django.db import models


class MockTransaction(models.Model):
    """One operation the mock gateway answered, kept like a provider keeps it.

    Unique on ``idempotency_key``: a second call with a key the gateway has
    seen returns the stored answer, so nothing is charged or refunded twice.
    """

    class Kind(models.TextChoices):
        AUTHORIZE = "authorize", "Authorize"
        CAPTURE = "capture", "Capture"
        REFUND = "refund", "Refund"

    idempotency_key = models.CharField(max_length=255, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    reference = models.CharField(max_length=128, db_index=True, help_text="What the payment is for (an order ref).")
    payment_id = models.CharField(max_length=64, db_index=True, help_text="The authorization this operation belongs to.")
    transaction_id = models.CharField(max_length=64, help_text="The id this operation answered with.")
    status = models.CharField(max_length=16)
    amount_q = models.BigIntegerField()
    currency = models.CharField(max_length=8, blank=True, default="")
    error_code = models.CharField(max_length=64, blank=True, default="")
    message = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_payment"
        ordering = ["created_at", "id"]
        verbose_name = "mock gateway transaction"

    def __str__(self) -> str:
        return f"{self.kind} {self.reference} {self.amount_q} ({self.status})"
