"""Bills and payments (issue #15 §2): open a bill, tender, split, void, write off, refund — through the services."""

from __future__ import annotations

import pytest

from omniman.exceptions import OmnimanError, http_status
from omniman.models import Bill, BillEvent, Order, OrderEvent, Payment, Refund
from omniman.services import BillService, PaymentService, bill_view
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db

ALL_METHODS = {"payments": {"methods": ["cash", "card", "pix", "gateway"], "pix": {"key": "cafe@example.com"}}}


def table_round(channel, table="5", *, lines=2, price=1000):
    """Send one round of ``lines`` lines for a table: its order."""
    session = create_session_at(channel, lines=lines, price=price, handle_type="table", handle_ref=table)
    return Order.objects.get(ref=commit(session)["order_ref"])


def counter_order(channel, *, lines=1, price=1000):
    session = create_session_at(channel, lines=lines, price=price)
    return Order.objects.get(ref=commit(session)["order_ref"])


class Rows:
    """Row counts of every billing table (and the bill's row): what a refused call must leave as it was."""

    def __init__(self, bill: Bill | None = None):
        self.bill = bill
        self.before = self.snapshot()

    def snapshot(self):
        row = None
        if self.bill is not None:
            fresh = Bill.objects.get(pk=self.bill.pk)
            row = (fresh.rev, fresh.status, fresh.total_q, fresh.paid_q, fresh.adjustments, fresh.splits, fresh.updated_at)
        return (
            Bill.objects.count(),
            Payment.objects.count(),
            Refund.objects.count(),
            BillEvent.objects.count(),
            OrderEvent.objects.count(),
            row,
        )

    def assert_unchanged(self):
        assert self.snapshot() == self.before


def refused(call, code, status=None):
    with pytest.raises(OmnimanError) as info:
        call()
    assert info.value.code == code, info.value
    if status is not None:
        assert http_status(info.value) == status
    return info.value


# -- the simple path -------------------------------------------------------------------


def test_a_tables_rounds_join_one_bill_and_cash_settles_it_with_change():
    channel = make_channel("cafe")
    first, second = table_round(channel, lines=2), table_round(channel, lines=1, price=550)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5", actor="user:ana")
    assert bill.created is True
    assert set(bill.orders.values_list("ref", flat=True)) == {first.ref, second.ref}
    assert (bill.total_q, bill.paid_q, bill.due_q, bill.status) == (2550, 0, 2550, "open")
    again = BillService.open("cafe", handle_type="table", handle_ref="5")
    assert again.pk == bill.pk and again.created is False and again.rev == bill.rev

    result = PaymentService.tender(bill.ref, method="cash", tendered_q=3000, expected_rev=bill.rev, idempotency_key="k1", actor="user:ana")
    payment = result.payment
    assert (payment.amount_q, payment.tip_q, payment.tendered_q, payment.change_q) == (2550, 0, 3000, 450)
    assert result.idempotent is False
    bill = Bill.objects.get(pk=bill.pk)
    assert (bill.status, bill.paid_q, bill.due_q, bill.closed_by) == ("settled", 2550, 0, "user:ana")
    assert bill.settled_at is not None
    assert list(BillEvent.objects.filter(bill=bill).values_list("type", flat=True)) == [
        "bill.opened", "orders.attached", "payment.recorded", "bill.settled"
    ]
    for order in (first, second):
        types = list(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
        assert "payment.recorded" in types and "bill.settled" in types
        assert Order.objects.get(pk=order.pk).status == order.status  # no kitchen status moved by force


def test_the_same_idempotency_key_returns_the_first_payment_and_writes_nothing():
    channel = make_channel("cafe")
    order = counter_order(channel, price=1200)
    bill = BillService.open("cafe", order_ref=order.ref)
    first = PaymentService.tender(bill.ref, method="card", amount_q=500, reference="AUTH1", brand="visa", idempotency_key="tap")
    rows = Rows(first.bill)
    replay = PaymentService.tender(bill.ref, method="card", amount_q=500, reference="AUTH1", idempotency_key="tap")
    assert replay.idempotent is True and replay.payment.pk == first.payment.pk
    rows.assert_unchanged()
    refused(lambda: PaymentService.tender(bill.ref, method="cash", amount_q=700, idempotency_key="tap"), "conflict", 409)
    rows.assert_unchanged()


def test_a_counter_order_gets_its_own_bill_and_a_card_payment_with_a_tip_percent():
    channel = make_channel("counter")
    order = counter_order(channel, price=2000)
    bill = BillService.open("counter", order_ref=order.ref)
    assert bill.created and bill.handle_ref == "" and bill.total_q == 2000
    assert BillService.open("counter", order_ref=order.ref).pk == bill.pk
    result = PaymentService.tender(bill.ref, method="card", brand="visa", reference="A1B2", tip_percent="10", idempotency_key="x")
    assert (result.payment.amount_q, result.payment.tip_q, result.payment.tendered_q, result.payment.change_q) == (2000, 200, 2200, 0)
    assert result.bill.status == "settled"
    view = bill_view(bill.ref)
    assert (view.total_q, view.paid_q, view.due_q, view.tips_q) == (2000, 2000, 0, 200)


def test_paying_a_settled_bill_is_already_paid_and_a_stale_rev_is_stale_bill():
    channel = make_channel("cafe")
    table_round(channel)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    rows = Rows(bill)
    error = refused(lambda: PaymentService.tender(bill.ref, method="cash", expected_rev=bill.rev - 1, idempotency_key="a"), "stale_bill", 409)
    assert error.context["bill"]["due_q"] == 2000 and error.context["rev"] == bill.rev
    rows.assert_unchanged()
    PaymentService.tender(bill.ref, method="cash", idempotency_key="b")
    bill.refresh_from_db()
    rows = Rows(bill)
    error = refused(lambda: PaymentService.tender(bill.ref, method="cash", idempotency_key="c"), "already_paid", 409)
    assert error.context["status"] == "settled"
    rows.assert_unchanged()
