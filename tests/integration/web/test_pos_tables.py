"""Tables and parking on the screen (``pos.commit`` on a tab, ``pos.close_table``, ``pos.park``): rounds, the running total,
closing a table, park and resume.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse

from omniman.models import Order, Session
from omniman.services import BillService, ModifyService, OrderService, PaymentService
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    basket,
    fresh,
    settle,
    ready,
    url,
    act,
    text,
    assert_cart,
    assert_page,
    press,
)

pytestmark = [pytest.mark.django_db, CAFE]


def test_send_a_round_opens_the_next_round_on_the_same_tab(pos):
    tab = ready(("BURG", 2), table="4", channel="tables")
    response = act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    nxt = Session.objects.get(channel__code="tables", handle_ref="4", state="open")
    assert response["Location"] == url("session", nxt)
    order = Order.objects.get(session_key=tab.session_key)
    assert order.handle_ref == "4" and order.status == "confirmed"
    page = assert_page(pos.get(response["Location"]))
    assert f"Round {order.ref} sent." in page
    assert "Sent today" in page and order.ref in page and "2 × Burger" in page
    assert 'Table total</dt><dd class="table-total"><strong>R$70.40</strong>' in page  # the round with its 10 % service; nothing in the new one yet
    # The next round adds up.
    assert_cart(act(pos, "add", nxt, {"sku": "FRIES"}))
    cart = assert_cart(pos.get(url("session", nxt), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
    assert "Table total</dt>" in cart and "2 × Burger" in cart and "Fries" in cart


def test_table_total_includes_the_service_charge(pos):
    tab = ready("BURG", table="6", channel="tables")  # 32.00 + 10 % = 35.20
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    nxt = Session.objects.get(channel__code="tables", handle_ref="6", state="open")
    act(pos, "add", nxt, {"sku": "FRIES"})  # 14.00 + 10 % = 15.40
    cart = assert_cart(pos.get(url("session", nxt), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
    assert '<dd class="grand">R$15.40</dd>' in cart
    assert 'Table total</dt><dd class="table-total"><strong>R$50.60</strong>' in cart


def pay_table(table: str) -> None:
    bill = BillService.open("tables", handle_type="table", handle_ref=table)
    PaymentService.tender(bill.ref, method="cash", idempotency_key=uuid.uuid4().hex)


@pytest.mark.parametrize("htmx", [True, False])
def test_close_table_refuses_an_unpaid_bill_with_a_banner(pos, htmx):
    tab = ready("BURG", table="8", channel="tables")
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    current = Session.objects.get(channel__code="tables", handle_ref="8", state="open")
    before = DbState(current)
    response = act(pos, "close_table", current, htmx=htmx)
    body = assert_cart(response, 409) if htmx else assert_page(response, 409)
    banner = re.search(r"<div id=\"cart-banner\">(.*?)</div>", body, re.S).group(1)
    assert "bill is not settled: R$35.20 is still due." in banner, banner
    assert "Take the payment" in banner
    before.assert_unchanged()
    assert Order.objects.get(handle_ref="8").status == "confirmed"


@pytest.mark.parametrize("htmx", [True, False])
def test_close_table_of_a_paid_table_leaves_the_kitchens_work_on_the_board(pos, htmx):
    tab = ready("BURG", table="8", channel="tables")
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    second = Session.objects.get(channel__code="tables", handle_ref="8", state="open")
    second = ModifyService.modify_session(second.session_key, "tables", [{"op": "add_line", "sku": "SODA", "qty": 1}])
    settle()
    act(pos, "commit", fresh(second), {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    other_table = ready("ESP", table="9", channel="tables")
    act(pos, "commit", other_table, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    current = Session.objects.get(channel__code="tables", handle_ref="8", state="open")
    assert current.lines == []
    first, second = Order.objects.filter(handle_ref="8").order_by("id")
    OrderService.transition(first.ref, "ready", actor="kitchen")  # the kitchen finished the first round only
    pay_table("8")
    page = assert_page(pos.get(url("session", current)))
    response = press(pos, page, "Close table", htmx=htmx)
    channel_url = reverse("pos:channel", args=["tables"])
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == channel_url
    else:
        assert response.status_code == 302 and response["Location"] == channel_url
    first, second = fresh_order(first), fresh_order(second)
    assert (first.status, second.status) == ("completed", "confirmed")  # the unfinished round stays on the board
    closing = first.events.filter(type="status_changed", payload__reason="table closed")
    assert [(e.payload["to"], e.actor) for e in closing] == [("completed", "user:pos")]
    assert not second.events.filter(payload__reason="table closed").exists()
    assert Order.objects.get(handle_ref="9").status == "confirmed"  # another table is untouched
    assert fresh(current).state == "abandoned"
    assert not Session.objects.filter(channel__code="tables", handle_ref="8", state="open").exists()
    listing = text(pos.get(channel_url))
    assert "Table 8 closed." in listing


@pytest.mark.parametrize("htmx", [True, False])
def test_close_table_with_unsent_items_is_422(pos, htmx):
    tab = ready("BURG", table="8", channel="tables")
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    current = Session.objects.get(channel__code="tables", handle_ref="8", state="open")
    current = fresh(ModifyService.modify_session(current.session_key, "tables", [{"op": "add_line", "sku": "SODA", "qty": 1}]))
    before = DbState(current)
    response = act(pos, "close_table", current, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert "Send or clear the current round before closing the table." in body
    before.assert_unchanged()
    assert Order.objects.get(handle_ref="8").status == "confirmed"


def test_close_table_on_a_basket_touches_no_order(pos):
    waiting = ready("ESP")
    act(pos, "commit", waiting, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    assert Order.objects.get().status == "confirmed"
    current = Session.objects.get(channel__code="counter", state="open")
    response = act(pos, "close_table", current, htmx=True)
    assert Order.objects.get().status == "confirmed"  # fails: walked to "completed" ("table closed")
    assert fresh(current).state == "open"
    assert response.status_code in (404, 409, 422)


@pytest.mark.parametrize("htmx", [True, False])
def test_park_then_resume(pos, htmx):
    session = basket("counter", "ESP", data={"customer": {"name": "Ana"}})
    response = act(pos, "park", session, htmx=htmx)
    channel_url = reverse("pos:channel", args=["counter"])
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == channel_url
    else:
        assert response.status_code == 302 and response["Location"] == channel_url
    parked = fresh(session)
    assert parked.state == "open" and parked.data["parked"] is True and parked.rev == session.rev + 1
    listing = text(pos.get(channel_url))
    assert "Basket parked: resume it from the list." in listing
    row = re.search(rf'href="{re.escape(url("session", session))}">(.*?)</a>', listing, re.S).group(1)
    assert '<span class="badge">parked</span>' in row
    # Resume: the list links to the screen, which works as before.
    page = assert_page(pos.get(url("session", session)))
    assert "Espresso" in page
    assert_cart(act(pos, "add", parked, {"sku": "CAP"}))
    assert [li["sku"] for li in fresh(session).lines] == ["ESP", "CAP"]


def fresh_order(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


def test_close_table_asks_the_flow_whether_the_callers_roles_may_complete_the_rounds(pos):
    """A flow that gives the pos role no moves: closing is refused with 403 ``forbidden_transition``, nothing written."""
    from omniman.models import Channel

    tab = ready("BURG", table="7", channel="tables")
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    channel = Channel.objects.get(code="tables")
    channel.config = {**channel.config, "order_flow": {**channel.config.get("order_flow", {}), "permissions": {"pos": []}}}
    channel.save()
    current = Session.objects.get(channel__code="tables", handle_ref="7", state="open")
    OrderService.transition(Order.objects.get(handle_ref="7").ref, "ready", actor="kitchen")
    pay_table("7")
    before = DbState(current)
    events = list(Order.objects.get(handle_ref="7").events.values_list("id", flat=True))
    response = act(pos, "close_table", current, htmx=True)
    assert response.status_code == 403
    before.assert_unchanged()
    order = Order.objects.get(handle_ref="7")
    assert order.status == "ready"
    assert list(order.events.values_list("id", flat=True)) == events
