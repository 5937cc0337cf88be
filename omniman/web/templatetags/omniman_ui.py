"""Display helpers for the operator screens."""

from __future__ import annotations

from django import template

from omniman import formatting

register = template.Library()


@register.filter
def money(amount_q, currency: str = "") -> str:
    """``1250|money:"BRL"`` → ``R$12.50`` (en), ``R$ 12,50`` (pt-br): the active language, the currency's decimals."""
    if amount_q in (None, ""):
        return "—"
    return formatting.format_money(amount_q, currency)


@register.filter
def qty(value) -> str:
    """``Decimal("2.000")`` → ``2``; ``Decimal("0.5")`` → ``0.5`` (en), ``0,5`` (pt-br)."""
    return formatting.format_qty(value)


@register.filter
def clock(moment, channel=None) -> str:
    """The time of day in the active language and the channel's time zone (``14:05`` in pt-br)."""
    return formatting.format_time(moment, time_zone=channel.time_zone if channel is not None else None)


@register.filter
def when(moment, channel=None) -> str:
    """Date and time in the active language and the channel's time zone."""
    return formatting.format_datetime(moment, time_zone=channel.time_zone if channel is not None else None)


@register.filter
def term(channel, key: str) -> str:
    """The channel's word for ``key`` in the active language (``{{ channel|term:"session" }}`` → ``Tab``, ``Comanda``)."""
    return channel.term(key)


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
