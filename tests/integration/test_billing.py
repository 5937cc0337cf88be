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


# -- split -----------------------------------------------------------------------------


def test_split_equally_sums_exactly_to_the_due_and_each_part_is_paid_by_default():
    channel = make_channel("cafe", config=ALL_METHODS)
    table_round(channel, lines=1, price=1001)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="equal", parts=3, actor="user:ana")
    assert [p["amount_q"] for p in bill.splits] == [334, 334, 333]
    assert [p["index"] for p in bill.splits] == [0, 1, 2]
    assert BillEvent.objects.filter(bill=bill, type="bill.split").count() == 1
    first = PaymentService.tender(bill.ref, method="cash", part=1, idempotency_key="p1")
    assert first.payment.amount_q == 334 and first.payment.part == 1
    assert [p["paid_q"] for p in first.bill.splits] == [0, 334, 0]
    refused(lambda: PaymentService.tender(bill.ref, method="cash", part=1, amount_q=1, idempotency_key="p1b"), "overpayment", 400)
    refused(lambda: PaymentService.tender(bill.ref, method="cash", part=7, idempotency_key="p7"), "invalid_split", 400)
    PaymentService.tender(bill.ref, method="card", reference="OK1", part=0, idempotency_key="p0")
    last = PaymentService.tender(bill.ref, method="pix", part=2, idempotency_key="p2")
    assert last.bill.status == "settled" and last.bill.paid_q == 1001


def test_split_by_items_gives_each_guest_their_lines_and_the_rest_equally():
    channel = make_channel("cafe")
    order = table_round(channel, lines=4, price=1000)  # L0..L3 at 10.00
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    lines = list(order.items.values_list("line_id", flat=True))
    groups = [[{"order_ref": order.ref, "line_id": lines[0]}], [{"order_ref": order.ref, "line_id": lines[1]}]]
    bill = BillService.discount(bill.ref, expected_rev=bill.rev, percent="10", reason="regulars", actor="user:boss", roles={"manager"})
    assert bill.total_q == 3600
    bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="items", groups=groups, rest_parts=2)
    amounts = [p["amount_q"] for p in bill.splits]
    assert amounts == [900, 900, 900, 900] and sum(amounts) == bill.due_q  # each line's share of the 10 % off
    assert [p["label"] for p in bill.splits] == ["Guest 1", "Guest 2", "Rest 1 of 2", "Rest 2 of 2"]
    assert bill.splits[0]["lines"] == [{"order_ref": order.ref, "line_id": lines[0]}]
    assert len(bill.splits[2]["lines"]) == 2


def test_split_by_items_distributes_odd_cents_so_the_parts_add_up():
    channel = make_channel("cafe", config={"discounts": {"approval_over_percent": 50}})
    order = table_round(channel, lines=3, price=333)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    bill = BillService.discount(bill.ref, expected_rev=bill.rev, amount_q=100, reason="coupon")
    lines = list(order.items.values_list("line_id", flat=True))
    groups = [[{"order_ref": order.ref, "line_id": line}] for line in lines]
    bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="items", groups=groups)
    assert sum(p["amount_q"] for p in bill.splits) == bill.due_q == 899
    assert max(p["amount_q"] for p in bill.splits) - min(p["amount_q"] for p in bill.splits) <= 1


def test_split_defaults_equal_in_two_and_items_without_groups_is_the_rest():
    channel = make_channel("cafe")
    table_round(channel, lines=3, price=333)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="equal")
    assert [p["amount_q"] for p in bill.splits] == [500, 499]
    bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="items", rest_parts=3)
    assert [p["amount_q"] for p in bill.splits] == [333, 333, 333] and len(bill.splits[0]["lines"]) == 3
    bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="none")
    assert bill.splits == [] and list(BillEvent.objects.filter(bill=bill, type="bill.split").values_list("payload__mode", flat=True)) == ["equal", "items", "none"]


