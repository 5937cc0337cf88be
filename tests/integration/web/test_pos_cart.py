"""Changing the cart (``pos.add_item``, ``change_qty``, ``remove_line``, ``line_note``, ``override_price``, ``customer``):
what changed comes back (out-of-band swaps), bad input is 422, nothing changes on a refusal.
"""

from __future__ import annotations

import re

import pytest

from omniman.contrib.catalog.models import Product
from omniman.models import Directive
from omniman.services import SessionService
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    HX,
    logged_in,
    basket,
    fresh,
    url,
    act,
    assert_cart,
    assert_changes,
    assert_page,
    assert_back_to_session,
    qty_of,
    shown_rev,
    press,
)

pytestmark = [pytest.mark.django_db, CAFE]


def test_add_by_sku_htmx_returns_what_changed(pos):
    session = basket("counter", "ESP")
    response = act(pos, "add", session, {"sku": "CAP", "qty": "1"})
    body = assert_changes(response)
    after = fresh(session)
    assert after.rev == session.rev + 1
    assert [(line["sku"], line["qty"], line["unit_price_q"]) for line in after.lines] == [("ESP", "1", 600), ("CAP", "1", 950)]
    assert after.lines[1]["meta"]["station"] == "bar"
    assert "Cappuccino" in body and shown_rev(body) == after.rev
    assert f'name="rev" value="{after.rev}"' in body
    # The new line is appended to the list; the untouched one is not sent again.
    espresso, cappuccino = (line["line_id"] for line in after.lines)
    assert re.search(rf'<ul hx-swap-oob="beforeend:#lines">\s*<li class="line" id="line-{cappuccino}">', body)
    assert f'id="line-{espresso}"' not in body and "Espresso" not in body
    assert "R$15.50" in body  # the footer's total
    assert "pos:added" in response["HX-Trigger"]
    # The checks of the new rev were enqueued, not run (no dispatch in tests).
    assert Directive.objects.filter(topic="stock.hold", payload__rev=after.rev, status="queued").count() == 1


def test_add_by_sku_without_htmx_redirects_then_shows_it(pos):
    session = basket("counter")
    response = act(pos, "add", session, {"sku": "CAP"}, htmx=False)
    assert_back_to_session(response, session)
    assert [line["sku"] for line in fresh(session).lines] == ["CAP"]
    page = assert_page(pos.get(response["Location"]))
    assert "Cappuccino" in page and "R$9.50" in page


@pytest.mark.parametrize(
    "query,sku", [("ESP", "ESP"), ("esp", "ESP"), ("7890000000042", "CAP"), ("cappuccino", "CAP"), ("pão de", "PDQ")]
)


@pytest.mark.parametrize("htmx", [True, False])
def test_add_by_scan_or_name(pos, query, sku, htmx):
    session = basket("counter")
    response = act(pos, "add", session, {"q": query}, htmx=htmx)
    if htmx:
        assert_cart(response)  # the first line: the empty cart becomes a list
    else:
        assert_back_to_session(response, session)
    assert [line["sku"] for line in fresh(session).lines] == [sku]


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize(
    "data,message",
    [
        ({"q": "no-such-thing"}, "No product matches “no-such-thing”."),
        ({"sku": "NOPE"}, "No product matches “NOPE”."),
        ({}, "Pick a product."),
        ({"sku": "CAP", "qty": "abc"}, "qty must be a positive number"),
        ({"sku": "CAP", "qty": "0"}, "qty must be a positive number"),
    ],
)


