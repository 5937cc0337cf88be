from __future__ import annotations

from django.db import models
from django.utils import timezone


class IdempotencyKey(models.Model):
    """Remembers a request by (scope, key) so a retry returns the first result."""

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    scope = models.CharField(max_length=128)
    key = models.CharField(max_length=255)
    # What the key was used for (for a commit: the session key); another
    # request under the same key is a conflict.
    fingerprint = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.IN_PROGRESS)
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    expires_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="omniman_idempotency_scope_key")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key} ({self.status})"

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()
