"""A channel's ``config``, checked: the kernel's one rule for what a channel may say.

Every writer uses it — ``Channel.save()`` and ``Channel.clean()`` (so the
admin's form, any ``ModelForm`` and ``seed_demo``), and the system check that
reads the configs already in the database (``omniman.W031``/``omniman.W032``).

A problem is a :class:`ConfigProblem`: a stable ``code`` and a sentence that
names the culprit. Two kinds:

* **shape** problems — the config cannot be read as the kernel reads it: not an
  object, an order flow ``validate_order_flow`` refuses, a transition to a
  status the flow never defines, a currency that is not an ISO 4217 code, a list
  where an object belongs. ``Channel.save()`` refuses them: such a channel would
  break its sessions, commits and orders.
* **handler** problems (code ``no_handler``) — a directive topic the channel
  enqueues (its required checks, ``post_commit_directives``, ``on_abandon``,
  ``order_flow.on_enter``) has no registered handler in this process.
  Handlers register in ``AppConfig.ready()``, so these are refused by
  ``Channel.clean()`` (the admin) and reported by ``manage.py check``, not by
  ``save()`` (a data migration may run before the handlers' apps are ready).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from omniman import registry
from omniman.flow import build_order_flow, validate_kitchen_flow, validate_order_flow
from omniman.monetary import is_currency

# Stable codes of a config problem.
INVALID_CONFIG = "invalid_config"
INVALID_ORDER_FLOW = "invalid_order_flow"
UNKNOWN_STATUS = "unknown_status"
INVALID_CHECKS = "invalid_checks"
INVALID_TOPIC = "invalid_topic"
NO_HANDLER = "no_handler"
INVALID_TERMINOLOGY = "invalid_terminology"
INVALID_CURRENCY = "invalid_currency"
INVALID_INGESTION = "invalid_ingestion"
INVALID_KITCHEN_FLOW = "invalid_kitchen_flow"
INVALID_SERVICE_CHARGE = "invalid_service_charge"
INVALID_DISCOUNTS = "invalid_discounts"

# A discount above this percent of what it applies to needs a manager, unless the channel says otherwise.
DEFAULT_APPROVAL_OVER_PERCENT = Decimal(10)

INVALID_PAYMENTS = "invalid_payments"

# Payment methods the kernel knows (issue #15): ``config["payments"]["methods"]`` picks among them.
PAYMENT_METHODS = ("cash", "card", "pix", "gateway")
DEFAULT_PAYMENT_METHODS = ("cash", "card")
PAYMENT_KEYS = ("methods", "pix", "card_brands", "quick_tender")


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a channel's config: a stable ``code`` and a sentence naming the culprit."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def config_problems(config: Any, *, handlers: bool = True) -> list[ConfigProblem]:
    """What is wrong with a channel's ``config`` (empty when valid).

    ``handlers=False`` leaves out the ``no_handler`` problems (the ones that
    depend on this process's registry): what ``Channel.save()`` enforces.
    """
    if not isinstance(config, dict):
        return [ConfigProblem(INVALID_CONFIG, _("config must be a JSON object"))]
    problems: list[ConfigProblem] = []
    flow_config = config.get("order_flow")
    flow_problems = validate_order_flow(flow_config)
    problems.extend(ConfigProblem(INVALID_ORDER_FLOW, text) for text in flow_problems)
    if not flow_problems and isinstance(flow_config, dict) and flow_config:
        problems.extend(_flow_problems(flow_config, handlers))
    if not flow_problems:
        kitchen = validate_kitchen_flow(config.get("kitchen_flow"), build_order_flow(flow_config))
        problems.extend(ConfigProblem(INVALID_KITCHEN_FLOW, text) for text in kitchen)
    problems.extend(_check_problems(config, handlers))
    for key in ("post_commit_directives", "on_abandon"):
        topics = config.get(key) or []
        if not isinstance(topics, list):
            problems.append(ConfigProblem(INVALID_TOPIC, _("%(key)s must be a list of directive topics") % {"key": key}))
            continue
        problems.extend(p for t in topics if (p := _topic_problem(key, t, handlers)))
    if "terminology" in config and not isinstance(config["terminology"], dict):
        problems.append(ConfigProblem(INVALID_TERMINOLOGY, _("terminology must be an object")))
    if "currency" in config and not is_currency(config["currency"]):
        problems.append(
            ConfigProblem(
                INVALID_CURRENCY,
                _("currency: %(value)s is not an ISO 4217 currency code such as 'BRL' (three capital letters)")
                % {"value": _shown(config["currency"])},
            )
        )
    problems.extend(_ingestion_problems(config.get("ingestion"), flow_config))
    problems.extend(_payments_problems(config.get("payments")))
    problems.extend(_money_problems(config))
    return problems


def payment_methods(config: Any) -> list[str]:
    """The payment methods a channel takes: ``config["payments"]["methods"]``, else cash and card."""
    payments = (config or {}).get("payments") if isinstance(config, dict) else None
    methods = payments.get("methods") if isinstance(payments, dict) else None
    return list(methods) if isinstance(methods, list) and methods else list(DEFAULT_PAYMENT_METHODS)


def payments_config(config: Any) -> dict[str, Any]:
    """``config["payments"]`` with ``methods`` filled in (the POS's tender panel reads it)."""
    payments = (config or {}).get("payments") if isinstance(config, dict) else None
    payments = dict(payments) if isinstance(payments, dict) else {}
    payments["methods"] = payment_methods(config)
    payments.setdefault("card_brands", [])
    payments.setdefault("quick_tender", [])
    payments.setdefault("pix", {})
    return payments




def channel_config_problems(config: Any) -> list[str]:
    """Every problem of ``config`` (handlers included), as sentences: empty when valid."""
    return [problem.message for problem in config_problems(config)]


def validate_channel_config(config: Any, *, handlers: bool = True) -> None:
    """Raise a ``ValidationError`` listing each problem with its code, if ``config`` has any."""
    problems = config_problems(config, handlers=handlers)
    if problems:
        raise ValidationError([ValidationError(p.message, code=p.code) for p in problems])


# -- parts -----------------------------------------------------------------------


def _shown(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _topic_problem(where: str, topic: Any, handlers: bool) -> ConfigProblem | None:
    if not isinstance(topic, str) or not topic:
        return ConfigProblem(
            INVALID_TOPIC, _("%(where)s: %(topic)s is not a directive topic") % {"where": where, "topic": _shown(topic)}
        )
    if handlers and registry.get_directive_handler(topic) is None:
        return ConfigProblem(
            NO_HANDLER,
            _("%(where)s: no handler is registered for the directive topic %(topic)r") % {"where": where, "topic": topic},
        )
    return None


def _flow_problems(flow_config: dict[str, Any], handlers: bool) -> list[ConfigProblem]:
    """Every status a transition leads to is defined; every ``on_enter`` topic is one."""
    problems = []
    flow = build_order_flow(flow_config)
    defined = set(flow.transitions) | set(flow.terminal_statuses)
    for source, targets in flow.transitions.items():
        for target in targets:
            if target not in defined:
                problems.append(
                    ConfigProblem(
                        UNKNOWN_STATUS,
                        _(
                            "order_flow.transitions.%(source)s: unknown status %(target)r "
                            "(it is neither a key of transitions nor a terminal status)"
                        )
                        % {"source": source, "target": target},
                    )
                )
    if flow.initial_status not in defined:
        problems.append(
            ConfigProblem(
                UNKNOWN_STATUS,
                _("order_flow.initial_status: unknown status %(status)r") % {"status": flow.initial_status},
            )
        )
    for status, topics in flow.on_enter.items():
        problems.extend(p for t in topics if (p := _topic_problem(f"order_flow.on_enter.{status}", t, handlers)))
    return problems


def _check_problems(config: dict[str, Any], handlers: bool) -> list[ConfigProblem]:
    """``checks`` and ``required_checks_on_commit``: each required check's topic has a handler."""
    problems = []
    checks = config.get("checks") or {}
    if not isinstance(checks, dict):
        problems.append(ConfigProblem(INVALID_CHECKS, _("checks must be an object of check code → {directive_topic, label}")))
        checks = {}
    for code, spec in checks.items():
        if not isinstance(spec, dict):
            problems.append(ConfigProblem(INVALID_CHECKS, _("checks.%(code)s must be an object") % {"code": code}))
        elif "directive_topic" in spec and (not isinstance(spec["directive_topic"], str) or not spec["directive_topic"]):
            problems.append(
                ConfigProblem(INVALID_CHECKS, _("checks.%(code)s.directive_topic must be a directive topic") % {"code": code})
            )
    required = config.get("required_checks_on_commit") or []
    if not isinstance(required, list):
        problems.append(ConfigProblem(INVALID_CHECKS, _("required_checks_on_commit must be a list of check codes")))
        required = []
    for code in required:
        if not isinstance(code, str) or not code:
            problems.append(
                ConfigProblem(
                    INVALID_CHECKS, _("required_checks_on_commit: %(code)s is not a check code") % {"code": _shown(code)}
                )
            )
            continue
        spec = checks.get(code) if isinstance(checks.get(code), dict) else {}
        topic = spec.get("directive_topic") or f"check.{code}"
        if handlers and isinstance(topic, str) and registry.get_directive_handler(topic) is None:
            problems.append(
                ConfigProblem(
                    NO_HANDLER,
                    _("required check %(code)r: no handler is registered for its directive topic %(topic)r")
                    % {"code": code, "topic": topic},
                )
            )
    return problems


def _ingestion_problems(ingestion: Any, flow_config: Any) -> list[ConfigProblem]:
    """``ingestion``: the external-order settings (docs/integrations/marketplace.rst)."""
    if ingestion is None:
        return []

    def problem(message: str) -> ConfigProblem:
        return ConfigProblem(INVALID_INGESTION, message)

    if not isinstance(ingestion, dict):
        return [problem(_("ingestion must be an object with signature_secret and/or status_map"))]
    problems = [
        problem(_("ingestion: unknown key %(key)r") % {"key": key})
        for key in ingestion
        if key not in ("signature_secret", "status_map")
    ]
    secret = ingestion.get("signature_secret")
    if secret is not None and not isinstance(secret, str):
        problems.append(problem(_("ingestion.signature_secret must be text")))
    status_map = ingestion.get("status_map")
    if status_map is None:
        return problems
    if not isinstance(status_map, dict):
        return [*problems, problem(_("ingestion.status_map must be an object of platform status → channel status"))]
    known = set(build_order_flow(flow_config if isinstance(flow_config, dict) else None).statuses)
    for platform, status in status_map.items():
        if status not in known:
            problems.append(
                problem(
                    _("ingestion.status_map.%(platform)s: unknown status %(status)s")
                    % {"platform": platform, "status": _shown(status)}
                )
            )
    return problems


def _payments_problems(payments: Any) -> list[ConfigProblem]:
    """``payments``: ``{"methods": [...], "pix": {"key", "merchant_name", "merchant_city"}, "card_brands", "quick_tender"}``."""
    if payments is None:
        return []

    def problem(message: str) -> ConfigProblem:
        return ConfigProblem(INVALID_PAYMENTS, message)

    if not isinstance(payments, dict):
        return [problem(_("payments must be an object with methods, pix, card_brands and quick_tender"))]
    problems = [problem(_("payments: unknown key %(key)r") % {"key": key}) for key in payments if key not in PAYMENT_KEYS]
    methods = payments.get("methods")
    if methods is not None:
        if not isinstance(methods, list) or not methods:
            problems.append(problem(_("payments.methods must be a non-empty list of %(known)s") % {"known": ", ".join(PAYMENT_METHODS)}))
        else:
            problems.extend(
                problem(_("payments.methods: unknown method %(method)s") % {"method": _shown(method)})
                for method in methods
                if method not in PAYMENT_METHODS
            )
    pix = payments.get("pix")
    if pix is not None:
        if not isinstance(pix, dict) or any(not isinstance(value, str) for value in pix.values()):
            problems.append(problem(_("payments.pix must be an object of text: key, merchant_name, merchant_city")))
        elif "pix" in (methods or []) and not pix.get("key"):
            problems.append(problem(_("payments.pix.key is required when the channel takes Pix")))
    brands = payments.get("card_brands")
    if brands is not None and (not isinstance(brands, list) or any(not isinstance(b, str) or not b for b in brands)):
        problems.append(problem(_("payments.card_brands must be a list of brand names")))
    quick = payments.get("quick_tender")
    if quick is not None and (
        not isinstance(quick, list) or any(isinstance(q, bool) or not isinstance(q, int) or q <= 0 for q in quick)
    ):
        problems.append(problem(_("payments.quick_tender must be a list of positive amounts in cents")))
    return problems


# -- money: the service charge and the discount approval threshold -------------------


def _percent(raw: Any) -> Decimal | None:
    """A number (or decimal text) in [0, 100] with at most 2 decimal places, else ``None``."""
    if raw is None or isinstance(raw, bool) or not isinstance(raw, (int, float, str, Decimal)):
        return None
    try:
        value = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        return None
    if not value.is_finite() or not 0 <= value <= 100 or value != value.quantize(Decimal("0.01")):
        return None
    return value


def _service_charge_raw(config: Any) -> tuple[str, Any]:
    config = config if isinstance(config, dict) else {}
    if "service_charge_percent" in config:
        return "service_charge_percent", config["service_charge_percent"]
    pricing = config.get("pricing")
    if isinstance(pricing, dict) and "service_charge_percent" in pricing:
        return "pricing.service_charge_percent", pricing["service_charge_percent"]
    return "", 0


def service_charge_percent(config: Any) -> Decimal:
    """The channel's automatic service charge, a percent of the items after discounts (0: none).

    ``config["service_charge_percent"]``, else the legacy
    ``config["pricing"]["service_charge_percent"]``; a value that is not a
    number from 0 to 100 with at most 2 decimal places counts as 0 (the config
    check refuses it on save).
    """
    return _percent(_service_charge_raw(config)[1]) or Decimal(0)


def discount_approval_percent(config: Any) -> Decimal:
    """Above this percent of what it applies to, a discount needs a manager: ``config["discounts"]["approval_over_percent"]`` (default 10)."""
    discounts = (config if isinstance(config, dict) else {}).get("discounts")
    if isinstance(discounts, dict) and "approval_over_percent" in discounts:
        value = _percent(discounts["approval_over_percent"])
        if value is not None:
            return value
    return DEFAULT_APPROVAL_OVER_PERCENT


def _money_problems(config: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    where, raw = _service_charge_raw(config)
    if where and _percent(raw) is None:
        problems.append(
            ConfigProblem(
                INVALID_SERVICE_CHARGE,
                _("%(where)s must be a number from 0 to 100 with at most 2 decimal places, not %(value)s")
                % {"where": where, "value": _shown(raw)},
            )
        )
    discounts = config.get("discounts")
    if discounts is not None:
        if not isinstance(discounts, dict):
            problems.append(ConfigProblem(INVALID_DISCOUNTS, _("discounts must be an object such as {\"approval_over_percent\": 10}")))
        elif "approval_over_percent" in discounts and _percent(discounts["approval_over_percent"]) is None:
            problems.append(
                ConfigProblem(
                    INVALID_DISCOUNTS,
                    _("discounts.approval_over_percent must be a number from 0 to 100 with at most 2 decimal places, not %(value)s")
                    % {"value": _shown(discounts["approval_over_percent"])},
                )
            )
    return problems
