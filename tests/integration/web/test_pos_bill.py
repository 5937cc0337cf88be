"""The POS settle screens (``omniman.web.bill``): the bill, tender by cash/card/Pix, split, tip, discount,
void, write-off, close table, and the counter's "Pay". Every refusal asserts the code's status, the banner
and that nothing was written; every form is posted as the page rendered it (``press``).
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from omniman.models import Bill, Order, Payment, Session
from omniman.contrib.catalog.models import Product
from omniman.services import ModifyService
from tests.integration.web.helpers import CAFE, HX, act, assert_cart, fresh, make_user, press, ready, settle, text, url

pytestmark = [pytest.mark.django_db, CAFE]

STALE = "changed on another screen"


# -- builders ---------------------------------------------------------------------------------


def send_round(client, table: str, *lines) -> Order:
    """A round of ``lines`` for ``table`` (its open tab, or a new one), sent with the screen's Send button."""
    tab = Session.objects.filter(channel__code="tables", handle_ref=table, state="open").first()
    if tab is None:
        tab = ready(*lines, table=table, channel="tables")
    else:
        ops = []
        for entry in lines:
            sku, qty = (entry, 1) if isinstance(entry, str) else entry
            ops.append({"op": "add_line", "sku": sku, "qty": qty, "name": Product.objects.get(sku=sku).name})
        ModifyService.modify_session(tab.session_key, "tables", ops, ctx={"actor": "test"})
        settle()
        tab = fresh(tab)
    response = act(client, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    assert response.status_code == 302, text(response)[:2000]
    return Order.objects.get(session_key=tab.session_key)


def open_bill(client, table: str) -> tuple[Bill, str]:
    """"Bill" on the table's tab: the bill and its page."""
    tab = Session.objects.get(channel__code="tables", handle_ref=table, state="open")
    response = act(client, "open_bill", tab, htmx=False)
    assert response.status_code == 302, text(response)[:2000]
    bill = Bill.objects.get(channel__code="tables", handle_ref=table, status="open")
    assert response["Location"] == reverse("pos:bill", args=["tables", bill.ref])
    page = client.get(response["Location"])
    assert page.status_code == 200
    return bill, text(page)


def bill_url(bill: Bill, suffix: str = "") -> str:
    return reverse("pos:bill", args=[bill.channel.code, bill.ref]) + suffix


def payments(bill: Bill) -> list[tuple]:
    return list(Payment.objects.filter(bill=bill).values_list("method", "amount_q", "tip_q", "tendered_q", "change_q"))


def shown_due(body: str) -> str:
    return re.search(r'id="due">([^<]+)<', body).group(1)


# -- the bill ---------------------------------------------------------------------------------


def test_a_tables_bill_shows_every_round_its_total_and_what_is_due(pos):
    first = send_round(pos, "4", ("BURG", 2))
    second = send_round(pos, "4", "FRIES")
    bill, page = open_bill(pos, "4")
    assert first.ref in page and second.ref in page
    assert "Burger" in page and "Fries" in page
    assert bill.total_q == first.charged_q + second.charged_q
    assert shown_due(page) == "R$" + f"{bill.total_q / 100:.2f}"
    # Opening again goes to the same bill (get-or-open).
    again, _page = open_bill(pos, "4")
    assert again.pk == bill.pk


def test_cash_with_change_one_payment_per_key_even_on_a_double_tap(pos):
    send_round(pos, "3", ("BURG", 2))
    bill, page = open_bill(pos, "3")
    due = bill.total_q
    response = press(pos, page, "Cash", {"tendered": "100"}, htmx=True, action=bill_url(bill, "pay/"))
    body = text(response)
    assert response.status_code == 200, body[:2000]
    assert payments(bill) == [("cash", due, 0, 10000, 10000 - due)]
    assert 'id="change-due">R$' + f"{(10000 - due) / 100:.2f}" in body
    assert "Paid in full" in body
    # The same form again (a double tap, a retry): the first payment, nothing new.
    again = press(pos, page, "Cash", {"tendered": "100"}, htmx=True, action=bill_url(bill, "pay/"))
    assert again.status_code == 200
    assert Payment.objects.filter(bill=bill).count() == 1
    bill.refresh_from_db()
    assert bill.status == "settled"


def test_exact_is_one_tap(pos):
    send_round(pos, "5", "ESP")
    bill, page = open_bill(pos, "5")
    response = press(pos, page, "Exact", htmx=True, action=bill_url(bill, "pay/"))
    assert response.status_code == 200, text(response)[:2000]
    assert payments(bill) == [("cash", bill.total_q, 0, bill.total_q, 0)]


def test_a_stale_bill_is_refused_with_the_fresh_bill_and_the_typed_values_kept(pos):
    send_round(pos, "6", ("BURG", 2))
    bill, page = open_bill(pos, "6")
    # Another screen splits the bill meanwhile: its rev moves on.
    press(pos, page, "Split equally", {"parts": "2"}, htmx=True)
    before = payments(bill)
    response = press(pos, page, "Cash", {"tendered": "77,00"}, htmx=True, action=bill_url(bill, "pay/"))
    body = text(response)
    assert response.status_code == 409, body[:2000]
    assert STALE in body
    assert 'value="77,00"' in body  # what was typed
    bill.refresh_from_db()
    assert f'data-rev="{bill.rev}"' in body  # the fresh bill
    assert payments(bill) == before == []


@pytest.mark.parametrize(
    ("extra", "method", "field_text"),
    [
        ({"tendered": "-5"}, "cash", "cannot be negative"),
        ({"tendered": "1"}, "cash", "less than the amount"),
        ({"amount": "9999"}, "cash", "more than what is due"),
        ({"reference": ""}, "card", "authorization code"),
    ],
)
def test_bad_tender_is_refused_and_nothing_is_written(pos, extra, method, field_text):
    send_round(pos, "8", ("BURG", 2))
    bill, _page = open_bill(pos, "8")
    page = text(pos.get(bill_url(bill) + f"?method={method}"))
    label = "Cash" if method == "cash" else "approved"
    response = press(pos, page, label, extra, htmx=True, action=bill_url(bill, "pay/"))
    body = text(response)
    assert response.status_code == 422, body[:2000]
    assert field_text in body
    assert payments(bill) == []
    assert Bill.objects.get(pk=bill.pk).rev == bill.rev


def test_card_records_brand_and_auth_code(pos):
    send_round(pos, "9", "CAP")
    bill, _ = open_bill(pos, "9")
    page = text(pos.get(bill_url(bill) + "?method=card"))
    response = press(pos, page, "approved", {"brand": "Elo", "reference": "A1B2C3"}, htmx=True)
    assert response.status_code == 200, text(response)[:2000]
    payment = Payment.objects.get(bill=bill)
    assert (payment.method, payment.brand, payment.reference, payment.amount_q) == ("card", "Elo", "A1B2C3", bill.total_q)


def test_pix_shows_the_qr_for_the_amount_with_the_tip_and_confirms(pos):
    send_round(pos, "10", ("BURG", 2))
    bill, _ = open_bill(pos, "10")
    page = text(pos.get(bill_url(bill) + "?method=pix&tip_percent=10"))
    assert "<svg" in page and "pix-payload" in page
    tip = round(bill.total_q * 0.10)
    payload = re.search(r'class="pix-payload" readonly value="([^"]+)"', page).group(1)
    assert f"54{len(f'{(bill.total_q + tip) / 100:.2f}'):02d}{(bill.total_q + tip) / 100:.2f}" in payload
    response = press(pos, page, "received", htmx=True)
    assert response.status_code == 200, text(response)[:2000]
    assert payments(bill) == [("pix", bill.total_q, tip, bill.total_q + tip, 0)]


# -- split ------------------------------------------------------------------------------------


def test_split_by_items_then_the_rest_equally_and_pay_each_part(pos):
    send_round(pos, "11", ("BURG", 2), "FRIES")
    send_round(pos, "11", ("SODA", 2))
    bill, _ = open_bill(pos, "11")
    page = text(pos.get(bill_url(bill) + "?split=items"))
    lines = re.findall(r'name="guest-([^"]+)"', page)
    assert len(lines) == 3
    burgers, fries, _soda = lines
    response = press(pos, page, "Split by items", {f"guest-{burgers}": "1", f"guest-{fries}": "2", "rest_parts": "2"}, htmx=True)
    body = text(response)
    assert response.status_code == 200, body[:2000]
    bill.refresh_from_db()
    assert len(bill.splits) == 4
    assert sum(part["amount_q"] for part in bill.splits) == bill.total_q
    # Each part paid in turn: the panel follows the first part still open.
    for part in bill.splits:
        body = text(pos.get(bill_url(bill) + f"?part={part['index']}"))
        response = press(pos, body, "Exact", htmx=True, action=bill_url(bill, "pay/"))
        assert response.status_code == 200, text(response)[:2000]
    bill.refresh_from_db()
    assert bill.status == "settled"
    assert sorted(p.amount_q for p in Payment.objects.filter(bill=bill)) == sorted(part["amount_q"] for part in bill.splits)


def test_split_a_paid_bill_is_refused(pos):
    send_round(pos, "12", "ESP")
    bill, page = open_bill(pos, "12")
    press(pos, page, "Exact", htmx=True, action=bill_url(bill, "pay/"))
    bill.refresh_from_db()
    response = pos.post(bill_url(bill, "split/"), {"rev": bill.rev, "mode": "equal", "parts": 2}, **HX)
    assert response.status_code == 409
    assert "already paid" in text(response)
    assert Bill.objects.get(pk=bill.pk).splits == []


# -- discount, void, write-off --------------------------------------------------------------


def test_a_small_discount_needs_no_manager(pos):
    send_round(pos, "14", ("BURG", 2))
    bill, page = open_bill(pos, "14")
    response = press(pos, page, "Apply discount", {"percent": "5", "reason": "regular"}, htmx=True)
    assert response.status_code == 200, text(response)[:2000]
    after = Bill.objects.get(pk=bill.pk)
    assert after.total_q < bill.total_q
    assert [a["kind"] for a in after.adjustments] == ["discount"]


def test_a_discount_over_the_threshold_asks_a_managers_pin_then_applies(pos):
    from omniman.approvals import set_pin

    set_pin(make_user("boss", "manager"), "4321")
    send_round(pos, "15", ("BURG", 2))
    bill, page = open_bill(pos, "15")
    response = press(pos, page, "Apply discount", {"percent": "50", "reason": "birthday"}, htmx=True)
    body = text(response)
    assert response.status_code == 422, body[:2000]
    assert "Manager approval" in body and 'value="birthday"' in body
    assert Bill.objects.get(pk=bill.pk).adjustments == []
    wrong = press(pos, body, "Approve", {"approver": "boss", "pin": "0000"}, htmx=True)
    assert wrong.status_code == 422 and "PIN is not right" in text(wrong)
    assert Bill.objects.get(pk=bill.pk).adjustments == []
    ok = press(pos, body, "Approve", {"approver": "boss", "pin": "4321"}, htmx=True)
    assert ok.status_code == 200, text(ok)[:2000]
    (adjustment,) = Bill.objects.get(pk=bill.pk).adjustments
    assert adjustment["approved_by"] == "boss" and adjustment["reason"] == "birthday"


def test_only_a_manager_voids_and_writes_off(pos, manager):
    order = send_round(pos, "16", ("BURG", 2), "FRIES")
    bill, page = open_bill(pos, "16")
    assert "Void item" not in page and "Write off" not in page
    line_id = order.items.get(sku="FRIES").line_id
    refused = pos.post(bill_url(bill, "void/"), {"rev": bill.rev, "order_ref": order.ref, "line_id": line_id, "reason": "x"})
    assert refused.status_code == 403
    page = text(manager.get(bill_url(bill)))
    response = press(manager, page, "Void item", {"reason": "sent by mistake"}, htmx=True, action=bill_url(bill, "void/"))
    assert response.status_code == 200, text(response)[:2000]
    after = Bill.objects.get(pk=bill.pk)
    assert after.total_q < bill.total_q
    assert "VOID" in text(response)
    page = text(manager.get(bill_url(bill)))
    response = press(manager, page, "Write off", {"reason": "owner's friends"}, htmx=True)
    assert response.status_code == 200, text(response)[:2000]
    assert Bill.objects.get(pk=bill.pk).status == "written_off"


# -- close, counter ---------------------------------------------------------------------------


def test_close_table_needs_a_settled_bill_and_leaves_the_kitchen_alone(pos):
    order = send_round(pos, "17", ("BURG", 2))
    bill, page = open_bill(pos, "17")
    tab = Session.objects.get(channel__code="tables", handle_ref="17", state="open")
    early = act(pos, "close_table", tab)
    assert early.status_code == 409
    press(pos, page, "Exact", htmx=True, action=bill_url(bill, "pay/"))
    page = text(pos.get(bill_url(bill)))
    response = press(pos, page, "Close table 17", htmx=True)
    assert response.status_code == 200 and response["HX-Redirect"] == reverse("pos:channel", args=["tables"])
    order.refresh_from_db()
    assert order.status == "confirmed"  # the kitchen has not bumped it: it stays on the board
    assert not Session.objects.filter(channel__code="tables", handle_ref="17", state="open").exists()


def test_counter_pay_places_the_order_and_exact_cash_settles_it(pos):
    session = ready("ESP", "CRO")
    cart = assert_cart(pos.get(url("session", session), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
    response = press(pos, cart, "Pay ·", htmx=False)
    assert response.status_code == 302, text(response)[:2000]
    order = Order.objects.get(session_key=session.session_key)
    bill = Bill.objects.get(pk=order.bill_id)
    page = text(pos.get(response["Location"]))
    response = press(pos, page, "Exact", htmx=False, action=bill_url(bill, "pay/"))
    assert response.status_code == 302
    bill.refresh_from_db()
    assert bill.status == "settled" and payments(bill) == [("cash", order.total_q, 0, order.total_q, 0)]
    page = text(pos.get(response["Location"]))
    assert "Paid in full" in page and "Change" in page


def test_the_bill_screen_query_count_does_not_grow_with_lines(pos):
    def queries(bill: Bill) -> int:
        with CaptureQueriesContext(connection) as captured:
            response = pos.get(bill_url(bill))
        assert response.status_code == 200
        return len(captured.captured_queries)

    send_round(pos, "18", "ESP")
    small, _ = open_bill(pos, "18")
    send_round(pos, "19", "ESP", "CAP", "LATTE", "BURG", "FRIES", "SODA", "CRO")
    send_round(pos, "19", ("BURG", 3), "FRIES")
    big, _ = open_bill(pos, "19")
    pos.post(bill_url(big, "split/"), {"rev": big.rev, "mode": "equal", "parts": 3})
    assert Payment.objects.count() == 0
    few = queries(small)
    assert few > 0
    assert queries(big) <= few


def test_the_bill_screens_need_the_pos_role(anon, kitchen, pos):
    send_round(pos, "20", "ESP")
    bill, _ = open_bill(pos, "20")
    assert anon.get(bill_url(bill)).status_code == 302
    assert kitchen.get(bill_url(bill)).status_code == 403
    assert kitchen.post(bill_url(bill, "pay/"), {"rev": bill.rev}).status_code == 403
    assert pos.get(reverse("pos:bill", args=["counter", bill.ref])).status_code == 404  # another channel's bill


def test_two_screens_splitting_one_wins_the_other_gets_409_with_the_fresh_bill(pos):
    send_round(pos, "21", ("BURG", 2), "FRIES")
    bill, page = open_bill(pos, "21")
    first = press(pos, page, "Split equally", {"parts": "2"}, htmx=True)
    assert first.status_code == 200
    second = press(pos, page, "Split equally", {"parts": "3"}, htmx=True)
    body = text(second)
    assert second.status_code == 409 and STALE in body
    assert 'value="3"' in body  # what the second screen typed
    after = Bill.objects.get(pk=bill.pk)
    assert len(after.splits) == 2 and f'data-rev="{after.rev}"' in body


def test_the_gateway_charges_through_the_payment_app(pos):
    send_round(pos, "22", "LATTE")
    bill, _ = open_bill(pos, "22")
    page = text(pos.get(bill_url(bill) + "?method=gateway"))
    response = press(pos, page, "Charge", htmx=True)
    assert response.status_code == 200, text(response)[:2000]
    payment = Payment.objects.get(bill=bill)
    assert payment.method == "gateway" and payment.reference and payment.amount_q == bill.total_q


def test_a_discount_can_be_removed_and_a_bad_one_is_refused(pos):
    send_round(pos, "23", ("BURG", 2))
    bill, page = open_bill(pos, "23")
    refused = press(pos, page, "Apply discount", {"percent": "101", "reason": "x"}, htmx=True)
    assert refused.status_code == 422 and 'value="101"' in text(refused)
    assert Bill.objects.get(pk=bill.pk).adjustments == []
    applied = press(pos, page, "Apply discount", {"amount": "5,00", "reason": "late food"}, htmx=True)
    assert applied.status_code == 200, text(applied)[:2000]
    after = Bill.objects.get(pk=bill.pk)
    assert after.total_q == bill.total_q - 500
    (adjustment,) = after.adjustments
    response = pos.post(bill_url(bill, f"adjustments/{adjustment['id']}/remove/"), {"rev": after.rev}, **HX)
    assert response.status_code == 200, text(response)[:2000]
    assert Bill.objects.get(pk=bill.pk).total_q == bill.total_q


def test_without_javascript_a_refused_tender_renders_the_page_with_what_was_typed(pos):
    send_round(pos, "24", ("BURG", 2))
    bill, page = open_bill(pos, "24")
    response = press(pos, page, "Cash", {"tendered": "1,00"}, action=bill_url(bill, "pay/"))
    body = text(response)
    assert response.status_code == 422 and "<html" in body and 'value="1,00"' in body
    assert payments(bill) == []


# -- refund ------------------------------------------------------------------------------------


def test_a_manager_refunds_part_of_a_payment_once_and_an_over_refund_writes_nothing(pos, manager):
    from omniman.models import Refund
    from omniman.services import PaymentService

    send_round(pos, "18", ("ESP", 2))
    bill, page = open_bill(pos, "18")
    payment = PaymentService.tender(bill.ref, method="cash", idempotency_key="pay-18").payment
    assert "Refund" not in text(pos.get(bill_url(bill)))  # a cashier sees no refund
    refused = pos.post(bill_url(bill, "refund/"), {"payment": payment.pk, "amount": "1.00", "reason": "x", "idempotency_key": "k"})
    assert refused.status_code == 403 and not Refund.objects.exists()

    page = text(manager.get(bill_url(bill)))
    too_much = press(manager, page, "Refund", {"amount": "99.00", "reason": "cold coffee"}, htmx=True)
    assert too_much.status_code == 422 and not Refund.objects.exists()
    assert "cold coffee" in text(too_much)  # what the manager typed is kept
    first = press(manager, page, "Refund", {"amount": "2.00", "reason": "cold coffee"}, htmx=True)
    again = press(manager, page, "Refund", {"amount": "2.00", "reason": "cold coffee"}, htmx=True)  # a double tap
    assert (first.status_code, again.status_code) == (200, 200), text(again)[:2000]
    refund = Refund.objects.get()
    assert (refund.payment_id, refund.amount_q, refund.reason, refund.actor) == (payment.pk, 200, "cold coffee", "user:manager")
    assert "refunded R$2.00" in text(manager.get(bill_url(bill)))
    assert bill.events.filter(type="refund.recorded").count() == 1


def test_refund_of_another_bills_payment_is_404(pos, manager):
    from omniman.services import PaymentService

    send_round(pos, "19", "ESP")
    send_round(pos, "20", "ESP")
    nineteen, _ = open_bill(pos, "19")
    twenty, _ = open_bill(pos, "20")
    other = PaymentService.tender(twenty.ref, method="cash", idempotency_key="pay-20").payment
    response = manager.post(bill_url(nineteen, "refund/"), {"payment": other.pk, "amount": "1.00", "reason": "x", "idempotency_key": "k"})
    assert response.status_code == 404


def test_the_bill_shows_each_lines_modifiers(pos):
    from omniman.contrib.catalog.models import Option, OptionGroup
    from omniman.services import BillService, bill_view

    doneness = OptionGroup.objects.create(code="doneness", name="Doneness", min_choices=1, max_choices=1)
    Option.objects.create(group=doneness, code="medium", name="Medium", price_q=0)
    extras = OptionGroup.objects.create(code="extras", name="Extras", min_choices=0, max_choices=3)
    Option.objects.create(group=extras, code="bacon", name="Bacon", price_q=600)
    Product.objects.get(sku="BURG").option_groups.add(doneness, extras)
    tab = ready(table="22", channel="tables")
    ModifyService.modify_session(tab.session_key, "tables", [{
        "op": "add_line", "sku": "BURG", "qty": 1, "name": "Burger",
        "meta": {"modifiers": [{"group": "doneness", "option": "medium"}, {"group": "extras", "option": "bacon"}]},
    }], ctx={"actor": "test"})
    settle()
    act(pos, "commit", fresh(tab), {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    bill = BillService.open("tables", handle_type="table", handle_ref="22")
    [line] = bill_view(bill.ref).lines
    assert line["modifiers"] == "Medium · Bacon"
    assert "Medium · Bacon" in text(pos.get(bill_url(bill)))
