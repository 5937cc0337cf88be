"""Bills under contention (PostgreSQL, real threads): the bill's row lock serializes every payment and split."""

from __future__ import annotations

from collections import Counter

import pytest

from omniman.exceptions import OmnimanError
from omniman.models import Bill, BillEvent, Order, Payment
from omniman.services import BillService, PaymentService
from tests.factories import commit, create_session_at, make_channel
from tests.threads import THREADS, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def table_bill(lines: int = 3, price: int = 1000) -> Bill:
    channel = make_channel()
    for _round in range(2):
        session = create_session_at(channel, lines=lines, price=price, handle_type="table", handle_ref="12")
        commit(session)
    return BillService.open(channel.code, handle_type="table", handle_ref="12")


def test_sixteen_screens_paying_the_rest_at_one_rev_make_exactly_one_payment():
    bill = table_bill()
    rev = bill.rev
    results = run_together(
        lambda i: PaymentService.tender(bill.ref, method="cash", expected_rev=rev, idempotency_key=f"screen-{i}", actor=f"user:{i}").payment.pk
    )
    oks = [value for kind, value in results if kind == "ok"]
    errors = Counter(value for kind, value in results if kind == "error")
    assert len(oks) == 1, results
    assert set(errors) <= {"stale_bill", "already_paid"} and sum(errors.values()) == THREADS - 1
    assert Payment.objects.count() == 1 and Payment.objects.get().amount_q == 6000
    fresh = Bill.objects.get(pk=bill.pk)
    assert (fresh.status, fresh.paid_q, fresh.due_q) == ("settled", 6000, 0)
    assert BillEvent.objects.filter(bill=bill, type="bill.settled").count() == 1


def test_sixteen_screens_paying_the_rest_without_a_rev_make_one_payment_the_others_already_paid():
    bill = table_bill()
    results = run_together(lambda i: PaymentService.tender(bill.ref, method="cash", idempotency_key=f"tap-{i}").payment.pk)
    assert [kind for kind, _value in results].count("ok") == 1
    assert Counter(value for kind, value in results if kind == "error") == {"already_paid": THREADS - 1}
    assert Payment.objects.count() == 1 and Bill.objects.get(pk=bill.pk).paid_q == 6000


def test_sixteen_retries_of_one_tap_record_one_payment_and_all_get_it():
    bill = table_bill()
    results = run_together(lambda i: PaymentService.tender(bill.ref, method="cash", idempotency_key="one-tap"))
    assert all(kind == "ok" for kind, _value in results), results
    assert {value.payment.pk for _kind, value in results} == {Payment.objects.get().pk}
    assert sorted(value.idempotent for _kind, value in results) == [False] + [True] * (THREADS - 1)


def test_two_screens_splitting_one_bill_one_wins_the_other_gets_stale_bill_with_the_fresh_bill():
    bill = table_bill()
    rev = bill.rev

    def split(i):
        try:
            return "ok", BillService.split(bill.ref, expected_rev=rev, mode="equal", parts=2 + i).splits
        except OmnimanError as exc:
            return exc.code, exc.context

    results = [value for _kind, value in run_together(split, count=2)]
    winners = [value for code, value in results if code == "ok"]
    losers = [value for code, value in results if code != "ok"]
    assert len(winners) == 1 and [code for code, _value in results if code != "ok"] == ["stale_bill"]
    (context,) = losers
    fresh = Bill.objects.get(pk=bill.pk)
    assert fresh.rev == rev + 1 and fresh.splits == winners[0]
    assert context["rev"] == fresh.rev and context["bill"]["splits"] == fresh.splits and context["bill"]["due_q"] == 6000
    assert BillEvent.objects.filter(bill=bill, type="bill.split").count() == 1


def test_sixteen_opens_of_one_table_make_one_bill_with_every_round():
    channel = make_channel()
    for _round in range(3):
        commit(create_session_at(channel, lines=1, handle_type="table", handle_ref="3"))
    results = run_together(lambda i: BillService.open(channel.code, handle_type="table", handle_ref="3").ref)
    assert all(kind == "ok" for kind, _value in results), results
    assert len({value for _kind, value in results}) == 1
    assert Bill.objects.count() == 1
    assert Order.objects.filter(bill__isnull=True).count() == 0 and Bill.objects.get().total_q == 3000
