"""Money, quantities and times by locale and currency (omniman.formatting, Babel)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from django.utils import translation

from omniman.exceptions import ValidationError
from omniman.formatting import format_date, format_datetime, format_money, format_qty, format_time, parse_money
from omniman.monetary import minor_units

NBSP = "\xa0"
NNBSP = "\u202f"


@pytest.mark.parametrize(
    "code,places", [("BRL", 2), ("USD", 2), ("EUR", 2), ("JPY", 0), ("KWD", 3), ("brl", 2), ("", 2), ("XYZ", 2)]
)
def test_minor_units(code, places):
    assert minor_units(code) == places


@pytest.mark.parametrize(
    "amount_q,currency,locale,expected",
    [
        (123456, "BRL", "pt-br", f"R${NBSP}1.234,56"),
        (123456, "BRL", "en", "R$1,234.56"),
        (123456, "USD", "en", "$1,234.56"),
        (123456, "USD", "pt-br", f"US${NBSP}1.234,56"),
        (123456, "EUR", "de", f"1.234,56{NBSP}€"),
        (123456, "EUR", "fr", f"1{NNBSP}234,56{NBSP}€"),
        (1234, "JPY", "en", "¥1,234"),  # no minor unit: 1234 quanta are 1234 yen
        (1234, "JPY", "pt-br", f"JP¥{NBSP}1.234"),
        (1234, "KWD", "en", "KWD1.234"),  # three decimals: 1234 quanta are 1.234 dinars
        (5, "BRL", "pt-br", f"R${NBSP}0,05"),
        (0, "BRL", "pt-br", f"R${NBSP}0,00"),
    ],
)
def test_format_money(amount_q, currency, locale, expected):
    assert format_money(amount_q, currency, locale) == expected


def test_negative_amounts_keep_their_sign():
    assert format_money(-1250, "BRL", "pt-br") == f"-R${NBSP}12,50"
    assert format_money(-1250, "USD", "en") == "-$12.50"
    assert format_money(-1250, "EUR", "de") == f"-12,50{NBSP}€"
    assert format_money(-7, "JPY", "en") == "-¥7"


def test_a_fractional_amount_is_rounded_to_a_whole_quantum_half_up():
    assert format_money(Decimal("1250.5"), "BRL", "pt-br") == f"R${NBSP}12,51"
    assert format_money(Decimal("1250.49"), "BRL", "pt-br") == f"R${NBSP}12,50"
    assert format_money(Decimal("-1250.5"), "BRL", "en") == "-R$12.51"
    assert format_money(Decimal("99.5"), "JPY", "en") == "¥100"


def test_format_money_uses_the_active_language_by_default():
    with translation.override("pt-br"):
        assert format_money(123456, "BRL") == f"R${NBSP}1.234,56"
    with translation.override("en"):
        assert format_money(123456, "BRL") == "R$1,234.56"


def test_format_money_without_a_currency_writes_the_number():
    assert format_money(-5, "", "en") == "-0.05"
    assert format_money(123456, "", "pt-br") == "1.234,56"


@pytest.mark.parametrize(
    "qty,locale,expected",
    [("2.000", "en", "2"), ("0.5", "en", "0.5"), ("0.5", "pt-br", "0,5"), ("1234.125", "pt-br", "1.234,125"), ("1E+1", "en", "10")],
)
def test_format_qty(qty, locale, expected):
    assert format_qty(Decimal(qty), locale) == expected


def test_times_are_24_hour_in_pt_br_and_in_the_channels_time_zone():
    moment = datetime(2026, 12, 2, 17, 5, tzinfo=timezone.utc)
    assert format_time(moment, "pt-br", "America/Sao_Paulo") == "14:05"
    assert format_time(moment, "en", "UTC") == "5:05\u202fPM"
    assert format_datetime(moment, "pt-br", "America/Sao_Paulo") == "02/12/2026 14:05"
    assert format_date(moment, "pt-br", "Asia/Tokyo") == "3 de dez. de 2026"  # already the next day in Tokyo


@pytest.mark.parametrize(
    "text,currency,locale,expected",
    [
        ("12,50", "BRL", "pt-br", 1250),
        ("12.50", "BRL", "en", 1250),
        ("12.50", "BRL", "pt-br", 1250),  # one separator and at most the currency's decimals: a decimal point
        ("12,50", "BRL", "en", 1250),  # (never 1.250 or 1,250, which no one groups that way)
        ("R$ 1.234,56", "BRL", "pt-br", 123456),
        ("1.234.567,89", "BRL", "pt-br", 123456789),
        ("$1,234.56", "USD", "en", 123456),
        ("12", "BRL", "pt-br", 1200),
        (" 7,5 ", "BRL", "pt-br", 750),
        ("1234", "JPY", "en", 1234),
        ("1,234", "KWD", "pt-br", 1234),
        ("1.234", "KWD", "en", 1234),
    ],
)
def test_parse_money_reads_the_locales_separator(text, currency, locale, expected):
    assert parse_money(text, currency, locale) == expected


@pytest.mark.parametrize(
    "text,currency,locale",
    [
        ("12,505", "BRL", "pt-br"),  # more decimals than the currency has
        ("12.505", "BRL", "en"),
        ("1.5", "JPY", "en"),
        ("abc", "BRL", "pt-br"),
        ("-1", "BRL", "pt-br"),
        ("", "BRL", "en"),
        ("1,2,3.4", "BRL", "en"),
    ],
)
def test_parse_money_refuses_what_is_not_an_amount(text, currency, locale):
    with pytest.raises(ValidationError) as caught:
        parse_money(text, currency, locale)
    assert caught.value.code == "invalid_price"
    assert caught.value.context["value"] == text
