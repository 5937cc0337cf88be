"""The bill screen's pure parts: quick-tender amounts, the tip, and the tender/discount/split forms' parsing."""

from __future__ import annotations

import pytest

from omniman.web.bill import quick_tenders, tip_for
from omniman.web.forms import BillDiscountForm, PercentField, SplitForm, TenderForm

NOTES = [1000, 2000, 5000, 10000]


@pytest.mark.parametrize(
    ("amount_q", "expected"),
    [
        (3740, [3740, 4000, 5000, 10000]),  # exact, the next 10, 50, 100
        (12650, [12650, 13000, 14000, 15000]),
        (2000, [2000, 5000, 10000]),  # a round amount: exact, then the larger notes
        (1, [1, 1000, 2000, 5000]),
        (100000, [100000]),  # nothing above, but round numbers of larger notes are the amount itself
    ],
)
def test_quick_tenders_exact_then_the_next_notes_up(amount_q, expected):
    assert quick_tenders(amount_q, NOTES) == expected


def test_quick_tenders_offer_at_most_three_amounts_above_exact_and_ignore_bad_notes():
    offered = quick_tenders(1234, [0, -5, 200, 500, 1000, 2000, 5000, 10000])
    assert offered == [1234, 1400, 1500, 2000]
    assert all(b > a for a, b in zip(offered, offered[1:]))


@pytest.mark.parametrize(
    ("amount_q", "percent", "tip_q"),
    [(2035, "10", 204), (2035, "12.5", 254), (5, "10", 1), (4, "10", 0), (10000, "15", 1500)],
)
def test_tip_is_a_percent_half_up_to_the_cent(amount_q, percent, tip_q):
    assert tip_for(amount_q, percent) == tip_q


@pytest.mark.parametrize(("text", "value"), [("10", "10"), ("12,5", "12.5"), ("12.50", "12.5"), ("100", "100"), ("7%", "7")])
def test_percent_field_reads_a_percent(text, value):
    assert PercentField().clean(text) == value


@pytest.mark.parametrize("text", ["0", "100.01", "-5", "abc", "1e2", "10.123", "nan", "1" * 20])
def test_percent_field_refuses_what_is_not_a_percent_in_0_100(text):
    with pytest.raises(Exception) as info:
        PercentField().clean(text)
    assert info.value.code == "invalid"


def tender(**data):
    base = {"rev": "3", "idempotency_key": "k" * 32, "method": "cash"}
    return TenderForm({**base, **data}, currency="BRL")


def test_tender_form_quick_button_is_the_cash_tendered_in_quanta():
    form = tender(quick="5000", tendered="")
    assert form.is_valid(), form.errors
    assert form.cleaned_data["tendered"] == 5000 and form.cleaned_data["amount"] is None


def test_tender_form_typed_amounts_in_currency_units():
    form = tender(tendered="50,00", tip="2.04", amount="20.35")
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["tendered"], form.cleaned_data["tip"], form.cleaned_data["amount"]) == (5000, 204, 2035)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"tendered": "-5"}, "tendered"),
        ({"amount": "0"}, "amount"),
        ({"tip": "1,234"}, "tip"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"rev": ""}, "rev"),
        ({"tip_percent": "150"}, "tip_percent"),
    ],
)
def test_tender_form_refuses_bad_input_by_field(data, field):
    form = tender(**data)
    assert not form.is_valid()
    assert field in form.errors


def test_split_form_equal_needs_the_number_of_parts():
    assert not SplitForm({"rev": "1", "mode": "equal"}).is_valid()
    assert SplitForm({"rev": "1", "mode": "equal", "parts": "3"}).is_valid()
    assert not SplitForm({"rev": "1", "mode": "equal", "parts": "1"}).is_valid()
    assert SplitForm({"rev": "1", "mode": "items", "rest_parts": "2"}).is_valid()
    assert not SplitForm({"rev": "1", "mode": "thirds"}).is_valid()


@pytest.mark.parametrize(
    ("data", "ok"),
    [
        ({"percent": "10", "reason": "regular"}, True),
        ({"amount": "5,00", "reason": "regular", "line": "ORD-1:L-1"}, True),
        ({"percent": "10", "amount": "5", "reason": "x"}, False),  # both
        ({"reason": "x"}, False),  # neither
        ({"percent": "101", "reason": "x"}, False),
        ({"percent": "10", "reason": ""}, False),  # a reason is required
        ({"percent": "10", "reason": "x", "approver": "boss"}, False),  # a manager without a PIN
        ({"percent": "10", "reason": "x", "pin": "1234"}, False),  # a PIN without a manager
    ],
)
def test_discount_form(data, ok):
    form = BillDiscountForm({"rev": "2", **data}, currency="BRL")
    assert form.is_valid() is ok, form.errors
    if ok and data.get("line"):
        assert (form.cleaned_data["order_ref"], form.cleaned_data["line_id"]) == ("ORD-1", "L-1")


@pytest.mark.parametrize(
    ("language", "amount_q", "shown"),
    [("en", 5000, "R$50"), ("en", 1250, "R$12.50"), ("pt-br", 10000, "R$\xa0100"), ("pt-br", 2005, "R$\xa020,05")],
)
def test_a_note_is_shown_without_zero_cents(language, amount_q, shown):
    from django.utils import translation

    from omniman.web.templatetags.omniman_ui import note

    with translation.override(language):
        assert note(amount_q, "BRL").replace("\u202f", "\xa0") == shown