def test_a_tip_amount_and_percent_add_up_and_other_methods_take_no_change():
    channel = make_channel("cafe")
    order = counter_order(channel, price=1000)
    bill = BillService.open("cafe", order_ref=order.ref)
    payment = PaymentService.tender(bill.ref, method="card", reference="X", tendered_q=9999, tip_q=50, tip_percent="12.5",
                                    idempotency_key="t").payment
    assert (payment.tip_q, payment.tendered_q, payment.change_q) == (175, 1175, 0)


def test_a_change_of_total_drops_the_split_plan():
    channel = make_channel("cafe")
    order = table_round(channel, lines=2)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="equal", parts=2)
    bill = BillService.void_item(order.ref, order.items.first().line_id, reason="wrong dish", actor="user:boss", roles={"manager"})
    assert bill.splits == [] and bill.total_q == 1000


# -- discounts -------------------------------------------------------------------------


def test_a_line_discount_over_the_threshold_needs_a_manager_or_an_approver():
    channel = make_channel("cafe")
    order = table_round(channel, lines=2)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    line = order.items.first().line_id
    rows = Rows(bill)
    error = refused(
        lambda: BillService.discount(bill.ref, expected_rev=bill.rev, order_ref=order.ref, line_id=line, percent="50",
                                     reason="cold", actor="user:pos", roles={"pos"}),
        "approval_required", 403,
    )
    assert error.context["threshold"] == "10" and error.context["percent"] == "50.00"
    rows.assert_unchanged()
    bill = BillService.discount(
        bill.ref, expected_rev=bill.rev, order_ref=order.ref, line_id=line, percent="50", reason="cold",
        actor="user:pos", roles={"pos"}, approved_by="boss", approver_roles={"manager"},
    )
    assert bill.total_q == 1500
    (adjustment,) = bill.adjustments
    assert (adjustment["kind"], adjustment["amount_q"], adjustment["approved_by"], adjustment["actor"]) == ("discount", -500, "boss", "user:pos")
    event = BillEvent.objects.get(bill=bill, type="adjustment.applied")
    assert event.payload["before"]["total_q"] == 2000 and event.payload["after"]["total_q"] == 1500
    # Discounts add up for the rule: a small one on top of the 50 % is 30 % of the bill, over the threshold.
    refused(lambda: BillService.discount(bill.ref, expected_rev=bill.rev, amount_q=100, reason="loyalty", roles={"pos"}),
            "approval_required", 403)
    bill = BillService.discount(bill.ref, expected_rev=bill.rev, amount_q=100, reason="loyalty", actor="user:boss", roles={"manager"})
    assert bill.total_q == 1400
    small = bill.adjustments[-1]["id"]
    bill = BillService.remove_adjustment(bill.ref, small, expected_rev=bill.rev, actor="user:pos", roles={"pos"})
    assert bill.total_q == 1500 and BillEvent.objects.filter(bill=bill, type="adjustment.removed").count() == 1


def test_a_small_discount_needs_nobody():
    channel = make_channel("cafe")
    table_round(channel, lines=2)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    bill = BillService.discount(bill.ref, expected_rev=bill.rev, percent="10", reason="birthday", actor="user:pos", roles={"pos"})
    assert bill.total_q == 1800 and bill.adjustments[0]["percent"] == "10" and bill.adjustments[0]["approved_by"] == ""


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"percent": "101"}, "invalid_discount"),
        ({"percent": "0"}, "invalid_discount"),
        ({"percent": "-5"}, "invalid_discount"),
        ({"amount_q": 2001}, "invalid_discount"),
        ({"amount_q": -1}, "invalid_discount"),
        ({"amount_q": 10, "percent": "5"}, "invalid_discount"),
        ({}, "invalid_discount"),
        ({"amount_q": 10, "reason": " "}, "reason_required"),
        ({"amount_q": 10, "order_ref": "ORD-NOPE", "line_id": "L-0"}, "line_not_found"),
    ],
)
def test_bad_discounts_are_refused_and_write_nothing(kwargs, code):
    channel = make_channel("cafe")
    table_round(channel, lines=2)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    rows = Rows(bill)
    kwargs = {"reason": "why", **kwargs}
    refused(lambda: BillService.discount(bill.ref, expected_rev=bill.rev, roles={"manager"}, **kwargs), code, 400)
    rows.assert_unchanged()


