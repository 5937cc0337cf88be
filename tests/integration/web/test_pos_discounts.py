"""The POS's discount form (a line or the whole, % or amount, with a reason), the manager PIN dialog, "My PIN"."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from omniman import approvals
from omniman.models import OperatorPin
from tests.factories import DbState
from tests.integration.web.helpers import CAFE, HX, act, assert_cart, basket, fresh, logged_in, template_names, url

pytestmark = [pytest.mark.django_db, CAFE]


@pytest.fixture
def tab():
    return basket("tables", ("BURG", 2), table="12")  # 2 × 34.90 = 69.80, + 10 % service


@pytest.fixture
def max_pin(cafe):
    user = User.objects.create_user("max", password="x")
    user.groups.add(Group.objects.get_or_create(name="manager")[0])
    approvals.set_pin(user, "4321")
    return user


def discount(client, session, **data):
    return act(client, "discount", session, {"mode": "percent", "reason": "regular", **data})


def test_a_cashier_gives_a_small_discount_on_the_whole(pos, tab):
    items_q = tab.total_q - tab.totals["service_q"]
    body = assert_cart(discount(pos, tab, value="10"))
    after = fresh(tab)
    assert after.rev == tab.rev + 1 and after.totals["discount_q"] == (items_q + 5) // 10
    assert "Discount 10 %" in body and "(regular)" in body
    [added] = [a for a in after.adjustments if a["kind"] == "discount"]
    assert added["actor"] == "user:pos" and added["approved_by"] == ""


def test_a_line_discount_by_amount_in_currency_units(pos, tab):
    line = tab.lines[0]["line_id"]
    body = assert_cart(discount(pos, tab, line_id=line, mode="amount", value="2,00"))
    assert fresh(tab).totals["discount_q"] == 200
    assert "Discount · Burger" in body


def test_over_the_limit_the_pin_dialog_opens_and_a_manager_pin_approves(pos, tab, max_pin):
    state = DbState(tab)
    refused = discount(pos, tab, value="30", reason="birthday")
    body = assert_cart(refused, status=422)  # a form to complete (htmx swaps 422), not a 403 page
    state.assert_unchanged()
    assert 'name="approved_by"' in body and 'name="pin"' in body  # the PIN dialog, in the open form
    assert 'value="30"' in body and 'value="birthday"' in body  # what was typed is kept
    # A wrong PIN: refused again, nothing written.
    wrong = discount(pos, tab, value="30", reason="birthday", approved_by="max", pin="0000")
    assert_cart(wrong, status=422)
    state.assert_unchanged()
    # The manager types their PIN on the cashier's screen.
    approved = discount(pos, tab, value="30", reason="birthday", approved_by="max", pin="4321")
    assert_cart(approved)
    [added] = [a for a in fresh(tab).adjustments if a["kind"] == "discount"]
    assert added["approved_by"] == "max" and added["actor"] == "user:pos" and added["percent"] == "30"


def test_a_manager_signed_in_needs_no_pin(manager, tab):
    assert_cart(discount(manager, tab, value="50"))
    assert fresh(tab).totals["discount_q"] > 0


@pytest.mark.parametrize(
    "data,status",
    [({"value": "abc"}, 422), ({"value": "10", "reason": ""}, 422), ({"value": "150"}, 422), ({"mode": "amount", "value": "-1"}, 422)],
)
def test_refused_discounts_keep_the_form_and_change_nothing(pos, tab, data, status):
    state = DbState(tab)
    body = assert_cart(discount(pos, tab, **data), status=status)
    state.assert_unchanged()
    assert 'class="discount" open' in body


def test_a_stale_screen_gets_the_fresh_cart(pos, tab):
    state = DbState(tab)
    assert_cart(discount(pos, tab, value="5", rev=tab.rev - 1), status=409)
    state.assert_unchanged()


def test_remove_a_discount(pos, tab):
    discount(pos, tab, value="5")
    after = fresh(tab)
    [added] = [a for a in after.adjustments if a["kind"] == "discount"]
    path = reverse("pos:remove_adjustment", args=["tables", tab.session_key, added["id"]])
    body = assert_cart(pos.post(path, {"rev": after.rev}, **HX))
    assert [a["kind"] for a in fresh(tab).adjustments] == ["service_charge"] and "Discount 5 %" not in body


def test_kitchen_may_not(kitchen, tab):
    state = DbState(tab)
    assert discount(kitchen, tab, value="5").status_code == 403
    state.assert_unchanged()


def test_the_cart_with_discounts_costs_the_same_queries(pos):
    def cart_queries(lines: int) -> int:
        session = basket("tables", *[("BURG", 1)] * lines, table=f"q{lines}")
        for item in session.lines:
            discount(pos, fresh(session), line_id=item["line_id"], value="5")
        with CaptureQueriesContext(connection) as queries:
            assert pos.get(url("session", session), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart").status_code == 200
        return len(queries.captured_queries)

    assert cart_queries(1) == cart_queries(5)


def test_my_pin_page(cafe):
    client = logged_in("max", "manager")
    page = client.get(reverse("pos:my_pin"))
    assert page.status_code == 200 and "You have no PIN yet." in page.content.decode()
    assert client.post(reverse("pos:my_pin"), {"pin": "12", "again": "12"}).status_code == 422
    assert client.post(reverse("pos:my_pin"), {"pin": "1234", "again": "1235"}).status_code == 422
    assert not OperatorPin.objects.exists()
    response = client.post(reverse("pos:my_pin"), {"pin": "123456", "again": "123456"})
    assert response.status_code == 302
    assert approvals.verify_pin("max", "123456").username == "max"
    assert "You have a PIN." in client.get(reverse("pos:my_pin")).content.decode()
    assert "pos/pin.html" in template_names(client.get(reverse("pos:my_pin")))
