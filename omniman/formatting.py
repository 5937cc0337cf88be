"""Money, quantities, dates and times as a reader of a given locale writes them (Babel, CLDR data).

The one formatting module: the POS, kitchen board, admin, receipts and emails
all go through it. Kernel level: it knows languages (Django's active one by
default) but nothing of HTTP or templates.

Money is an integer number of the currency's minor units (``monetary.minor_units``):
``format_money(123456, "BRL", "pt-br")`` → ``"R$ 1.234,56"`` (a no-break space),
``format_money(1234, "JPY", "en")`` → ``"¥1,234"``, ``format_money(1234, "KWD", "en")`` → ``"KWD1.234"``.
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from omniman.exceptions import ValidationError
from omniman.monetary import MAX_AMOUNT_Q, minor_units

FALLBACK_LOCALE = "en"


@lru_cache(maxsize=64)
def _babel_locale(language: str) -> Locale:
    try:
        return Locale.parse(translation.to_locale(language))
    except (ValueError, UnknownLocaleError):
        return Locale.parse(FALLBACK_LOCALE)


def babel_locale(language: str | None = None) -> Locale:
    """The Babel locale of a Django language code (``"pt-br"`` → ``pt_BR``); the active language by default."""
    return _babel_locale((language or translation.get_language() or settings.LANGUAGE_CODE).lower())


def quanta_to_decimal(amount_q, currency: str) -> Decimal:
    """``1250, "BRL"`` → ``Decimal("12.50")``; ``1250, "JPY"`` → ``Decimal("1250")``."""
    whole_quanta = Decimal(amount_q).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return whole_quanta.scaleb(-minor_units(currency))


def format_money(amount_q, currency: str, locale: str | None = None) -> str:
    """An amount in minor units as the locale writes it, with the currency's own decimals.

    A fractional ``amount_q`` (a Decimal) is rounded to a whole quantum, half up.
    Without a currency the number alone is written, with two decimals.
    """
    loc = babel_locale(locale)
    code = (currency or "").strip().upper()
    if not code:
        return babel_numbers.format_decimal(quanta_to_decimal(amount_q, ""), format="#,##0.00", locale=loc)
    return babel_numbers.format_currency(quanta_to_decimal(amount_q, code), code, locale=loc, currency_digits=True)


def format_qty(qty, locale: str | None = None) -> str:
    """A quantity, up to 3 decimals, no trailing zeros: ``Decimal("2.500")`` → ``2,5`` (pt-br), ``2.5`` (en)."""
    try:
        number = Decimal(str(qty))
    except (InvalidOperation, ValueError):
        return str(qty)
    if not number.is_finite():
        return str(qty)
    return babel_numbers.format_decimal(number.normalize(), format="#,##0.###", locale=babel_locale(locale))


def zone(time_zone: str | tzinfo | None = None) -> tzinfo:
    """A ``tzinfo`` from a name (``"America/Sao_Paulo"``); Django's current time zone by default."""
    if time_zone is None or time_zone == "":
        return timezone.get_current_timezone()
    if isinstance(time_zone, str):
        try:
            return ZoneInfo(time_zone)
        except (ValueError, KeyError, OSError):
            return timezone.get_current_timezone()
    return time_zone


def format_datetime(value: datetime, locale: str | None = None, time_zone=None, *, format: str = "short") -> str:
    """Date and time in the locale (``02/12/2026 14:05`` in pt-br: 24-hour) and the time zone (a channel's)."""
    if value is None:
        return ""
    return babel_dates.format_datetime(value, format=format, tzinfo=zone(time_zone), locale=babel_locale(locale))


def format_time(value: datetime | time, locale: str | None = None, time_zone=None, *, format: str = "short") -> str:
    """The time of day: ``14:05`` (pt-br), ``2:05 PM`` (en)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(zone(time_zone)) if timezone.is_aware(value) else value
        value = value.time()
    return babel_dates.format_time(value, format=format, locale=babel_locale(locale))


def format_date(value: date | datetime, locale: str | None = None, time_zone=None, *, format: str = "medium") -> str:
    """The date: ``2 de dez. de 2026`` (pt-br), ``Dec 2, 2026`` (en)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(zone(time_zone)).date() if timezone.is_aware(value) else value.date()
    return babel_dates.format_date(value, format=format, locale=babel_locale(locale))


def parse_money(text: str, currency: str, locale: str | None = None) -> int:
    """What a cashier typed (``"12,50"`` in pt-br, ``"12.50"`` in en, ``"R$ 1.234,56"``) as minor units.

    The locale's decimal separator and grouping are read strictly; one
    separator followed by at most the currency's decimals is also taken as the
    decimal point (``"12.50"`` in pt-br is 12,50, never 1.250). Raises
    ``ValidationError("invalid_price")`` for text that is not a non-negative
    amount with at most the currency's decimals.
    """
    code = (currency or "").strip().upper()
    places = minor_units(code)
    loc = babel_locale(locale)
    raw = "" if text is None else str(text)
    cleaned = raw.strip()
    for symbol in {babel_numbers.get_currency_symbol(code, locale=loc), code} if code else set():
        cleaned = cleaned.replace(symbol, "")
    cleaned = cleaned.replace("\xa0", "").replace("\u202f", "").replace(" ", "")
    amount = _read_decimal(cleaned, places, loc)
    if amount is None or not amount.is_finite() or amount < 0:
        example = format_money(1250 if places else 12, code, locale)
        raise ValidationError(
            "invalid_price", _("Enter an amount such as %(example)s.") % {"example": example}, {"value": raw, "currency": code}
        )
    quanta = amount.scaleb(places)
    if quanta != quanta.to_integral_value() or quanta > MAX_AMOUNT_Q:
        raise ValidationError(
            "invalid_price",
            (_("%(currency)s amounts have at most %(places)s decimal places.") if places
             else _("%(currency)s amounts have no decimal places.")) % {"currency": code or "—", "places": places},
            {"value": raw, "currency": code},
        )
    return int(quanta)


def _read_decimal(text: str, places: int, loc: Locale) -> Decimal | None:
    if not text or text.startswith("-"):
        return None
    try:
        return babel_numbers.parse_decimal(text, locale=loc, strict=True)
    except babel_numbers.NumberFormatError:
        pass
    # One separator of either kind followed by 1..places digits: a decimal point.
    for separator in (",", "."):
        head, sep, tail = text.partition(separator)
        if sep and separator not in tail and head.isdigit() and tail.isdigit() and 0 < len(tail) <= max(places, 1):
            other = "." if separator == "," else ","
            if other not in text:
                return Decimal(f"{head}.{tail}")
    return None
