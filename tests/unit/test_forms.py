"""The POS's form fields and forms (``omniman.web.forms``): pure parsing, no database."""

from __future__ import annotations

import pytest
from django import forms as django_forms
from django.utils import translation

from omniman.web import forms



def clean(field, value):
    return field.clean(value)


def refused(field, value) -> str:
    with pytest.raises(django_forms.ValidationError) as caught:
        field.clean(value)
    return caught.value.error_list[0].code


# -- MoneyField ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quanta"),
    [("12.50", 1250), ("12,50", 1250), (" 9.5 ", 950), ("0", 0), ("0,01", 1), ("7", 700), ("+3.00", 300), ("100000000", 10**10)],
)
def test_money_accepts_a_point_or_a_comma(value, quanta):
    assert clean(forms.MoneyField(currency="BRL"), value) == quanta


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("abc", "invalid"),
        ("1.234", "invalid"),  # more than the currency's 2 minor units
        ("1.2.3", "invalid"),
        ("1,234.50", "invalid"),  # no grouping
        ("1 000", "invalid"),
        ("NaN", "invalid"),
        ("Infinity", "invalid"),
        ("1e30", "invalid"),
        ("1E2", "invalid"),
        ("-1", "negative"),
        ("-0.01", "negative"),
        ("100000000.01", "too_large"),
        ("9" * 41, "invalid"),
        ("", "required"),
    ],
)
def test_money_refuses(value, code):
    assert refused(forms.MoneyField(currency="BRL"), value) == code


def test_money_follows_the_currencys_minor_units():
    assert clean(forms.MoneyField(currency="JPY"), "1200") == 1200
    assert refused(forms.MoneyField(currency="JPY"), "12.5") == "invalid"
    assert clean(forms.MoneyField(currency="KWD"), "1,234") == 1234
    assert forms.minor_units("brl") == 2 and forms.minor_units("") == 2 and forms.minor_units("XYZ") == 2


def test_money_reads_the_locales_decimal_separator():
    with translation.override("pt-br"):
        assert clean(forms.MoneyField(currency="BRL"), "12,50") == 1250
    assert clean(forms.MoneyField(currency="BRL"), "12.50") == 1250


# -- QtyField, RevField, DeltaField, TextField ---------------------------------------------


@pytest.mark.parametrize(("value", "text"), [("2", "2"), ("1.5", "1.5"), ("1,5", "1.5"), ("2.000", "2"), ("0.001", "0.001")])
def test_qty(value, text):
    assert clean(forms.QtyField(), value) == text


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.2345", "NaN", "1000001", "Infinity", "1e-4"])
def test_qty_refuses(value):
    assert refused(forms.QtyField(), value) == "invalid"


def test_qty_message_names_the_rule():
    with pytest.raises(django_forms.ValidationError) as caught:
        forms.QtyField().clean("abc")
    assert "qty must be a positive number" in caught.value.messages[0]


@pytest.mark.parametrize(("value", "rev"), [("0", 0), ("12", 12), (" 3 ", 3)])
def test_rev(value, rev):
    assert clean(forms.RevField(), value) == rev


@pytest.mark.parametrize(("value", "code"), [("", "required"), ("x", "invalid"), ("-1", "min_value"), (str(2**31), "max_value"), ("1.5", "invalid")])
def test_rev_refuses(value, code):
    assert refused(forms.RevField(), value) == code


def test_a_missing_rev_says_reload():
    form = forms.SessionForm({})
    assert not form.is_valid() and "missing the session's revision" in form.refusal()


@pytest.mark.parametrize(("value", "delta"), [("1", "1"), ("+1", "1"), ("-1", "-1"), (" -1 ", "-1")])
def test_delta(value, delta):
    assert clean(forms.DeltaField(), value) == delta


@pytest.mark.parametrize("value", ["2", "x", "NaN", "0", "-2"])
def test_delta_refuses(value):
    assert refused(forms.DeltaField(), value) == "invalid_choice"


def test_text_is_stripped_and_bounded_with_its_label_in_the_message():
    field = forms.TextField(limit=5, label="Note")
    assert clean(field, "  hello ") == "hello" and clean(field, "") == ""
    with pytest.raises(django_forms.ValidationError) as caught:
        field.clean("x" * 6)
    assert caught.value.messages == ["Note is too long (at most 5 characters)."]
    assert refused(forms.TextField(limit=5, label="Reason", required=True), "  ") == "required"
    assert field.widget_attrs(field.widget)["maxlength"] == "5"


# -- the forms -----------------------------------------------------------------------------


def test_add_form_defaults_qty_and_keeps_64_characters_of_a_search():
    form = forms.AddForm({"rev": "1", "q": "x" * 80})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["qty"] == "1" and form.cleaned_data["q"] == "x" * 64 and form.cleaned_data["sku"] == ""
    assert not forms.AddForm({"rev": "1", "sku": "CAP", "qty": "abc"}).is_valid()


@pytest.mark.parametrize(
    ("data", "valid"),
    [({"delta": "1"}, True), ({"qty": "3"}, True), ({}, False), ({"qty": ""}, False), ({"delta": "x"}, False), ({"qty": "0"}, False)],
)
def test_qty_form_needs_a_step_or_a_quantity(data, valid):
    assert forms.QtyForm({"rev": "2", **data}).is_valid() is valid


def test_price_form_in_the_channels_currency():
    form = forms.PriceForm({"rev": "0", "price": "4,50", "reason": " regular "}, currency="BRL")
    assert form.is_valid() and form.cleaned_data == {"rev": 0, "price": 450, "reason": "regular"}
    assert list(form.fields) == ["rev", "price", "reason"]
    refused_form = forms.PriceForm({"rev": "0", "price": "4.5", "reason": ""}, currency="JPY")
    assert not refused_form.is_valid() and set(refused_form.errors) == {"price", "reason"}


def test_customer_form_bounds_each_field():
    form = forms.CustomerForm({"rev": "1", "name": "x" * 121, "phone": "1" * 41, "notes": "ok"})
    assert not form.is_valid() and set(form.errors) == {"name", "phone"}
    assert form.refusal() == "Name is too long (at most 120 characters)."
    assert form["name"].value() == "x" * 121  # what was typed comes back as typed


def test_commit_form_needs_its_key():
    assert not forms.CommitForm({"rev": "1", "idempotency_key": "  "}).is_valid()
    assert forms.CommitForm({"rev": "1", "idempotency_key": "abc"}).is_valid()


def test_open_form_table_is_optional_and_bounded():
    assert forms.OpenForm({}).is_valid()
    assert forms.OpenForm({"table": " 7 "}).is_valid()
    assert not forms.OpenForm({"table": "x" * 33}).is_valid()
