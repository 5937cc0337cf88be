"""Money is an integer number of quanta (the currency's minor units: cents for BRL, yen for JPY); quantities are Decimals."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from typing import Any

from babel.numbers import get_currency_precision
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

QTY_PLACES = 3
MAX_QTY = Decimal("1000000")
MAX_UNIT_PRICE_Q = 10**10
# Largest amount a BigIntegerField holds.
MAX_AMOUNT_Q = 2**63 - 1
# Quantity text: ASCII digits with an optional decimal part — no sign, exponent,
# underscore, spaces or other scripts' digits (``Decimal()`` alone would take "1e3", "1_0", "١").
QTY_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def to_decimal(value) -> Decimal:
    """Exact Decimal of an int, str, Decimal or float (floats through ``repr``)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError("bool is not a number")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (int, str)):
        return Decimal(value.strip() if isinstance(value, str) else value)
    raise TypeError(f"not a number: {type(value).__name__}")


def monetary_mult(qty, price_q: int) -> int:
    """``qty * price_q`` rounded to a whole quantum, half up."""
    product = to_decimal(qty) * Decimal(int(price_q))
    return int(product.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def parse_qty(value) -> Decimal | None:
    """A positive Decimal with at most 3 decimal places, or ``None`` if ``value`` isn't one.

    Text must be plain ASCII decimal notation (``"2"``, ``"1.5"``); numbers and Decimals are taken as they are.
    """
    if isinstance(value, str) and not QTY_TEXT.fullmatch(value):
        return None
    try:
        qty = to_decimal(value)
    except (TypeError, ValueError, InvalidOperation):
        return None
    if not qty.is_finite() or qty <= 0 or qty > MAX_QTY:
        return None
    if qty.as_tuple().exponent < -QTY_PLACES and qty != qty.quantize(Decimal(1).scaleb(-QTY_PLACES)):
        return None
    return Decimal(qty_to_str(qty.quantize(Decimal(1).scaleb(-QTY_PLACES))))


def qty_to_str(qty: Decimal) -> str:
    """Canonical text of a quantity: ``Decimal("2.500")`` → ``"2.5"``, ``Decimal("1E+1")`` → ``"10"``."""
    return format(Decimal(qty).normalize(), "f")


def parse_price_q(value) -> int | None:
    """A non-negative ``int`` amount, or ``None`` (a bool, a float or text is not an amount)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if value < 0 or value > MAX_UNIT_PRICE_Q:
        return None
    return value


def minor_units(code: str) -> int:
    """Decimal places of a currency's minor unit (ISO 4217, via Babel's CLDR data): BRL 2, JPY 0, KWD 3.

    An amount ``amount_q`` of ``code`` is ``amount_q / 10 ** minor_units(code)``;
    an unknown or empty code counts as 2.
    """
    return get_currency_precision((code or "").strip().upper()) if code and code.strip() else 2


def format_money(amount_q: int, currency: str = "", locale: str | None = None) -> str:
    """``1250, "BRL"`` → ``"R$12.50"`` (en), ``"R$ 12,50"`` (pt-br): ``omniman.formatting.format_money``
    in the active language (or ``locale``), kept here for its callers."""
    from omniman.formatting import format_money as format_in_locale

    return format_in_locale(amount_q, currency, locale)


# -- currencies -------------------------------------------------------------------

INVALID_CURRENCY = "invalid_currency"


@cache
def _known_currencies() -> frozenset[str]:
    from babel.numbers import list_currencies

    return frozenset(list_currencies())


def is_currency(code: Any) -> bool:
    """Is ``code`` an ISO 4217 currency code (three capital ASCII letters, known to Babel)?

    ``"BRL"``, ``"EUR"`` and ``"USD"`` are; ``"usd"``, ``"DOLLARS-US"``, ``"<b>"``, ``""`` are not.
    """
    return (
        isinstance(code, str)
        and len(code) == 3
        and code.isascii()
        and code.isalpha()
        and code.isupper()
        and code in _known_currencies()
    )


def validate_currency(code: Any) -> None:
    """A Django validator: ``ValidationError`` (code ``invalid_currency``) unless :func:`is_currency`."""
    if not is_currency(code):
        raise ValidationError(
            _("%(value)s is not an ISO 4217 currency code such as 'BRL' (three capital letters)."),
            code=INVALID_CURRENCY,
            params={"value": repr(code)[:40]},
        )


# -- prices -----------------------------------------------------------------------

INVALID_PRICE = "invalid_price"


def validate_price_q(value: Any) -> None:
    """A Django validator for a stored unit price: an integer from 0 to ``MAX_UNIT_PRICE_Q``.

    ``ValidationError`` code ``invalid_price`` (the kernel's code for a bad price) otherwise.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_UNIT_PRICE_Q:
        raise ValidationError(
            _("A price is a whole number of cents from 0 to %(max)s; %(value)s is not."),
            code=INVALID_PRICE,
            params={"max": MAX_UNIT_PRICE_Q, "value": repr(value)[:40]},
        )
