"""Shifts under contention (PostgreSQL, real threads): one open shift per register, and a close never loses a payment."""

from __future__ import annotations

from collections import Counter

import pytest

from omniman.models import Order, Payment, Register, Shift, ShiftEvent
from omniman.services import BillService, PaymentService, ShiftService
from tests.factories import commit, create_session_at, make_channel
from tests.threads import THREADS, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_two_opens_racing_on_one_register_one_wins_the_other_gets_shift_already_open():
    Register.objects.get_or_create(code="main", defaults={"name": "Main"})
    results = run_together(lambda i: ShiftService.open("main", opening_float_q=1000 * (i + 1), actor=f"user:{i}").pk, count=2)
    oks = [value for kind, value in results if kind == "ok"]
    assert len(oks) == 1 and [value for kind, value in results if kind == "error"] == ["shift_already_open"]
    assert list(Shift.objects.values_list("pk", flat=True)) == oks
    assert ShiftEvent.objects.count() == 1


def test_sixteen_opens_racing_make_one_shift():
    Register.objects.get_or_create(code="main", defaults={"name": "Main"})
    results = run_together(lambda i: ShiftService.open("main", opening_float_q=0, actor=f"user:{i}").pk)
    assert [kind for kind, _value in results].count("ok") == 1
    assert Counter(value for kind, value in results if kind == "error") == {"shift_already_open": THREADS - 1}
    assert Shift.objects.filter(status="open").count() == 1


def test_sixteen_tenders_with_no_shift_open_auto_open_exactly_one():
    channel = make_channel(config={"payments": {"methods": ["cash"]}})
    refs = []
    for _index in range(THREADS):
        order = Order.objects.get(ref=commit(create_session_at(channel, lines=1, price=500))["order_ref"])
        refs.append(BillService.open(channel.code, order_ref=order.ref).ref)
    results = run_together(lambda i: PaymentService.tender(refs[i], method="cash", idempotency_key=f"k{i}").payment.shift_id)
    assert all(kind == "ok" for kind, _value in results), results
    assert Shift.objects.count() == 1 and {value for _kind, value in results} == {Shift.objects.get().pk}
    assert Payment.objects.filter(shift__isnull=True).count() == 0


def test_tenders_racing_a_close_land_in_the_closed_shift_before_it_or_in_a_new_one_never_lost():
    channel = make_channel(config={"payments": {"methods": ["cash"]}})
    Register.objects.get_or_create(code="main", defaults={"name": "Main"})
    shift = ShiftService.open("main", opening_float_q=0, actor="user:ana")
    refs = []
    for _index in range(THREADS - 1):
        order = Order.objects.get(ref=commit(create_session_at(channel, lines=1, price=500))["order_ref"])
        refs.append(BillService.open(channel.code, order_ref=order.ref).ref)

    def worker(i):
        if i == THREADS - 1:
            return ShiftService.close(shift.pk, counted_q=0, actor="user:boss", roles={"manager"}).pk
        return PaymentService.tender(refs[i], method="cash", idempotency_key=f"k{i}").payment.shift_id

    results = run_together(worker)
    assert all(kind == "ok" for kind, _value in results), results
    closed = Shift.objects.get(pk=shift.pk)
    in_closed = Payment.objects.filter(shift=closed)
    # The close counted exactly the cash that is in its shift.
    assert closed.expected_cash_q == sum(p.amount_q for p in in_closed)
    assert Payment.objects.count() == THREADS - 1 and Payment.objects.filter(shift__isnull=True).count() == 0
    assert Shift.objects.filter(status="open").count() == (1 if Payment.objects.exclude(shift=closed).exists() else 0)