def test_add_bad_input_is_422_and_nothing_changes(pos, data, message, htmx):
    session = basket("counter", "ESP")
    before = DbState(session)
    response = act(pos, "add", session, data, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert message in body and 'class="banner banner-error"' in body
    before.assert_unchanged()


def test_add_an_inactive_product_is_422(pos):
    Product.objects.filter(sku="CAP").update(is_active=False)
    session = basket("counter")
    before = DbState(session)
    body = assert_cart(act(pos, "add", session, {"sku": "CAP"}), 422)
    assert "No product matches" in body
    before.assert_unchanged()


def test_form_without_rev_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    response = pos.post(url("add", session), {"sku": "CAP"}, **HX)
    assert "missing the session&#x27;s revision" in assert_cart(response, 422)
    response = pos.post(url("add", session), {"sku": "CAP", "rev": "x"}, **HX)
    assert_cart(response, 422)
    before.assert_unchanged()


def test_add_on_a_locked_draft_is_refused(pos):
    draft = SessionService.open_session(
        "marketplace", handle_type="marketplace", handle_ref="MKT-9", items=[{"sku": "BURG", "qty": 1, "unit_price_q": 3490}]
    )
    before = DbState(draft)
    body = assert_cart(act(pos, "add", draft, {"sku": "CAP"}), 409)
    assert "come from the channel and cannot be edited here" in body
    before.assert_unchanged()


def test_qty_plus_and_minus_htmx(pos):
    session = basket("counter", "ESP", "CAP")
    line, other = (li["line_id"] for li in session.lines)
    body = assert_changes(act(pos, "qty", session, {"delta": "1"}, line=line))
    assert qty_of(session, line) == "2"
    assert re.search(rf'id="line-{line}" hx-swap-oob="true">.*?<span class="qty" aria-label="Quantity">2</span>', body, re.S)
    assert f'id="line-{other}"' not in body  # untouched
    session = fresh(session)
    assert_changes(act(pos, "qty", session, {"delta": "-1"}, line=line))
    assert qty_of(session, line) == "1"
    session = fresh(session)
    body = assert_changes(act(pos, "qty", session, {"delta": "-1"}, line=line))
    after = fresh(session)
    assert [li["sku"] for li in after.lines] == ["CAP"] and after.rev == session.rev + 1
    assert f'<li id="line-{line}" hx-swap-oob="delete"></li>' in body
    # The last line going empties the cart: the whole cart says so.
    body = assert_cart(act(pos, "qty", after, {"delta": "-1"}, line=other))
    assert "No items yet" in body and fresh(session).lines == []


def test_qty_buttons_without_htmx(pos):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    page = assert_page(pos.get(url("session", session)))
    response = press(pos, page, "+")
    assert_back_to_session(response, session)
    assert qty_of(session, line) == "2"
    page = assert_page(pos.get(response["Location"]))
    assert '<span class="qty" aria-label="Quantity">2</span>' in page
    assert_back_to_session(press(pos, page, "−"), session)
    assert qty_of(session, line) == "1"
    page = assert_page(pos.get(url("session", session)))
    assert_back_to_session(press(pos, page, "−"), session)
    assert fresh(session).lines == []
    assert "No items yet" in assert_page(pos.get(url("session", session)))


@pytest.mark.parametrize("htmx", [True, False])
def test_exact_qty(pos, htmx):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    response = act(pos, "qty", session, {"qty": "3"}, line=line, htmx=htmx)
    if htmx:
        assert "R$18.00" in assert_changes(response)
    else:
        assert_back_to_session(response, session)
    assert qty_of(session, line) == "3"
    assert fresh(session).total_q == 1800


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("data", [{"qty": "abc"}, {"qty": "0"}, {"qty": "-1"}, {"qty": ""}, {"qty": "1.2345"}, {"delta": "x"}])
def test_bad_qty_is_422_with_the_line_marked_and_nothing_changes(pos, data, htmx):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    before = DbState(session)
    response = act(pos, "qty", session, data, line=line, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert 'class="banner banner-error"' in body
    assert f'class="line has-error" id="line-{line}"' in body
    before.assert_unchanged()


def test_delta_nan_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    response = act(pos, "qty", session, {"delta": "NaN"}, line=session.lines[0]["line_id"])
    assert_cart(response, 422)
    before.assert_unchanged()


def test_unknown_line_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    for name, data in (("qty", {"delta": "1"}), ("remove", {}), ("note", {"note": "x"})):
        body = assert_cart(act(pos, name, session, data, line="L-nope"), 422)
        assert 'class="banner banner-error"' in body
    before.assert_unchanged()


@pytest.mark.parametrize("htmx", [True, False])
def test_remove_line(pos, htmx):
    session = basket("counter", "ESP", "CAP")
    line = session.lines[0]["line_id"]
    response = act(pos, "remove", session, line=line, htmx=htmx)
    if htmx:
        body = assert_changes(response)
        assert f'<li id="line-{line}" hx-swap-oob="delete"></li>' in body
        assert "Cappuccino" not in body  # the line that stays is not sent again
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    assert [li["sku"] for li in after.lines] == ["CAP"] and after.rev == session.rev + 1


@pytest.mark.parametrize("htmx", [True, False])
def test_line_note(pos, htmx):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    response = act(pos, "note", session, {"note": "  no sugar "}, line=line, htmx=htmx)
    if htmx:
        assert "✎ no sugar" in assert_changes(response)
    else:
        assert_back_to_session(response, session)
        assert "✎ no sugar" in assert_page(pos.get(response["Location"]))
    assert fresh(session).lines[0]["meta"]["note"] == "no sugar"


def test_note_too_long_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    body = assert_cart(act(pos, "note", session, {"note": "x" * 201}, line=session.lines[0]["line_id"]), 422)
    assert "Note is too long (at most 200 characters)." in body
    before.assert_unchanged()


@pytest.mark.parametrize("htmx", [True, False])
def test_manager_overrides_a_price(manager, htmx):
    session = basket("counter", "CAP", ("ESP", 2))
    line = session.lines[1]["line_id"]
    page = assert_page(manager.get(url("session", session)))
    assert "Note · price" in page  # the line editor opens on demand
    editor = manager.get(url("session", session) + f"lines/{line}/edit/", HTTP_HX_REQUEST="true").content.decode()
    assert 'name="price"' in editor and "Override price" in editor and "<html" not in editor
    opened = assert_page(manager.get(url("session", session) + f"lines/{line}/edit/"))  # without JavaScript
    assert 'name="price"' in opened and 'name="note"' in opened
    response = act(manager, "price", session, {"price": "4,50", "reason": "regular"}, line=line, htmx=htmx)
    if htmx:
        body = assert_changes(response)
        assert "Price R$6.00 → R$4.50 (regular)" in body
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    target = after.lines[1]
    assert target["unit_price_q"] == 450 and target["line_total_q"] == 900
    assert target["meta"]["price_override"] == {"from": 600, "to": 450, "reason": "regular", "actor": "user:manager"}
    assert after.total_q == 950 + 900 and after.rev == session.rev + 1
    assert after.totals["discount_q"] == 0  # a new price, not a discount: discounts are adjustments (SPEC §10)


def test_superuser_overrides_a_price(cafe):
    admin = logged_in("boss", superuser=True)
    session = basket("counter", "CAP")
    assert_changes(act(admin, "price", session, {"price": "0", "reason": "on the house"}, line=session.lines[0]["line_id"]))
    assert fresh(session).lines[0]["unit_price_q"] == 0


def test_pos_user_cannot_override_a_price(pos):
    session = basket("counter", "CAP")
    before = DbState(session)
    for htmx in (True, False):
        response = act(pos, "price", session, {"price": "1.00", "reason": "friend"}, line=session.lines[0]["line_id"], htmx=htmx)
        assert response.status_code == 403
    before.assert_unchanged()
    assert fresh(session).lines[0]["unit_price_q"] == 950


@pytest.mark.parametrize(
    "data",
    [
        {"price": "abc", "reason": "r"},
        {"price": "", "reason": "r"},
        {"price": "-1", "reason": "r"},
        {"price": "1.234", "reason": "r"},
        {"price": "NaN", "reason": "r"},
        {"price": "Infinity", "reason": "r"},
        {"price": "100000000.01", "reason": "r"},  # above the largest unit price
        {"price": "5.00", "reason": ""},  # a reason is required
        {"price": "5.00", "reason": "x" * 201},
    ],
)


@pytest.mark.parametrize("htmx", [True, False])
def test_bad_price_is_422_and_nothing_changes(manager, data, htmx):
    session = basket("counter", "CAP")
    line = session.lines[0]["line_id"]
    before = DbState(session)
    response = act(manager, "price", session, data, line=line, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert 'class="banner banner-error"' in body and f'class="line has-error" id="line-{line}"' in body
    before.assert_unchanged()


def test_huge_exponent_price_is_422(manager):
    session = basket("counter", "CAP")
    before = DbState(session)
    response = act(manager, "price", session, {"price": "1e30", "reason": "r"}, line=session.lines[0]["line_id"])
    assert_cart(response, 422)
    before.assert_unchanged()


@pytest.mark.parametrize("htmx", [True, False])
def test_customer_and_notes(pos, htmx):
    session = basket("counter", "ESP")
    data = {"name": " Ana ", "phone": "+55 11 91234-5678", "notes": "pays by card"}
    response = act(pos, "customer", session, data, htmx=htmx)
    if htmx:
        assert '<p class="customer">Ana · +55 11 91234-5678</p>' in assert_cart(response)
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    assert after.data["customer"] == {"name": "Ana", "phone": "+55 11 91234-5678"}
    assert after.data["notes"] == "pays by card" and after.rev == session.rev + 1
    page = assert_page(pos.get(url("session", session)))
    assert 'value="Ana"' in page and ">pays by card</textarea>" in page


def test_customer_name_too_long_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    body = assert_cart(act(pos, "customer", session, {"name": "x" * 121, "phone": "", "notes": ""}), 422)
    assert "Name is too long" in body
    before.assert_unchanged()
