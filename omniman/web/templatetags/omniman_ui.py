"""Display helpers for the operator screens."""

from __future__ import annotations

import re

from django import template

from omniman import formatting, texts

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
    """Compact age in the active language: ``45s``, ``12m``, ``3h05`` (``12min`` in pt-br)."""
    from django.utils import timezone
    from django.utils.translation import gettext

    if moment is None:
        return ""
    seconds = max(int((timezone.now() - moment).total_seconds()), 0)
    if seconds < 60:
        return gettext("%(seconds)ss") % {"seconds": seconds}
    if seconds < 3600:
        return gettext("%(minutes)sm") % {"minutes": seconds // 60}
    return gettext("%(hours)sh%(minutes)s") % {"hours": seconds // 3600, "minutes": f"{(seconds % 3600) // 60:02d}"}


@register.filter
def handle_label(handle_type: str) -> str:
    """``"table"`` → ``Table`` (``Mesa`` in pt-br)."""
    return texts.handle_label(handle_type)


@register.filter
def station_label(station: str) -> str:
    """A kitchen station's name (``"pastry"`` → ``Pastry``, ``Confeitaria`` in pt-br)."""
    from omniman.web.kitchen import STATION_LABELS

    label = STATION_LABELS.get(station or "")
    return str(label) if label else (station or "").replace("_", " ").capitalize()


@register.filter
def status_label(status: str) -> str:
    """An order status in the active language (``"ready"`` → ``Ready``, ``Pronto`` in pt-br), no channel's words."""
    return texts.status_label(status)


@register.filter
def item_status_label(status: str) -> str:
    """A kitchen item's status in the active language (``"cooking"`` → ``Cooking``)."""
    from omniman.web.kitchen import item_status_label as label

    return label(status)


@register.filter
def method_label(method: str) -> str:
    """A payment method's name (``"cash"`` → ``Cash``, ``Dinheiro`` in pt-br), as the receipt names it."""
    from omniman.receipts import method_label as label

    return label(method or "")


@register.filter
def brand_label(brand: str) -> str:
    """A card brand's name as printed on cards (``"mastercard"`` → ``Mastercard``, ``"amex"`` → ``Amex``)."""
    from omniman.web.bill import BRAND_LABELS

    return BRAND_LABELS.get((brand or "").lower()) or (brand or "").replace("_", " ").title()


@register.filter
def note(amount_q, currency: str = "") -> str:
    """A banknote's value as a quick-tender button shows it: ``money`` without zero cents (``R$ 50``, ``R$ 12,50``)."""
    from omniman.monetary import minor_units

    text = money(amount_q, currency)
    places = minor_units(currency)
    if places and int(amount_q) % 10**places == 0:
        text = re.sub(r"[.,]0{%d}(?=\D*$)" % places, "", text)
    return text
