"""A café's mixed day (issue #15): 200 orders at the counter and at tables, with discounts, voids, splits, tips,
part payments, write-offs and refunds. The day's totals (``day_totals``) equal the payments summed minus the
refunds, to the cent, with the tips apart — and every figure equals what the day's script did, tracked on its own.
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db.models import Sum

from omniman.models import Bill, Order, Payment, Refund
from omniman.services import BillService, ModifyService, PaymentService, SessionService, day_totals
from tests.factories import commit, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.contrib("omniman.contrib.payment", "omniman.contrib.pricing")]

PAYMENTS = {"methods": ["cash", "card", "pix", "gateway"], "pix": {"key": "pix@cafe.example"}}
MANAGER = {"manager"}


def half_up(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), ROUND_HALF_UP))


def send(rng: random.Random, channel, *, table: str = "") -> Order:
    session = SessionService.open_session(channel.code, handle_type="table" if table else "", handle_ref=table)
    ops = [
        {"op": "add_line", "sku": f"SKU-{rng.randint(1, 30)}", "qty": str(rng.choice([1, 1, 2, 3])),
         "unit_price_q": rng.choice([350, 600, 990, 1450, 2290, 3475, 4500]), "name": "Item"}
        for _line in range(rng.randint(1, 3))
    ]
    ModifyService.modify_session(session.session_key, channel.code, ops)
    return Order.objects.get(ref=commit(session)["order_ref"])


class Till:
    """Pays bills as a cashier would, and keeps its own book of what it took."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.by_method: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "amount_q": 0, "tip_q": 0})
        self.tips_q = self.change_q = self.discounts_q = self.voids_q = self.written_off_q = self.refunds_q = 0
        self.expected_totals: dict[str, int] = {}
        self.keys = 0

    def key(self) -> str:
        self.keys += 1
        return f"k-{self.keys}"

    def pay(self, bill: Bill, amount_q: int | None = None, *, part: int | None = None) -> Bill:
        method = self.rng.choice(["cash", "cash", "card", "pix", "gateway"])
        due = bill.due_q if part is None else next(p["amount_q"] - p["paid_q"] for p in bill.splits if p["index"] == part)
        amount = due if amount_q is None else amount_q
        kwargs: dict = {}
        tip = 0
        if self.rng.random() < 0.3:
            if self.rng.random() < 0.5:
                kwargs["tip_percent"] = "10"
                tip = half_up(Decimal(amount) / 10)
            else:
                tip = kwargs["tip_q"] = self.rng.choice([100, 250, 500])
        if method == "cash":
            tendered = -(-(amount + tip) // 1000) * 1000  # the next note up
            kwargs["tendered_q"] = tendered
            self.change_q += tendered - amount - tip
        if method == "card":
            kwargs.update(reference=f"AUTH{self.keys}", brand=self.rng.choice(["visa", "elo"]))
        if method == "gateway" and (amount + tip) % 100 in (13, 66):  # the mock declines / fails these cents: pay it otherwise
            method = "pix"
        result = PaymentService.tender(
            bill.ref, method=method, amount_q=amount_q, part=part, expected_rev=bill.rev, idempotency_key=self.key(),
            actor="user:cashier", **kwargs,
        )
        assert result.payment.amount_q == amount and result.payment.tip_q == tip
        self.tips_q += tip
        row = self.by_method[method]
        row["count"] += 1
        row["amount_q"] += amount
        row["tip_q"] += tip
        return result.bill


def test_a_mixed_day_of_200_orders_adds_up_to_the_cent(django_assert_max_num_queries):
    rng = random.Random(20261203)
    counter = make_channel("counter", pricing_policy="external", config={"payments": PAYMENTS})
    tables = make_channel(
        "tables", pricing_policy="external", config={"payments": PAYMENTS, "pricing": {"service_charge_percent": 10}}
    )
    till = Till(rng)
    bills: list[Bill] = []
    # 80 rounds at 20 tables (4 each), 120 counter sales.
    for round_no in range(4):
        for table in range(1, 21):
            send(rng, tables, table=str(table))
    counter_orders = [send(rng, counter) for _sale in range(120)]
    assert Order.objects.count() == 200
    for table in range(1, 21):
        bills.append(BillService.open("tables", handle_type="table", handle_ref=str(table)))
    bills += [BillService.open("counter", order_ref=order.ref) for order in counter_orders]
    # The service charge is part of what a table's round charges: 10 % of its items, half up.
    for order in Order.objects.filter(channel=tables):
        items = sum(order.items.values_list("line_total_q", flat=True))
        assert order.charged_q == items + half_up(Decimal(items) / 10)

    payments_made = []
    for bill in bills:
        charged = sum(o.charged_q for o in Order.objects.filter(bill=bill))
        expected = charged
        if rng.random() < 0.25:  # a manager voids a sent line
            item = rng.choice(list(Order.objects.get(pk=rng.choice(list(bill.orders.values_list("pk", flat=True)))).items.all()))
            bill = BillService.void_item(item.order.ref, item.line_id, reason="sent back", actor="user:boss", roles=MANAGER)
            till.voids_q += item.line_total_q
            expected -= item.line_total_q
        if bill.is_open and rng.random() < 0.3:  # a discount on the whole bill
            if rng.random() < 0.5:
                percent = rng.choice([5, 10, 15, 20])
                taken = half_up(Decimal(expected) * percent / 100)
                bill = BillService.discount(bill.ref, expected_rev=bill.rev, percent=str(percent), reason="regular", actor="user:boss", roles=MANAGER)
            else:
                taken = min(rng.choice([100, 500, 1000]), expected)
                bill = BillService.discount(bill.ref, expected_rev=bill.rev, amount_q=taken, reason="coupon", actor="user:boss", roles=MANAGER)
            till.discounts_q += taken
            expected -= taken
        assert bill.total_q == expected, bill.ref
        if not bill.is_open:
            till.expected_totals[bill.ref] = expected
            continue
        roll = rng.random()
        if roll < 0.05 and bill.total_q > 200:  # paid in part, the rest written off
            bill = till.pay(bill, bill.total_q // 2)
            left = bill.due_q
            bill = BillService.write_off(bill.ref, expected_rev=bill.rev, reason="walked out", actor="user:boss", roles=MANAGER)
            till.written_off_q += left
            expected -= left
        elif roll < 0.35 and bill.total_q >= 300:  # split equally
            bill = BillService.split(bill.ref, expected_rev=bill.rev, mode="equal", parts=rng.choice([2, 3]))
            for part in [p["index"] for p in bill.splits]:
                bill = till.pay(bill, part=part)
        elif roll < 0.5 and bill.handle_ref and bill.total_q >= 300:  # a table split by items, the rest equally
            view_lines = [(o.ref, i.line_id) for o in bill.orders.all() for i in o.items.all()]
            chosen = view_lines[: max(1, len(view_lines) // 3)]
            bill = BillService.split(
                bill.ref, expected_rev=bill.rev, mode="items",
                groups=[[{"order_ref": ref, "line_id": line}] for ref, line in chosen], rest_parts=2,
            )
            assert sum(p["amount_q"] for p in bill.splits) == bill.due_q
            for part in [p["index"] for p in bill.splits if p["amount_q"] > 0]:
                bill = till.pay(bill, part=part)
        elif roll < 0.75 and bill.total_q >= 2:  # two tenders: part, then the rest
            bill = till.pay(bill, rng.randint(1, bill.total_q - 1))
            bill = till.pay(bill)
        else:
            bill = till.pay(bill)
        assert not bill.is_open and bill.due_q == 0, bill.summary()
        till.expected_totals[bill.ref] = expected
        payments_made += list(Payment.objects.filter(bill=bill))
    # Refunds after the fact: some payments, part or all of them.
    for payment in rng.sample(payments_made, 15):
        amount = rng.randint(1, payment.amount_q)
        PaymentService.refund(payment.pk, amount_q=amount, reason="complaint", idempotency_key=f"r-{payment.pk}", actor="user:boss", roles=MANAGER)
        till.refunds_q += amount

    with django_assert_max_num_queries(9):  # whatever the number of bills, orders and payments
        totals = day_totals()
    paid = int(Payment.objects.aggregate(total=Sum("amount_q"))["total"])
    refunded = int(Refund.objects.aggregate(total=Sum("amount_q"))["total"])
    # The equation of the issue, to the cent.
    assert totals["sales_q"] == paid - refunded
    assert totals["payments_q"] == paid and totals["refunds_q"] == refunded == till.refunds_q
    # And every figure as the till's own book has it.
    assert totals["bills"] == len(bills) == 140 and totals["open_bills"] == 0
    assert totals["sales_q"] == sum(till.expected_totals.values()) - till.refunds_q
    assert totals["tips_q"] == till.tips_q > 0  # tips apart: not in sales
    assert totals["change_q"] == till.change_q > 0
    assert totals["discounts_q"] == till.discounts_q > 0
    assert totals["voids_q"] == till.voids_q > 0
    assert totals["written_off_q"] == till.written_off_q > 0
    assert totals["service_q"] > 0
    assert totals["by_method"] == {method: dict(row) for method, row in till.by_method.items()}
    assert set(totals["by_method"]) == {"cash", "card", "pix", "gateway"}
    assert totals["tendered_q"] == paid + till.tips_q + till.change_q
    assert not Order.objects.filter(bill__isnull=True).exists()
    # Per channel, the figures split without loss.
    per_channel = [day_totals(channel=code) for code in ("counter", "tables")]
    assert sum(t["sales_q"] for t in per_channel) == totals["sales_q"]
    assert sum(t["tips_q"] for t in per_channel) == totals["tips_q"]
    assert {code: row["sales_q"] for code, row in totals["by_channel"].items()} == {
        "counter": per_channel[0]["sales_q"], "tables": per_channel[1]["sales_q"]
    }
    assert all(row["sales_q"] == row["payments_q"] - row["refunds_q"] for row in totals["by_channel"].values())
