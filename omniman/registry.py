"""Where extensions register, like ``django.contrib.admin.site``.

Apps register in ``AppConfig.ready()``; tests get a clean registry from a
fixture (``registry.clear()`` or ``registry.snapshot()``/``restore()``).
"""

from __future__ import annotations

import threading
from typing import Any

from omniman.protocols import (
    CategorySource, DirectiveHandler, IssueResolver, Modifier, PaymentGateway, StationSource, TicketSource, Validator,
)

_lock = threading.RLock()
_modifiers: dict[str, Modifier] = {}
_validators: dict[str, Validator] = {}
_directive_handlers: dict[str, DirectiveHandler] = {}
_issue_resolvers: dict[str, IssueResolver] = {}
# At most one, under the key "default": an optional capability a contrib app provides.
_ticket_sources: dict[str, TicketSource] = {}
_station_sources: dict[str, StationSource] = {}
_category_sources: dict[str, CategorySource] = {}
# At most one, under the key "default": the gateway of the bills' "gateway" payment method (omniman.contrib.payment).
_payment_gateways: dict[str, PaymentGateway] = {}
# The ticket sources stay last (tests clear that slot by position).
_REGISTRIES = (_modifiers, _validators, _directive_handlers, _issue_resolvers, _payment_gateways, _station_sources, _category_sources, _ticket_sources)

STAGES = ("draft", "commit")


def _require(obj: Any, protocol: type, what: str, attrs: tuple[str, ...]) -> None:
    missing = [a for a in attrs if not hasattr(obj, a)]
    if missing or not isinstance(obj, protocol):
        raise TypeError(f"{obj!r} is not a {what}: missing {', '.join(missing) or 'a callable'}")


def register_modifier(modifier: Modifier) -> Modifier:
    _require(modifier, Modifier, "Modifier", ("code", "order", "apply"))
    with _lock:
        if modifier.code in _modifiers:
            raise ValueError(f"a modifier with code {modifier.code!r} is already registered")
        _modifiers[modifier.code] = modifier
    return modifier


def register_validator(validator: Validator) -> Validator:
    _require(validator, Validator, "Validator", ("code", "stage", "validate"))
    if validator.stage not in STAGES:
        raise ValueError(f"validator stage must be one of {STAGES}, not {validator.stage!r}")
    with _lock:
        if validator.code in _validators:
            raise ValueError(f"a validator with code {validator.code!r} is already registered")
        _validators[validator.code] = validator
    return validator


def register_directive_handler(handler: DirectiveHandler) -> DirectiveHandler:
    _require(handler, DirectiveHandler, "DirectiveHandler", ("topic", "handle"))
    with _lock:
        if handler.topic in _directive_handlers:
            raise ValueError(f"a directive handler for topic {handler.topic!r} is already registered")
        _directive_handlers[handler.topic] = handler
    return handler


def register_issue_resolver(resolver: IssueResolver) -> IssueResolver:
    _require(resolver, IssueResolver, "IssueResolver", ("source", "resolve"))
    with _lock:
        if resolver.source in _issue_resolvers:
            raise ValueError(f"an issue resolver for source {resolver.source!r} is already registered")
        _issue_resolvers[resolver.source] = resolver
    return resolver


def register_ticket_source(source: TicketSource) -> TicketSource:
    """The pickup numbers' source (``omniman.contrib.refs`` registers one); only one may be registered."""
    _require(source, TicketSource, "TicketSource", ("tickets_for",))
    with _lock:
        if _ticket_sources:
            raise ValueError(f"a ticket source is already registered: {_ticket_sources['default']!r}")
        _ticket_sources["default"] = source
    return source


def register_station_source(source: StationSource) -> StationSource:
    """The products' kitchen stations (``omniman.contrib.catalog`` registers one); only one may be registered."""
    _require(source, StationSource, "StationSource", ("stations_for",))
    with _lock:
        if _station_sources:
            raise ValueError(f"a station source is already registered: {_station_sources['default']!r}")
        _station_sources["default"] = source
    return source


