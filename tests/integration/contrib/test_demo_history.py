"""``seed_demo --days``: days of café history through the real services, each row stamped within its day."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from omniman.contrib.demo.history import KEY_PREFIX, day_prefix
from omniman.models import Bill, BillEvent, CashMovement, Directive, KitchenItem, Order, OrderEvent, Payment, Refund, Shift
from omniman.services import z_report

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock"),
]


def _day(moment):
    return timezone.localtime(moment).date()


def _counts():
    return tuple(model.objects.count() for model in (Order, Bill, Payment, Refund, BillEvent, OrderEvent, KitchenItem, Directive, Shift, CashMovement))


@override_settings(DEBUG=True)
def test_seed_demo_days_writes_consistent_history_within_each_day_and_is_idempotent():
    out = io.StringIO()
    call_command("seed_demo", "--no-users", "--days", "2", "--orders-per-day", "20", stdout=out)
    assert "History: " in out.getvalue() and " days seeded" in out.getvalue()
    assert " shifts, " in out.getvalue() and " cash outs " in out.getvalue()
    today = timezone.localdate()
    days = [today - timedelta(days=2), today - timedelta(days=1)]
    history = Order.objects.filter(session_key__startswith=KEY_PREFIX)
    marketplace = Order.objects.filter(channel__code="marketplace", external_ref__startswith="MKT-").exclude(external_ref="MKT-1042")
    for day in days:
        orders = history.filter(session_key__startswith=day_prefix(day))
        # ~20 orders a day (a weekend a little more), across the four channels.
        assert 15 <= orders.count() + marketplace.filter(created_at__date=day).count() <= 30
        assert {_day(o.created_at) for o in orders} == {day}
    assert set(history.values_list("channel__code", flat=True)) >= {"counter", "tables", "web"}
    assert marketplace.count() > 0

    # Every bill of the history is closed; a settled bill's payments cover exactly its total.
    bills = Bill.objects.filter(orders__in=list(history) + list(marketplace)).distinct()
    assert bills.count() > 30
    assert not bills.filter(status=Bill.Status.OPEN).exists()
    paid = dict(Payment.objects.filter(bill__in=bills).values("bill").annotate(total=Sum("amount_q")).values_list("bill", "total"))
    for bill in bills:
        if bill.status == Bill.Status.SETTLED:
            assert paid[bill.pk] == bill.total_q == bill.paid_q, bill.ref
        opened = _day(bill.opened_at)
        assert _day(bill.settled_at) == opened, bill.ref
    payments = Payment.objects.filter(bill__in=bills).select_related("bill")
    assert {p.method for p in payments} >= {"cash", "card"}
    for payment in payments:
        assert _day(payment.created_at) == _day(payment.bill.opened_at)
        assert payment.change_q == payment.tendered_q - payment.amount_q - payment.tip_q
    # Each order's bill is the bill its lines were paid on: the orders' totals (less the bills' own adjustments) add up.
    for bill in bills.filter(status=Bill.Status.SETTLED):
        orders_q = sum(o.total_q for o in bill.orders.all())
        assert bill.total_q == orders_q + bill.adjustments_q, bill.ref

    # The kitchen worked each order the day it was sent: every live item served, its times after the order's.
    items = KitchenItem.objects.filter(order__in=history).select_related("order")
    assert items.exists()
    for item in items:
        if item.voided_at is None:
            assert item.status == "served", item
            assert item.order.created_at < item.moved_at < item.order.created_at + timedelta(hours=3)
    bumps = OrderEvent.objects.filter(order__in=history, type="kitchen.bumped").select_related("order")
    by_order = defaultdict(list)
    for event in bumps:
        by_order[event.order_id].append(event.created_at)
        assert _day(event.created_at) == _day(event.order.created_at)
    assert by_order and all(min(times) > Order.objects.get(pk=pk).created_at for pk, times in by_order.items())

    # Each seeded day is one shift on the register, opened with a counted float before its first payment and closed
    # at its end with a count (a difference over the threshold accepted by the manager); no auto-opened shift.
    shifts = Shift.objects.filter(opened_at__date__in=days).order_by("opened_at")
    assert [_day(s.opened_at) for s in shifts] == days
    for shift in shifts:
        assert shift.status == "closed" and not shift.auto_opened and shift.opening_count and shift.opening_float_q > 0
        assert _day(shift.closed_at) == _day(shift.opened_at)
        assert shift.counted_q == shift.expected_cash_q + shift.difference_q
        if abs(shift.difference_q) > 500:
            assert shift.difference_approved_by == "manager" and shift.difference_reason
        assert CashMovement.objects.filter(shift=shift, kind="out").exclude(reason="").exists()
    assert not Shift.objects.filter(auto_opened=True).exists()
    (open_today,) = Shift.objects.filter(status="open")
    assert _day(open_today.opened_at) == today and open_today.opening_count and not open_today.auto_opened
    for payment in Payment.objects.filter(bill__in=bills, created_at__date__in=days).select_related("shift"):
        assert payment.shift.status == "closed" and _day(payment.shift.opened_at) == _day(payment.created_at)
        assert payment.shift.opened_at < payment.created_at < payment.shift.closed_at
    # The Z-report of a seeded shift is its payments' sums.
    shift = shifts.first()
    report = z_report(shift.pk)
    of_shift = Payment.objects.filter(shift=shift)
    assert report["payments_q"] == of_shift.aggregate(total=Sum("amount_q"))["total"]
    assert report["tips_q"] == (of_shift.aggregate(total=Sum("tip_q"))["total"] or 0)
    cash = of_shift.filter(method="cash").aggregate(total=Sum("amount_q"))["total"] or 0
    assert report["by_method"]["cash"]["amount_q"] == cash == report["cash"]["cash_sales_q"]
    outs = CashMovement.objects.filter(shift=shift, kind="out").aggregate(total=Sum("amount_q"))["total"]
    assert report["cash"]["cash_out_q"] == outs and report["cash"]["counted_q"] == shift.counted_q
    day_bills = [b for b in Bill.objects.exclude(status="open") if _day(b.settled_at) == _day(shift.opened_at)]
    assert report["sales_q"] == sum(b.total_q for b in day_bills) and report["bills"] == len(day_bills)

    # The side effects of past days were recorded, never left for a worker to run.
    assert not Directive.objects.filter(status__in=("queued", "running"), created_at__date__lt=today).exists()

    counts = _counts()
    again = io.StringIO()
    call_command("seed_demo", "--no-users", "--days", "2", "--orders-per-day", "20", stdout=again)
    assert "History: 0 days seeded" in again.getvalue() or timezone.localtime().hour < 8  # today's first orders come at 7
    assert _counts() == counts


def test_seed_demo_days_refuses_a_bad_number():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--days"):
        call_command("seed_demo", "--no-users", "--days", "-1", stdout=io.StringIO())
    assert not Order.objects.exists()
