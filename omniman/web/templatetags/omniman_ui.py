"""Display helpers for the operator screens."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()

SYMBOLS = {"BRL": "R$", "USD": "$", "EUR": "€", "GBP": "£"}


@register.filter
def money(amount_q, currency: str = "") -> str:
    """``1250|money:"BRL"`` → ``R$ 12.50``."""
    if amount_q in (None, ""):
        return "—"
    amount = int(amount_q)
    sign = "−" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    symbol = SYMBOLS.get(currency, currency)
    return f"{sign}{symbol} {whole:,}.{cents:02d}".strip()


@register.filter
def qty(value) -> str:
    """``Decimal("2.000")`` → ``2``; ``Decimal("0.5")`` → ``0.5``."""
    try:
        number = Decimal(str(value))
    except Exception:  # noqa: BLE001
        return str(value)
    return format(number.normalize(), "f")


@register.filter
def term(channel, key: str) -> str:
    """The channel's word for ``key`` (``{{ channel|term:"session" }}`` → ``Tab``)."""
    defaults = {"session": "Basket", "order": "Order"}
    return channel.term(key, defaults.get(key))


@register.filter
def age(moment) -> str:
    """Compact age: ``45s``, ``12m``, ``3h``."""
    from django.utils import timezone

    if moment is None:
        return ""
    seconds = max(int((timezone.now() - moment).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}"
