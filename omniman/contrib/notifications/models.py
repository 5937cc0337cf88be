from __future__ import annotations

from django.db import models


class NotificationDelivery(models.Model):
    """Evidence that one backend was told about one occurrence of an order event.

    Unique on (order_ref, occurrence, backend_index): a retried or duplicated
    ``notification.send`` finds the row and does not send again.
    """

    order_ref = models.CharField(max_length=64, db_index=True)
    event = models.CharField(max_length=64)
    occurrence = models.CharField(max_length=255, help_text="What happened, once: the directive's dedupe key.")
    backend_index = models.PositiveSmallIntegerField()
    backend = models.CharField(max_length=255)
    detail = models.JSONField(default=dict, blank=True)
    directive_id = models.BigIntegerField(null=True, blank=True)
    delivered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_notifications"
        ordering = ["-delivered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order_ref", "occurrence", "backend_index"], name="omniman_notification_once"
            ),
        ]
        verbose_name_plural = "notification deliveries"

    def __str__(self) -> str:
        return f"{self.event} {self.order_ref} → {self.backend}"
