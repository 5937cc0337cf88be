"""Refused forms on the POS (``omniman.web.forms`` through ``omniman.web.pos``): 422 with the error next to its
field and the typed text kept — and on a 409 too, in the fresh cart (issue #17 item 4: a refused note keeps its text).
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from omniman.models import Session
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    STALE_BANNER,
    act,
    assert_cart,
    assert_changes,
    assert_page,
    basket,
    fresh,
    other_screen_touches,
    shown_rev,
    text,
)

pytestmark = [pytest.mark.django_db, CAFE]

TYPED = "extra hot, takeaway cup"


def field(body: str, name: str, line_id: str = "") -> str:
    """The ``<input>`` (or ``<textarea>``) named ``name`` (of ``line_id``'s editor, if given)."""
    if line_id:
        match = re.search(rf'<input id="{name}-{line_id}" name="{name}"[^>]*>', body)
    else:
        match = re.search(rf'<(?:input|textarea) name="{name}"[^>]*>(?:[^<]*</textarea>)?', body)
    assert match, f"no field {name!r}"
    return match.group(0)


@pytest.mark.parametrize("htmx", [True, False])
def test_a_stale_note_keeps_what_was_typed_in_the_fresh_cart(pos, htmx):
    session = basket("tables", "BURG", table="3")
    line = session.lines[0]["line_id"]
    newer = other_screen_touches(session)  # the tab changed on another screen
    before = DbState(session)
    response = act(pos, "note", session, {"note": TYPED}, line=line, htmx=htmx)
    body = assert_cart(response, 409) if htmx else assert_page(response, 409)
    assert STALE_BANNER in body
    note = field(body, "note", line)
    assert f'value="{TYPED}"' in note  # the editor is open again, with the text
    assert shown_rev(body) == newer.rev and f'name="rev" value="{newer.rev}"' in body
    before.assert_unchanged()
    # Save again: it applies on the fresh rev.
    assert_changes(act(pos, "note", fresh(session), {"note": TYPED}, line=line))
    assert fresh(session).lines[0]["meta"]["note"] == TYPED


@pytest.mark.parametrize("htmx", [True, False])
def test_a_note_too_long_comes_back_with_its_error_by_the_field(pos, htmx):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    typed = "x" * 201
    before = DbState(session)
    response = act(pos, "note", session, {"note": typed}, line=line, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    note = field(body, "note", line)
    assert f'value="{typed}"' in note and 'aria-invalid="true"' in note
    assert f'<p class="field-error" id="note-{line}-error">Note is too long (at most 200 characters).</p>' in body
    before.assert_unchanged()


@pytest.mark.parametrize("htmx", [True, False])
def test_a_refused_price_keeps_the_price_and_reason(manager, htmx):
    session = basket("counter", "CAP")
    line = session.lines[0]["line_id"]
    before = DbState(session)
    response = act(manager, "price", session, {"price": "4.567", "reason": "regular"}, line=line, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert 'value="4.567"' in field(body, "price", line) and 'value="regular"' in field(body, "reason", line)
    assert re.search(rf'<p class="field-error" id="price-{line}-error">Enter an amount like 12.50', body)
    assert 'class="banner banner-error"' in body
    before.assert_unchanged()


def test_a_price_with_a_comma_is_applied(manager):
    session = basket("counter", "CAP")
    line = session.lines[0]["line_id"]
    assert_changes(act(manager, "price", session, {"price": "8,75", "reason": "regular"}, line=line))
    assert fresh(session).lines[0]["unit_price_q"] == 875


def test_a_refused_customer_form_reopens_with_what_was_typed(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    data = {"name": "Ana", "phone": "9" * 41, "notes": "ring twice"}
    body = assert_cart(act(pos, "customer", session, data), 422)
    assert '<details class="customer-form" open>' in body
    assert 'value="Ana"' in field(body, "name") and f'value="{"9" * 41}"' in field(body, "phone")
    assert ">ring twice</textarea>" in body
    assert '<p class="field-error" id="customer-phone-error">Phone is too long (at most 40 characters).</p>' in body
    before.assert_unchanged()


def test_an_invalid_form_from_a_stale_screen_is_a_conflict(pos):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    other_screen_touches(session)
    before = DbState(session)
    body = assert_cart(act(pos, "note", session, {"note": "y" * 201}, line=line), 409)
    assert STALE_BANNER in body and 'class="field-error"' in body and f'value="{"y" * 201}"' in body
    before.assert_unchanged()


def test_a_kernel_refusal_names_its_field(pos):
    """``unknown_product`` (the catalog service) is shown in the banner; the add form keeps the search box (never swapped)."""
    session = basket("counter", "ESP")
    before = DbState(session)
    body = assert_cart(act(pos, "add", session, {"q": "no-such-thing"}), 422)
    assert "No product matches “no-such-thing”." in body and 'id="add-form"' not in body
    before.assert_unchanged()


@pytest.mark.parametrize("htmx", [True, False])
def test_a_table_name_too_long_is_422_on_the_list_with_the_text_kept(pos, htmx):
    typed = "t" * 33
    count = Session.objects.count()
    response = pos.post(reverse("pos:open", args=["tables"]), {"table": typed}, **({"HTTP_HX_REQUEST": "true"} if htmx else {}))
    body = text(response)
    assert response.status_code == 422 and "pos/channel.html" in [t.name for t in response.templates]
    assert f'value="{typed}"' in body and 'aria-invalid="true"' in body
    assert "Table is too long (at most 32 characters)." in body
    assert Session.objects.count() == count


def test_a_stale_customer_form_keeps_what_was_typed(pos):
    session = basket("counter", "ESP")
    other_screen_touches(session)
    before = DbState(session)
    body = assert_cart(act(pos, "customer", session, {"name": "Bea", "phone": "123", "notes": "window seat"}), 409)
    assert STALE_BANNER in body and '<details class="customer-form" open>' in body
    assert 'value="Bea"' in field(body, "name") and ">window seat</textarea>" in body
    assert 'class="field-error"' not in body  # nothing wrong with the input: only the screen was old
    before.assert_unchanged()