def stations_for(skus: list[str]) -> dict[str, str]:
    """Kitchen station by SKU from the registered source; ``{}`` without one."""
    with _lock:
        source = _station_sources.get("default")
    return source.stations_for(list(skus)) if source is not None and skus else {}


def register_category_source(source: CategorySource) -> CategorySource:
    """The products' categories for the reports (``omniman.contrib.catalog`` registers one); only one may be registered."""
    _require(source, CategorySource, "CategorySource", ("categories_for",))
    with _lock:
        if _category_sources:
            raise ValueError(f"a category source is already registered: {_category_sources['default']!r}")
        _category_sources["default"] = source
    return source


def categories_for(skus: list[str]) -> dict[str, str]:
    """Category name by SKU from the registered source; ``{}`` without one."""
    with _lock:
        source = _category_sources.get("default")
    return source.categories_for(list(skus)) if source is not None and skus else {}
def register_payment_gateway(gateway: PaymentGateway) -> PaymentGateway:
    """The gateway that takes the bills' ``gateway`` payments (``omniman.contrib.payment`` registers one); only one."""
    _require(gateway, PaymentGateway, "PaymentGateway", ("charge", "refund"))
    with _lock:
        if _payment_gateways:
            raise ValueError(f"a payment gateway is already registered: {_payment_gateways['default']!r}")
        _payment_gateways["default"] = gateway
    return gateway


def get_payment_gateway() -> PaymentGateway | None:
    """The registered payment gateway, or ``None`` (the ``gateway`` method is then unavailable)."""
    with _lock:
        return _payment_gateways.get("default")


def get_modifiers() -> list[Modifier]:
    """Registered modifiers, sorted by ``order`` (then ``code``, for a stable tie-break)."""
    with _lock:
        return sorted(_modifiers.values(), key=lambda m: (m.order, m.code))


def get_validators(stage: str | None = None) -> list[Validator]:
    with _lock:
        validators = sorted(_validators.values(), key=lambda v: v.code)
    if stage is None:
        return validators
    return [v for v in validators if v.stage == stage]


def get_directive_handler(topic: str) -> DirectiveHandler | None:
    with _lock:
        return _directive_handlers.get(topic)


def get_directive_handlers() -> dict[str, DirectiveHandler]:
    with _lock:
        return dict(_directive_handlers)


def get_issue_resolver(source: str) -> IssueResolver | None:
    with _lock:
        return _issue_resolvers.get(source)


def get_ticket_source() -> TicketSource | None:
    """The registered ticket source, or ``None`` (no pickup numbers: ``omniman.contrib.refs`` is not installed)."""
    with _lock:
        return _ticket_sources.get("default")


def tickets_for(order_refs: list[str]) -> dict[str, int]:
    """Pickup numbers by order ref from the registered source; ``{}`` without one."""
    source = get_ticket_source()
    return source.tickets_for(list(order_refs)) if source is not None and order_refs else {}


def clear() -> None:
    """Forget every registration (tests)."""
    with _lock:
        for target in _REGISTRIES:
            target.clear()


def snapshot() -> tuple[dict, ...]:
    """Copy the current registrations, to ``restore()`` them later (tests)."""
    with _lock:
        return tuple(dict(target) for target in _REGISTRIES)


def restore(state: tuple[dict, ...]) -> None:
    with _lock:
        for target, saved in zip(_REGISTRIES, state, strict=True):
            target.clear()
            target.update(saved)


__all__ = [
    "register_modifier",
    "register_validator",
    "register_directive_handler",
    "register_issue_resolver",
    "register_ticket_source",
    "register_payment_gateway",
    "get_payment_gateway",
    "get_modifiers",
    "get_validators",
    "get_directive_handler",
    "get_directive_handlers",
    "get_issue_resolver",
    "get_ticket_source",
    "tickets_for",
    "register_station_source",
    "stations_for",
    "register_category_source",
    "categories_for",
    "clear",
    "snapshot",
    "restore",
]
