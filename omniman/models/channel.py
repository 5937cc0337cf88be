from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from omniman import conf
from omniman.channel_config import config_problems
from omniman.flow import OrderFlow, build_order_flow


class Channel(models.Model):
    """Where orders come from (POS counter, table tabs, web shop, marketplace).

    ``config`` carries the per-origin differences: required checks, the order
    flow, post-commit directives, terminology, currency. It is checked by
    ``omniman.channel_config``: ``save()`` refuses a config the kernel cannot
    read (its shape, its flow, its currency), ``clean()`` also one whose
    directive topics have no registered handler — each problem a
    ``ValidationError`` on ``config`` with a stable code.
    """

    class PricingPolicy(models.TextChoices):
        INTERNAL = "internal", "Internal (the hub prices items)"
        EXTERNAL = "external", "External (prices come with the items)"

    class EditPolicy(models.TextChoices):
        OPEN = "open", "Open"
        LOCKED = "locked", "Locked (items cannot be edited)"

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    pricing_policy = models.CharField(max_length=16, choices=PricingPolicy.choices, default=PricingPolicy.INTERNAL)
    edit_policy = models.CharField(max_length=16, choices=EditPolicy.choices, default=EditPolicy.OPEN)
    config = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    display_order = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["display_order", "code"]

    def __str__(self) -> str:
        return self.name or self.code

    def clean(self) -> None:
        super().clean()
        self._refuse_config_problems(handlers=True)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_config_problems(handlers=False)
        super().save(*args, **kwargs)

    def _refuse_config_problems(self, *, handlers: bool) -> None:
        problems = config_problems(self.config, handlers=handlers)
        if problems:
            raise ValidationError({"config": [ValidationError(p.message, code=p.code) for p in problems]})

    # -- config helpers -------------------------------------------------------

    @property
    def order_flow(self) -> OrderFlow:
        return build_order_flow((self.config or {}).get("order_flow"))

    @property
    def currency(self) -> str:
        return (self.config or {}).get("currency") or conf.get("DEFAULT_CURRENCY")

    @property
    def required_checks(self) -> list[str]:
        return list((self.config or {}).get("required_checks_on_commit") or [])

    @property
    def post_commit_directives(self) -> list[str]:
        return list((self.config or {}).get("post_commit_directives") or [])

    @property
    def on_abandon_directives(self) -> list[str]:
        """Topics enqueued when a session of this channel is abandoned (e.g. ``stock.release_session``)."""
        return list((self.config or {}).get("on_abandon") or [])

    def check_topic(self, check_code: str) -> str:
        spec = ((self.config or {}).get("checks") or {}).get(check_code) or {}
        return spec.get("directive_topic") or f"check.{check_code}"

    def check_label(self, check_code: str) -> str:
        spec = ((self.config or {}).get("checks") or {}).get(check_code) or {}
        return spec.get("label") or check_code.replace("_", " ").capitalize()

    def term(self, key: str, default: str | None = None) -> str:
        """The channel's word for ``key`` (``"session"``, ``"order"``, a status…)."""
        terms: dict[str, Any] = (self.config or {}).get("terminology") or {}
        value = terms.get(key)
        if value:
            return str(value)
        if default is not None:
            return default
        return key.replace("_", " ").capitalize()

    @property
    def terminology(self) -> dict[str, str]:
        return dict((self.config or {}).get("terminology") or {})