# -- void -------------------------------------------------------------------------------


def test_a_manager_voids_a_sent_item_the_order_says_so_and_the_bill_drops_it():
    channel = make_channel("cafe")
    session = create_session_at(channel, lines=0, handle_type="table", handle_ref="5")
    from omniman.services import ModifyService

    ModifyService.modify_session(session.session_key, "cafe", [{"op": "add_line", "sku": "BEER", "qty": "3", "unit_price_q": 1200, "name": "Beer"}])
    order = Order.objects.get(ref=commit(session)["order_ref"])
    line = order.items.get().line_id
    rows = Rows()
    refused(lambda: BillService.void_item(order.ref, line, reason="spilled", actor="user:pos", roles={"pos"}), "approval_required", 403)
    rows.assert_unchanged()
    bill = BillService.void_item(order.ref, line, qty="1", reason="spilled", actor="user:pos", roles={"pos"},
                                 approved_by="boss", approver_roles={"manager"})
    assert bill.total_q == 2400 and bill.orders.get() == order  # opened for the table, with the round
    event = OrderEvent.objects.get(order=order, type="item_voided")
    assert event.payload == {"line_id": line, "sku": "BEER", "name": "Beer", "qty": "1", "amount_q": 1200,
                             "reason": "spilled", "approved_by": "boss", "bill_ref": bill.ref}
    refused(lambda: BillService.void_item(order.ref, line, qty="3", reason="x", roles={"manager"}), "over_void", 400)
    refused(lambda: BillService.void_item(order.ref, line, qty="0", reason="x", roles={"manager"}), "invalid_qty", 400)
    bill = BillService.void_item(order.ref, line, reason="all of it", roles={"manager"})
    assert bill.total_q == 0 and bill.status == "settled"  # nothing left to pay: the bill is closed by the void
    rows = Rows(bill)
    refused(lambda: BillService.void_item(order.ref, line, reason="again", roles={"manager"}), "already_paid", 409)
    rows.assert_unchanged()


def test_voiding_a_voided_line_or_a_cancelled_order_is_already_voided():
    channel = make_channel("cafe")
    order = table_round(channel, lines=2)
    first, second = order.items.values_list("line_id", flat=True)
    BillService.void_item(order.ref, first, reason="wrong", roles={"manager"})
    rows = Rows()
    refused(lambda: BillService.void_item(order.ref, first, reason="again", roles={"manager"}), "already_voided", 409)
    rows.assert_unchanged()
    cancelled = counter_order(channel)
    from omniman.services import OrderService

    OrderService.transition(cancelled.ref, "cancelled")
    rows = Rows()
    refused(lambda: BillService.void_item(cancelled.ref, cancelled.items.get().line_id, reason="x", roles={"manager"}), "already_voided", 409)
    refused(lambda: BillService.void_item("ORD-NOPE", "L-1", reason="x", roles={"manager"}), "not_found", 404)
    rows.assert_unchanged()


# -- write-off ----------------------------------------------------------------------------


def test_a_manager_writes_off_what_is_left_after_a_part_payment():
    channel = make_channel("cafe")
    table_round(channel, lines=3)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    bill = PaymentService.tender(bill.ref, method="cash", amount_q=1000, idempotency_key="part").bill
    rows = Rows(bill)
    refused(lambda: BillService.write_off(bill.ref, expected_rev=bill.rev, reason="left", roles={"pos"}), "forbidden", 403)
    refused(lambda: BillService.write_off(bill.ref, expected_rev=bill.rev, reason="", roles={"manager"}), "reason_required", 400)
    rows.assert_unchanged()
    bill = BillService.write_off(bill.ref, expected_rev=bill.rev, reason="walked out", actor="user:boss", roles={"manager"})
    assert (bill.status, bill.total_q, bill.paid_q, bill.due_q, bill.closed_by) == ("written_off", 1000, 1000, 0, "user:boss")
    assert bill.adjustments[-1]["kind"] == "write_off" and bill.adjustments[-1]["amount_q"] == -2000
    refused(lambda: PaymentService.tender(bill.ref, method="cash", idempotency_key="late"), "already_paid", 409)


