from decimal import Decimal

import pytest

from omniman.monetary import format_money, monetary_mult, parse_price_q, parse_qty, qty_to_str


@pytest.mark.parametrize(
    "qty,price,expected",
    [
        (1, 100, 100),
        ("1.5", 333, 500),  # 499.5 → 500 (half up)
        ("0.5", 1, 1),  # 0.5 → 1
        ("0.499", 1, 0),
        (Decimal("0.125"), 4990, 624),  # 623.75
        ("3", 0, 0),
        (0.1, 3, 0),  # floats go through their repr: 0.3 → 0
        ("1000000", 10**10, 10**16),
    ],
)
def test_monetary_mult_rounds_half_up(qty, price, expected):
    assert monetary_mult(qty, price) == expected
    assert isinstance(monetary_mult(qty, price), int)


@pytest.mark.parametrize(
    "value,expected",
    [(1, Decimal("1")), ("2.500", Decimal("2.5")), ("0.001", Decimal("0.001")), (10, Decimal("10")), ("1.2500", Decimal("1.25"))],
)
def test_parse_qty_accepts(value, expected):
    parsed = parse_qty(value)
    assert parsed == expected
    assert "E" not in str(parsed)


@pytest.mark.parametrize(
    "value",
    [
        0, -1, "0.0001", "1.2345", "abc", None, True, "NaN", "Infinity", [], "1000000.001", "",
        # strict text: ASCII digits and one decimal point, nothing else
        "1e3", "1E3", "1_0", "\u0661", "\u0662.5", "\uff11", " 1", "1 ", "+1", "1.", ".5", "0x10", "1,5",
    ],
)
def test_parse_qty_rejects(value):
    assert parse_qty(value) is None


def test_qty_to_str_is_canonical():
    assert qty_to_str(Decimal("1E+1")) == "10"
    assert qty_to_str(Decimal("2.500")) == "2.5"


@pytest.mark.parametrize("value,expected", [(0, 0), (1250, 1250), ("75", None), ("1e3", None), (-1, None), (1.5, None), (True, None), ("x", None), (10**11, None)])
def test_parse_price_q(value, expected):
    assert parse_price_q(value) == expected


def test_format_money_keeps_its_name_and_follows_the_active_language():
    from django.utils import translation

    with translation.override("en"):
        assert format_money(123456, "BRL") == "R$1,234.56"
        assert format_money(-5) == "-0.05"
    with translation.override("pt-br"):
        assert format_money(123456, "BRL") == "R$\xa01.234,56"
