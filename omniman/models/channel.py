from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop

from omniman import conf
from omniman.channel_config import config_problems
from omniman.flow import KitchenFlow, OrderFlow, build_kitchen_flow, build_order_flow


# The words a channel's terminology can replace, and the statuses of the default flow.
TERM_DEFAULTS = {
    "session": _("Basket"),
    "sessions": _("Baskets"),
    "order": _("Order"),
    "orders": _("Orders"),
    "new": _("New"),
    "confirmed": _("Confirmed"),
    "processing": _("Processing"),
    "ready": _("Ready"),
    "dispatched": _("Dispatched"),
    "delivered": _("Delivered"),
    "completed": _("Completed"),
    "cancelled": _("Cancelled"),
    "returned": _("Returned"),
}

# Words callers pass as defaults (``term("session", "Draft")``), for the catalogue.
CALLER_DEFAULTS = (gettext_noop("Draft"), gettext_noop("Tab"), gettext_noop("Round"))

# A plural a channel does not name is its singular + "s" (English and Portuguese both).
PLURALS = {"sessions": "session", "orders": "order"}

# Labels of the checks Omniman's contrib apps provide (a configured label that is
# one of these English words is shown translated).
CHECK_LABELS = {"stock": gettext_noop("Stock"), "pricing": gettext_noop("Pricing")}


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
        INTERNAL = "internal", _("Internal (the hub prices items)")
        EXTERNAL = "external", _("External (prices come with the items)")

    class EditPolicy(models.TextChoices):
        OPEN = "open", _("Open")
        LOCKED = "locked", _("Locked (items cannot be edited)")

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
    def kitchen_flow(self) -> KitchenFlow:
        """How this channel's items move at the kitchen stations (``config["kitchen_flow"]``)."""
        return build_kitchen_flow((self.config or {}).get("kitchen_flow"), self.order_flow)

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
        label = spec.get("label")
        if isinstance(label, dict):  # one label per language, like the terminology
            code = (translation.get_language() or settings.LANGUAGE_CODE).lower()
            label = label.get(code) or label.get(code.split("-")[0])
        label = str(label or CHECK_LABELS.get(check_code) or "")
        if label in CHECK_LABELS.values():
            return translation.gettext(label)
        return label or check_code.replace("_", " ").capitalize()

    @property
    def language(self) -> str:
        """The language of what the channel sends unattended (emails): ``config["language"]``, else ``LANGUAGE_CODE``."""
        return str((self.config or {}).get("language") or settings.LANGUAGE_CODE)

    @property
    def time_zone(self) -> str:
        """The channel's time zone (``config["time_zone"]``, e.g. ``"America/Sao_Paulo"``), else ``TIME_ZONE``."""
        return str((self.config or {}).get("time_zone") or settings.TIME_ZONE)

    def terms(self, language: str | None = None) -> dict[str, str]:
        """The channel's words in ``language`` (the active one by default).

        ``config["terminology"]`` is either one dict for every language
        (``{"session": "Tab"}``) or one per language
        (``{"en": {"session": "Tab"}, "pt-br": {"session": "Comanda"}}``), looked
        up by the full code (``pt-br``), then its base (``pt``). A language the
        channel does not name gets none: the translated defaults apply, so a
        Portuguese screen never shows the English word.
        """
        terminology: dict[str, Any] = (self.config or {}).get("terminology") or {}
        if not terminology or not any(isinstance(value, dict) for value in terminology.values()):
            return {key: str(value) for key, value in terminology.items() if value and not isinstance(value, dict)}
        code = (language or translation.get_language() or settings.LANGUAGE_CODE).lower()
        for candidate in (code, code.split("-")[0]):
            words = terminology.get(candidate)
            if isinstance(words, dict):
                return {key: str(value) for key, value in words.items() if value}
        for candidate, words in terminology.items():
            if isinstance(words, dict) and candidate.lower().split("-")[0] == code.split("-")[0]:
                return {key: str(value) for key, value in words.items() if value}
        return {}

    def term(self, key: str, default: str | None = None) -> str:
        """The channel's word for ``key`` (``"session"``, ``"order"``, a status…) in the active language."""
        terms = self.terms()
        value = terms.get(key)
        if value:
            return value
        if key in PLURALS and terms.get(PLURALS[key]):
            return terms[PLURALS[key]] + "s"  # "Tab" → "Tabs", "Comanda" → "Comandas"
        if default is not None:
            return translation.gettext(str(default))  # a caller's English word ("Basket", "Draft"), translated
        if key in TERM_DEFAULTS:
            return str(TERM_DEFAULTS[key])
        return key.replace("_", " ").capitalize()

    @property
    def terminology(self) -> dict[str, Any]:
        """``config["terminology"]`` as configured (one dict, or one per language)."""
        return dict((self.config or {}).get("terminology") or {})