# -- refunds --------------------------------------------------------------------------------


def test_a_manager_refunds_part_of_a_payment_idempotently_and_never_more_than_it_took():
    channel = make_channel("cafe")
    order = counter_order(channel, price=3000)
    bill = BillService.open("cafe", order_ref=order.ref)
    payment = PaymentService.tender(bill.ref, method="cash", tendered_q=5000, idempotency_key="pay").payment
    rows = Rows(bill)
    refused(lambda: PaymentService.refund(payment.pk, amount_q=500, reason="cold", idempotency_key="r", roles={"pos"}), "forbidden", 403)
    refused(lambda: PaymentService.refund(payment.pk, amount_q=3001, reason="cold", idempotency_key="r", roles={"manager"}), "over_refund", 400)
    refused(lambda: PaymentService.refund(payment.pk, amount_q=0, reason="cold", idempotency_key="r", roles={"manager"}), "invalid_amount", 400)
    refused(lambda: PaymentService.refund(payment.pk, amount_q=10, reason="", idempotency_key="r", roles={"manager"}), "reason_required", 400)
    refused(lambda: PaymentService.refund(999999, amount_q=10, reason="x", idempotency_key="r", roles={"manager"}), "not_found", 404)
    rows.assert_unchanged()
    refund = PaymentService.refund(payment.pk, amount_q=1000, reason="cold", idempotency_key="r1", actor="user:boss", roles={"manager"})
    assert refund.idempotent is False and refund.amount_q == 1000
    again = PaymentService.refund(payment.pk, amount_q=1000, reason="cold", idempotency_key="r1", roles={"manager"})
    assert again.idempotent is True and again.pk == refund.pk and Refund.objects.count() == 1
    refused(lambda: PaymentService.refund(payment.pk, amount_q=2001, reason="x", idempotency_key="r2", roles={"manager"}), "over_refund", 400)
    PaymentService.refund(payment.pk, amount_q=2000, reason="all", idempotency_key="r2", roles={"manager"})
    assert OrderEvent.objects.filter(order=order, type="refund.recorded").count() == 2
    assert BillEvent.objects.filter(bill=bill, type="refund.recorded").count() == 2


# -- bad input at the till ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"method": "cash", "amount_q": -100}, "invalid_amount"),
        ({"method": "cash", "amount_q": 0}, "invalid_amount"),
        ({"method": "cash", "amount_q": "100"}, "invalid_amount"),
        ({"method": "cash", "tendered_q": -5}, "invalid_amount"),
        ({"method": "cash", "tip_q": -1}, "invalid_amount"),
        ({"method": "cash", "tip_percent": "200"}, "invalid_amount"),
        ({"method": "cash", "amount_q": 2001}, "overpayment"),
        ({"method": "cash", "tendered_q": 1999}, "insufficient_tender"),
        ({"method": "cash", "currency": "USD"}, "currency_mismatch"),
        ({"method": "bitcoin"}, "unknown_method"),
        ({"method": "pix"}, "unknown_method"),  # the channel takes cash and card only
        ({"method": "card"}, "reference_required"),
        ({"method": "cash", "idempotency_key": ""}, "missing_idempotency_key"),
    ],
)
def test_bad_tenders_are_refused_and_write_nothing(kwargs, code):
    channel = make_channel("cafe")
    order = counter_order(channel, price=2000)
    bill = BillService.open("cafe", order_ref=order.ref)
    rows = Rows(bill)
    kwargs = {"idempotency_key": "k", **kwargs}
    refused(lambda: PaymentService.tender(bill.ref, **kwargs), code, 400)
    rows.assert_unchanged()


