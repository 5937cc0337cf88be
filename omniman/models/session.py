from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q

from omniman.models.channel import Channel


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): ``copy.deepcopy`` at a fraction of its cost."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def _item_for_reading(line: dict[str, Any]) -> dict[str, Any]:
    item = copy_json(line)
    item["qty"] = Decimal(str(item["qty"]))
    return item


class Session(models.Model):
    """Mutable pre-commit state: a basket, a table tab, a draft.

    Only services change it (each modification bumps ``rev``). ``items`` is a
    read-only copy; the stored lines keep quantities as exact decimal text.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        COMMITTED = "committed", "Committed"
        ABANDONED = "abandoned", "Abandoned"

    session_key = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="sessions")
    handle_type = models.CharField(max_length=32, blank=True, default="")
    handle_ref = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    pricing_policy = models.CharField(
        max_length=16, choices=Channel.PricingPolicy.choices, default=Channel.PricingPolicy.INTERNAL
    )
    edit_policy = models.CharField(max_length=16, choices=Channel.EditPolicy.choices, default=Channel.EditPolicy.OPEN)
    rev = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)
    lines = models.JSONField(default=list, blank=True, editable=False)
    total_q = models.BigIntegerField(default=0, editable=False)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    commit_token = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "handle_type", "handle_ref"],
                condition=Q(state="open") & ~Q(handle_ref=""),
                name="omniman_one_open_session_per_handle",
            ),
        ]
        indexes = [models.Index(fields=["channel", "state", "-opened_at"], name="omniman_session_listing")]

    def __str__(self) -> str:
        return self.session_key

    @property
    def items(self) -> list[dict[str, Any]]:
        """A copy of the lines (``qty`` as ``Decimal``); writing it changes nothing."""
        return [_item_for_reading(line) for line in self.lines]

    @property
    def items_count(self) -> int:
        return len(self.lines)

    @property
    def checks(self) -> dict[str, Any]:
        return copy_json((self.data or {}).get("checks") or {})

    @property
    def issues(self) -> list[dict[str, Any]]:
        return copy_json((self.data or {}).get("issues") or [])

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    def save(self, *args, **kwargs):
        # The total is derived, never trusted: it is always the sum of the line totals.
        self.total_q = sum(int(line.get("line_total_q") or 0) for line in self.lines)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "lines" in update_fields and "total_q" not in update_fields:
            kwargs["update_fields"] = [*update_fields, "total_q"]
        super().save(*args, **kwargs)
