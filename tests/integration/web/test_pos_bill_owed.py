"""What a table owes once it pays (issue #15): the tables list and the table total take off the open bill's payments
and adjustments; a paid round is owed by nobody, though the kitchen still has it."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse

from omniman.models import Order, Session
from omniman.services import BillService, PaymentService
from tests.integration.web.helpers import CAFE, act, assert_page, ready, url

pytestmark = [pytest.mark.django_db, CAFE]


def owed_by_table(pos) -> dict[str, str]:
    body = pos.get(reverse("pos:channel", args=["tables"])).content.decode()
    return dict(re.findall(r'Table (\d+).*?<td class="num owed">([^<]+)</td>', body, re.S))


def table_total(pos, table: str) -> str:
    session = Session.objects.get(channel__code="tables", handle_ref=table, state="open")
    body = assert_page(pos.get(url("session", session)))
    return re.search(r'Table total</dt><dd class="table-total"><strong>([^<]+)</strong>', body).group(1)


def test_a_part_payment_a_discount_and_the_rest_show_on_the_list_and_the_tab(pos):
    tab = ready(("ESP", 2), table="4", channel="tables")  # 2 × 6.00 + 10 % = 13.20
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    order = Order.objects.get(session_key=tab.session_key)
    assert order.total_q == 1320
    assert owed_by_table(pos)["4"] == "R$13.20" and table_total(pos, "4") == "R$13.20"
    bill = BillService.open("tables", handle_type="table", handle_ref="4")
    bill = PaymentService.tender(bill.ref, method="cash", amount_q=500, idempotency_key="part").bill
    assert owed_by_table(pos)["4"] == "R$8.20" and table_total(pos, "4") == "R$8.20"
    bill = BillService.discount(bill.ref, amount_q=120, reason="regular", roles={"manager"})
    assert owed_by_table(pos)["4"] == "R$7.00" and table_total(pos, "4") == "R$7.00"
    PaymentService.tender(bill.ref, method="card", reference="A1", idempotency_key="rest")
    assert owed_by_table(pos)["4"] == "R$0.00" and table_total(pos, "4") == "R$0.00"
    assert Order.objects.get(pk=order.pk).status == "confirmed"  # paid, and still the kitchen's


def test_a_round_sent_after_the_bill_was_paid_is_owed_again(pos):
    first = ready(("ESP", 1), table="5", channel="tables")
    act(pos, "commit", first, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    bill = BillService.open("tables", handle_type="table", handle_ref="5")
    PaymentService.tender(bill.ref, method="cash", idempotency_key="all")
    nxt = Session.objects.get(channel__code="tables", handle_ref="5", state="open")
    from omniman.services import ModifyService
    from tests.integration.web.helpers import settle

    ModifyService.modify_session(nxt.session_key, "tables", [{"op": "add_line", "sku": "ESP", "qty": 1}])
    settle()
    act(pos, "commit", Session.objects.get(pk=nxt.pk), {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    assert owed_by_table(pos)["5"] == "R$6.60" and table_total(pos, "5") == "R$6.60"