def test_splitting_a_paid_bill_is_already_paid_and_bad_splits_are_refused():
    channel = make_channel("cafe")
    order = table_round(channel, lines=2)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    rows = Rows(bill)
    for kwargs in ({"mode": "equal", "parts": 1}, {"mode": "equal", "parts": 51}, {"mode": "thirds"},
                   {"mode": "items", "groups": [[]]}, {"mode": "items", "groups": [[]] * 51},
                   {"mode": "items", "rest_parts": 0},
                   {"mode": "items", "groups": [[{"order_ref": order.ref, "line_id": "L-x"}]]}):
        with pytest.raises(OmnimanError) as info:
            BillService.split(bill.ref, expected_rev=bill.rev, **kwargs)
        assert info.value.code in ("invalid_split", "line_not_found") and http_status(info.value) == 400
    line = order.items.first().line_id
    refused(lambda: BillService.split(bill.ref, expected_rev=bill.rev, mode="items",
                                      groups=[[{"order_ref": order.ref, "line_id": line}], [{"order_ref": order.ref, "line_id": line}]]),
            "invalid_split", 400)
    rows.assert_unchanged()
    bill = PaymentService.tender(bill.ref, method="cash", idempotency_key="all").bill
    rows = Rows(bill)
    error = refused(lambda: BillService.split(bill.ref, expected_rev=bill.rev, mode="equal", parts=2), "already_paid", 409)
    assert error.context["bill"]["status"] == "settled"
    rows.assert_unchanged()


# -- the gateway ----------------------------------------------------------------------------------


@pytest.mark.contrib("omniman.contrib.payment")
def test_a_gateway_payment_goes_through_the_payment_app_and_refunds_through_it(settings):
    channel = make_channel("web", config=ALL_METHODS)
    order = counter_order(channel, price=2500)
    bill = BillService.open("web", order_ref=order.ref)
    result = PaymentService.tender(bill.ref, method="gateway", idempotency_key="g1")
    assert result.payment.reference.startswith("mockpay_") and result.bill.status == "settled"
    refund = PaymentService.refund(result.payment.pk, amount_q=500, reason="late", idempotency_key="gr", roles={"manager"})
    assert refund.reference.startswith("mockrf_")


@pytest.mark.contrib("omniman.contrib.payment")
def test_a_declined_gateway_payment_writes_nothing(settings):
    channel = make_channel("web", config=ALL_METHODS)
    order = counter_order(channel, price=2513)  # the mock declines amounts ending in ,13
    bill = BillService.open("web", order_ref=order.ref)
    rows = Rows(bill)
    refused(lambda: PaymentService.tender(bill.ref, method="gateway", idempotency_key="g1"), "payment_declined", 400)
    rows.assert_unchanged()
    settings.OMNIMAN = {**settings.OMNIMAN, "PAYMENT_MOCK": {"mode": "fail"}}
    refused(lambda: PaymentService.tender(bill.ref, method="gateway", idempotency_key="g2"), "gateway_unavailable", 503)
    rows.assert_unchanged()


def test_bill_view_reads_a_bill_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    channel = make_channel("cafe")
    for _round in range(2):
        table_round(channel, lines=2)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    PaymentService.tender(bill.ref, method="cash", amount_q=500, idempotency_key="a")
    with django_assert_max_num_queries(5):
        small = bill_view(bill.ref)
    for _round in range(5):
        table_round(channel, lines=4)
    BillService.refresh(bill.ref)
    for i in range(5):
        PaymentService.tender(bill.ref, method="cash", amount_q=100, idempotency_key=f"b{i}")
    with django_assert_max_num_queries(5):
        big = bill_view(bill.ref)
    assert len(small.lines) == 4 and len(big.lines) == 24 and len(big.payments) == 6
    assert big.due_q == big.total_q - big.paid_q == 24000 - 1000
