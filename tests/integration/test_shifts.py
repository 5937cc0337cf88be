"""Shifts and cash control (issue #18): open with a float, cash in/out, close with a count, the Z-report — through the services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.core import mail
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from omniman.exceptions import OmnimanError, http_status
from omniman.models import Bill, CashMovement, Directive, Order, Payment, Refund, Register, Shift, ShiftEvent
from omniman.receipts import z_report_pdf, z_report_text
from omniman.services import BillService, PaymentService, ShiftService, ZReportEmailHandler, current_shift, z_report
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db

METHODS = {"payments": {"methods": ["cash", "card", "pix"], "pix": {"key": "cafe@example.com"}}}


@pytest.fixture
def main_register():
    register, _created = Register.objects.get_or_create(code="main", defaults={"name": "Main"})
    return register


def counter_bill(channel, *, lines=1, price=1000):
    session = create_session_at(channel, lines=lines, price=price)
    order = Order.objects.get(ref=commit(session)["order_ref"])
    return BillService.open(channel.code, order_ref=order.ref, actor="user:ana")


class Rows:
    """Row counts of every shift table and the shift's row: what a refused call must leave as it was."""

    def __init__(self, shift: Shift | None = None):
        self.shift = shift
        self.before = self.snapshot()

    def snapshot(self):
        row = None
        if self.shift is not None:
            fresh = Shift.objects.get(pk=self.shift.pk)
            row = (fresh.rev, fresh.status, fresh.counted_q, fresh.difference_q, fresh.closed_at, fresh.difference_approved_by)
        return (Shift.objects.count(), CashMovement.objects.count(), ShiftEvent.objects.count(), Payment.objects.count(),
                Directive.objects.count(), row)

    def assert_unchanged(self):
        assert self.snapshot() == self.before


def refused(call, code, status=None):
    with pytest.raises(OmnimanError) as info:
        call()
    assert info.value.code == code, info.value
    if status is not None:
        assert http_status(info.value) == status
    return info.value


# -- opening --------------------------------------------------------------------------


def test_open_with_a_count_by_denomination_sums_the_float_and_writes_the_opened_event(main_register):
    shift = ShiftService.open("main", opening_count={"5000": 2, "1000": 3, "25": 4, "200": 0}, actor="user:ana")
    assert (shift.status, shift.opening_float_q, shift.opening_count, shift.opened_by, shift.auto_opened) == (
        "open", 13100, {"5000": 2, "1000": 3, "25": 4}, "user:ana", False)
    event = ShiftEvent.objects.get(shift=shift)
    assert (event.type, event.actor, event.payload["opening_float_q"]) == ("opened", "user:ana", 13100)
    assert current_shift("main").pk == shift.pk


def test_open_with_a_typed_total_and_the_same_key_again_returns_the_first_shift(main_register):
    shift = ShiftService.open("main", opening_float_q=20000, actor="user:ana", idempotency_key="open-1")
    again = ShiftService.open("main", opening_float_q=20000, actor="user:ana", idempotency_key="open-1")
    assert again.pk == shift.pk and again.idempotent is True and shift.opening_count == {}
    assert Shift.objects.count() == 1 and ShiftEvent.objects.count() == 1


def test_a_second_open_on_the_register_is_refused_and_writes_nothing(main_register):
    first = ShiftService.open("main", opening_float_q=10000, actor="user:ana")
    rows = Rows(first)
    error = refused(lambda: ShiftService.open("main", opening_float_q=5000, actor="user:bia"), "shift_already_open", 409)
    assert error.context["shift_id"] == first.pk
    rows.assert_unchanged()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({}, "missing_field"),
        ({"opening_float_q": -1}, "invalid_amount"),
        ({"opening_float_q": "100"}, "invalid_amount"),
        ({"opening_float_q": True}, "invalid_amount"),
        ({"opening_count": {"abc": 1}}, "invalid_count"),
        ({"opening_count": {"500": -1}}, "invalid_count"),
        ({"opening_count": {"500": 1.5}}, "invalid_count"),
        ({"opening_count": ["500"]}, "invalid_count"),
        ({"opening_count": {"500": 2}, "opening_float_q": 999}, "invalid_count"),
    ],
)
def test_a_bad_float_is_refused_with_its_code_and_writes_nothing(main_register, kwargs, code):
    rows = Rows()
    refused(lambda: ShiftService.open("main", actor="user:ana", **kwargs), code, 400)
    rows.assert_unchanged()


def test_an_unknown_or_inactive_register_is_not_found(main_register):
    Register.objects.create(code="old", name="Old", is_active=False)
    rows = Rows()
    refused(lambda: ShiftService.open("nope", opening_float_q=0), "register_not_found", 404)
    refused(lambda: ShiftService.open("old", opening_float_q=0), "register_not_found", 404)
    rows.assert_unchanged()


# -- cash in / out ----------------------------------------------------------------------


def test_cash_in_and_out_need_a_reason_a_positive_amount_an_open_shift_and_are_idempotent(main_register):
    shift = ShiftService.open("main", opening_float_q=10000, actor="user:ana")
    out = ShiftService.cash_out(shift.pk, amount_q=3000, reason="Bank drop", actor="user:ana", idempotency_key="m1")
    assert (out.kind, out.amount_q, out.reason, out.idempotent) == ("out", 3000, "Bank drop", False)
    assert ShiftService.cash_out(shift.pk, amount_q=3000, reason="Bank drop", idempotency_key="m1").idempotent is True
    ShiftService.cash_in(shift.pk, amount_q=500, reason="Change from the safe", actor="user:ana", idempotency_key="m2")
    assert list(ShiftEvent.objects.filter(shift=shift).values_list("type", "reason")) == [
        ("opened", ""), ("cash_out", "Bank drop"), ("cash_in", "Change from the safe")]
    shift.refresh_from_db()
    assert shift.rev == 2
    rows = Rows(shift)
    refused(lambda: ShiftService.cash_out(shift.pk, amount_q=100, reason=" ", idempotency_key="m3"), "reason_required", 400)
    refused(lambda: ShiftService.cash_out(shift.pk, amount_q=0, reason="x", idempotency_key="m3"), "invalid_amount", 400)
    refused(lambda: ShiftService.cash_in(shift.pk, amount_q=100, reason="x", idempotency_key=""), "missing_idempotency_key", 400)
    refused(lambda: ShiftService.cash_in(shift.pk, amount_q=999, reason="x", idempotency_key="m1"), "conflict", 409)
    refused(lambda: ShiftService.cash_in(999999, amount_q=100, reason="x", idempotency_key="m4"), "shift_not_found", 404)
    rows.assert_unchanged()
    ShiftService.close(shift.pk, counted_q=7500, actor="user:ana", roles={"pos"})
    rows = Rows(shift)
    refused(lambda: ShiftService.cash_in(shift.pk, amount_q=100, reason="x", idempotency_key="m5"), "shift_closed", 409)
    rows.assert_unchanged()


# -- payments land in shifts ------------------------------------------------------------


def test_a_tender_without_a_shift_opens_one_automatically_and_the_next_joins_it(main_register):
    channel = make_channel("cafe", config=METHODS)
    first, second = counter_bill(channel), counter_bill(channel)
    payment = PaymentService.tender(first.ref, method="cash", idempotency_key="p1", actor="user:ana").payment
    shift = payment.shift
    assert (shift.register.code, shift.auto_opened, shift.opening_float_q, shift.status) == ("main", True, 0, "open")
    assert ShiftEvent.objects.get(shift=shift).payload["auto_opened"] is True
    assert PaymentService.tender(second.ref, method="pix", idempotency_key="p2").payment.shift_id == shift.pk
    assert Shift.objects.count() == 1


def test_the_register_comes_from_the_tender_else_the_channel_else_main(main_register):
    Register.objects.create(code="bar", name="Bar")
    Register.objects.create(code="terrace", name="Terrace")
    channel = make_channel("cafe", config={**METHODS, "register": "terrace"})
    plain = make_channel("counter", config=METHODS)
    on_bar = PaymentService.tender(counter_bill(channel).ref, method="cash", register="bar", idempotency_key="a").payment
    on_terrace = PaymentService.tender(counter_bill(channel).ref, method="cash", idempotency_key="b").payment
    on_main = PaymentService.tender(counter_bill(plain).ref, method="cash", idempotency_key="c").payment
    assert [p.shift.register.code for p in (on_bar, on_terrace, on_main)] == ["bar", "terrace", "main"]
    bill = counter_bill(plain)
    before = (Payment.objects.count(), Shift.objects.count())
    refused(lambda: PaymentService.tender(bill.ref, method="cash", register="nope", idempotency_key="d"), "register_not_found", 404)
    assert (Payment.objects.count(), Shift.objects.count()) == before


def test_a_refund_comes_out_of_the_shift_open_when_it_is_made(main_register):
    channel = make_channel("cafe", config=METHODS)
    first = ShiftService.open("main", opening_float_q=0, actor="user:ana")
    payment = PaymentService.tender(counter_bill(channel).ref, method="cash", idempotency_key="p1").payment
    ShiftService.close(first.pk, counted_q=1000, actor="user:ana", roles={"pos"})
    second = ShiftService.open("main", opening_float_q=0, actor="user:bia")
    refund = PaymentService.refund(payment.pk, amount_q=400, reason="Cold coffee", idempotency_key="r1", roles={"manager"})
    assert (payment.shift_id, refund.shift_id) == (first.pk, second.pk)
    assert z_report(second.pk)["cash"]["cash_refunds_q"] == 400 and z_report(first.pk)["refunds_q"] == 0


def test_a_tender_waiting_on_a_closed_shift_opens_a_new_one(main_register):
    """The close wins: a payment is never written into a closed shift."""
    channel = make_channel("cafe", config=METHODS)
    shift = ShiftService.open("main", opening_float_q=0, actor="user:ana")
    ShiftService.close(shift.pk, counted_q=0, actor="user:ana", roles={"pos"})
    payment = PaymentService.tender(counter_bill(channel).ref, method="card", reference="A1", idempotency_key="p").payment
    assert payment.shift_id != shift.pk and payment.shift.auto_opened is True


# -- closing --------------------------------------------------------------------------


def test_a_difference_over_the_threshold_needs_a_manager_and_nothing_changes_until_one_accepts(main_register):
    channel = make_channel("cafe", config=METHODS)
    shift = ShiftService.open("main", opening_float_q=10000, actor="user:ana")
    PaymentService.tender(counter_bill(channel, price=2500).ref, method="cash", tendered_q=3000, idempotency_key="p1")
    shift.refresh_from_db()
    rows = Rows(shift)
    error = refused(lambda: ShiftService.close(shift.pk, counted_q=11900, expected_rev=shift.rev, actor="user:ana", roles={"pos"}),
                    "difference_needs_approval", 403)
    assert error.context == {"expected_q": 12500, "counted_q": 11900, "difference_q": -600, "threshold_q": 500, "shift_id": shift.pk}
    refused(lambda: ShiftService.close(shift.pk, counted_q=11900, actor="user:ana", roles={"pos"}, approved_by="user:bia",
                                       approver_roles={"pos"}), "difference_needs_approval", 403)
    refused(lambda: ShiftService.close(shift.pk, counted_q=11900, expected_rev=shift.rev - 1, actor="user:ana", roles={"manager"}),
            "stale_shift", 409)
    rows.assert_unchanged()
    closed = ShiftService.close(shift.pk, counted_q=11900, expected_rev=shift.rev, actor="user:ana", roles={"pos"},
                                approved_by="boss", approver_roles={"manager"}, reason="Change given twice")
    assert (closed.status, closed.expected_cash_q, closed.counted_q, closed.difference_q, closed.difference_approved_by) == (
        "closed", 12500, 11900, -600, "boss")
    approved = ShiftEvent.objects.get(shift=shift, type="difference_approved")
    assert (approved.actor, approved.reason, approved.payload["closed_by"]) == ("boss", "Change given twice", "user:ana")
    assert Directive.objects.filter(topic="shift.z_report", payload__shift_id=shift.pk).count() == 1
    rows = Rows(closed)
    refused(lambda: ShiftService.close(shift.pk, counted_q=11900, actor="boss", roles={"manager"}), "shift_closed", 409)
    rows.assert_unchanged()


def test_a_small_difference_closes_without_a_manager_and_a_manager_closes_any(main_register):
    Register.objects.create(code="bar", name="Bar", config={"difference_threshold_q": 0})
    small = ShiftService.open("main", opening_count={"1000": 5}, actor="user:ana")
    closed = ShiftService.close(small.pk, closing_count={"1000": 4, "500": 1, "100": 4}, actor="user:ana", roles={"pos"})
    assert (closed.counted_q, closed.difference_q, closed.difference_approved_by) == (4900, -100, "")
    assert closed.closing_count == {"1000": 4, "500": 1, "100": 4}
    assert not ShiftEvent.objects.filter(shift=small, type="difference_approved").exists()
    bar = ShiftService.open("bar", opening_float_q=0, actor="user:ana")
    refused(lambda: ShiftService.close(bar.pk, counted_q=1, actor="user:ana", roles={"pos"}), "difference_needs_approval", 403)
    closed = ShiftService.close(bar.pk, counted_q=1, actor="user:boss", roles={"manager"})
    assert closed.difference_approved_by == "user:boss"


# -- the end-to-end shift and its Z-report -------------------------------------------------


def test_a_shift_end_to_end_every_z_report_figure_matches_the_tables(main_register, django_capture_on_commit_callbacks):
    """Open with a float → sales in cash, card and Pix (one with a tip, one split, one discounted, a void, a refund)
    → cash out → close with a counted difference → the manager accepts. Every Z-report figure is summed again here."""
    Group.objects.get_or_create(name="manager")[0].user_set.add(
        User.objects.create_user("boss", email="boss@example.com"), User.objects.create_user("nomail"))
    channel = make_channel("cafe", config=METHODS)
    shift = ShiftService.open("main", opening_count={"5000": 1, "1000": 5}, actor="user:ana")  # 100.00
    a = counter_bill(channel, lines=2, price=1500)  # 30.00 in cash, 50.00 tendered, 2.00 tip
    PaymentService.tender(a.ref, method="cash", tendered_q=5000, tip_q=200, idempotency_key="a", actor="user:ana")
    b = counter_bill(channel, lines=1, price=4000)  # 40.00 on card, 10 % discount by a manager
    b = BillService.discount(b.ref, percent="10", reason="Regular", actor="user:boss", roles={"manager"})
    PaymentService.tender(b.ref, method="card", reference="AUTH1", tip_q=300, idempotency_key="b")
    c = counter_bill(channel, lines=2, price=1000)  # 20.00: half Pix, half cash
    PaymentService.tender(c.ref, method="pix", amount_q=1000, idempotency_key="c1")
    PaymentService.tender(c.ref, method="cash", idempotency_key="c2")
    d_order = Order.objects.get(ref=commit(create_session_at(channel, lines=2, price=800))["order_ref"])
    BillService.void_item(d_order.ref, d_order.items.first().line_id, reason="Dropped", actor="user:boss", roles={"manager"})
    d = Bill.objects.get(orders=d_order)
    PaymentService.tender(d.ref, method="cash", idempotency_key="d")
    refund = PaymentService.refund(Payment.objects.get(idempotency_key="c2").pk, amount_q=300, reason="Cold", idempotency_key="r1",
                                   roles={"manager"})
    tab = counter_bill(channel, lines=1, price=900)  # a bill left open, partly paid
    PaymentService.tender(tab.ref, method="cash", amount_q=400, idempotency_key="t")
    ShiftService.cash_out(shift.pk, amount_q=2000, reason="Bank drop", idempotency_key="o1", actor="user:ana")
    ShiftService.cash_in(shift.pk, amount_q=500, reason="Coins", idempotency_key="i1", actor="user:ana")
    shift.refresh_from_db()

    # What the drawer should hold, from the tables.
    payments = Payment.objects.filter(shift=shift)
    cash = payments.filter(method="cash")
    cash_sales = cash.aggregate(s=Sum("amount_q"))["s"]
    cash_tips = cash.aggregate(s=Sum("tip_q"))["s"]
    moved_in = CashMovement.objects.filter(shift=shift, kind="in").aggregate(s=Sum("amount_q"))["s"]
    moved_out = CashMovement.objects.filter(shift=shift, kind="out").aggregate(s=Sum("amount_q"))["s"]
    cash_refunds = Refund.objects.filter(shift=shift, payment__method="cash").aggregate(s=Sum("amount_q"))["s"]
    expected = 10000 + cash_sales + cash_tips + moved_in - moved_out - cash_refunds
    assert (cash_sales, cash_tips, moved_in, moved_out, cash_refunds) == (3000 + 1000 + 800 + 400, 200, 500, 2000, 300)
    assert expected == 13600

    counted = expected - 700  # short by R$ 7.00: over the R$ 5.00 threshold
    refused(lambda: ShiftService.close(shift.pk, counted_q=counted, expected_rev=shift.rev, actor="user:ana", roles={"pos"}),
            "difference_needs_approval", 403)
    ShiftService.close(shift.pk, counted_q=counted, expected_rev=shift.rev, actor="user:ana", roles={"pos"},
                       approved_by="boss", approver_roles={"manager"}, reason="Short")
    report = z_report(shift.pk)

    by_method = {}
    for p in payments:
        row = by_method.setdefault(p.method, {"count": 0, "amount_q": 0, "tip_q": 0, "change_q": 0})
        row["count"] += 1
        row["amount_q"] += p.amount_q
        row["tip_q"] += p.tip_q
        row["change_q"] += p.change_q
    assert report["by_method"] == by_method
    assert report["by_method"]["card"] == {"count": 1, "amount_q": 3600, "tip_q": 300, "change_q": 0}
    assert report["payments_q"] == sum(p.amount_q for p in payments) == 3000 + 3600 + 2000 + 800 + 400
    assert report["tips_q"] == sum(p.tip_q for p in payments) == 500
    assert report["change_q"] == sum(p.change_q for p in payments) == 1800
    assert report["refunds"] == {"cash": {"count": 1, "amount_q": 300}} and report["refunds_q"] == refund.amount_q
    closed_bills = Bill.objects.filter(pk__in=[a.pk, b.pk, c.pk, d.pk])
    assert set(closed_bills.values_list("status", flat=True)) == {"settled"}
    assert report["bills"] == 4 and report["order_count"] == Order.objects.filter(bill__in=closed_bills).count() == 4
    assert report["sales_q"] == sum(bill.total_q for bill in closed_bills) == 3000 + 3600 + 2000 + 800
    assert report["average_ticket_q"] == report["sales_q"] // 4
    assert report["discounts_q"] == 400 and report["voids_q"] == 800
    assert report["service_q"] == 0 and report["written_off_q"] == 0
    assert report["open_bills"] == {"count": 1, "paid_q": 400}
    assert report["cash"] == {
        "float_q": 10000, "cash_sales_q": cash_sales, "cash_tips_q": cash_tips, "cash_in_q": moved_in, "cash_out_q": moved_out,
        "cash_refunds_q": cash_refunds, "expected_q": expected, "counted_q": counted, "difference_q": -700,
        "difference_approved_by": "boss", "difference_reason": "Short", "threshold_q": 500,
    }
    assert report["status"] == "closed" and report["closed_by"] == "user:ana"
    assert list(ShiftEvent.objects.filter(shift=shift).values_list("type", flat=True)) == [
        "opened", "cash_out", "cash_in", "closed", "difference_approved"]

    # The printable forms, and the email the directive sends to the managers with an address.
    text = z_report_text(report)
    assert "Z-report" in text and "R$136.00" in text and "-R$7.00" in text
    assert z_report_pdf(report).startswith(b"%PDF")
    directive = Directive.objects.get(topic="shift.z_report")
    with django_capture_on_commit_callbacks(execute=True):  # the mail goes out once the run commits
        ZReportEmailHandler().handle(message=directive, ctx={})
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["boss@example.com"]
    assert "129.00" in mail.outbox[0].body and mail.outbox[0].attachments[0][2] == "application/pdf"


def test_the_z_report_reads_in_a_fixed_number_of_queries(main_register):
    channel = make_channel("cafe", config=METHODS)
    shift = ShiftService.open("main", opening_float_q=0, actor="user:ana")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            z_report(shift.pk)
        return len(captured)

    empty = queries()
    for index in range(6):
        bill = counter_bill(channel, lines=2)
        PaymentService.tender(bill.ref, method=("cash", "card", "pix")[index % 3], reference="R", idempotency_key=f"p{index}")
    assert queries() == empty == 10


def closed_shift_with_a_manager():
    Register.objects.get_or_create(code="main", defaults={"name": "Main"})
    boss = User.objects.create_user("boss", email="boss@example.com")
    boss.groups.add(Group.objects.get_or_create(name="manager")[0])
    shift = ShiftService.open("main", opening_float_q=1000, actor="user:ana")
    ShiftService.close(shift.pk, counted_q=1000, actor="user:ana")
    return shift, Directive.objects.get(topic="shift.z_report")


def emailed(shift):
    return list(ShiftEvent.objects.filter(shift=shift, type__startswith="z_report_").order_by("id").values_list("type", flat=True))


@pytest.mark.django_db(transaction=True)
def test_the_z_report_email_goes_out_once_however_often_its_directive_runs():
    from unittest import mock

    from omniman import engine

    shift, directive = closed_shift_with_a_manager()
    (claimed,) = engine.claim(topics=["shift.z_report"], start=True)
    # While the first run works, the row is presumed dead, re-queued and claimed again (attempt 2): the first run's
    # handler runs to its end, then its done mark is fenced out and the run rolls back.
    Directive.objects.filter(pk=directive.pk).update(status="queued")
    (newer,) = engine.claim(topics=["shift.z_report"], start=True)
    with mock.patch.object(ZReportEmailHandler, "handle", autospec=True, side_effect=ZReportEmailHandler.handle) as handle:
        assert engine.execute(claimed) == "fenced"
    assert handle.call_count == 1
    assert len(mail.outbox) == 0 and emailed(shift) == []  # a run that did not commit sent nothing
    assert engine.execute(newer) == "done"
    assert len(mail.outbox) == 1 and emailed(shift) == ["z_report_emailed"]
    assert mail.outbox[0].extra_headers["Message-ID"] == ShiftEvent.objects.get(shift=shift, type="z_report_emailed").payload["message_id"]
    # Delivered again (a worker that died before it reported), and a second directive for the same shift: no-ops.
    Directive.objects.filter(pk=directive.pk).update(status="queued")
    (again,) = engine.claim(topics=["shift.z_report"])
    assert engine.execute(again) == "done"
    Directive.objects.enqueue("shift.z_report", {"shift_id": shift.pk}, dedupe_key=f"shift.z_report:{shift.pk}")
    assert engine.process(topics=["shift.z_report"]).claimed == 1
    assert len(mail.outbox) == 1 and emailed(shift) == ["z_report_emailed"]
    assert set(Directive.objects.filter(topic="shift.z_report").values_list("status", flat=True)) == {"done"}


@pytest.mark.django_db(transaction=True)
def test_a_refused_z_report_email_is_recorded_and_sent_by_a_new_directive_once():
    from unittest import mock

    from django.core.mail.backends.locmem import EmailBackend

    from omniman import engine

    shift, directive = closed_shift_with_a_manager()
    with mock.patch.object(EmailBackend, "send_messages", side_effect=ConnectionRefusedError("smtp down")):
        assert engine.process(topics=["shift.z_report"]).outcomes == [(directive.pk, "done")]
    assert len(mail.outbox) == 0 and emailed(shift) == ["z_report_emailed", "z_report_email_failed"]
    failed = ShiftEvent.objects.get(shift=shift, type="z_report_email_failed")
    assert failed.payload["failures"] == 1 and "smtp down" in failed.payload["error"] and failed.payload["retried"]
    retry = Directive.objects.get(topic="shift.z_report", status="queued")
    assert retry.pk != directive.pk and retry.available_at > directive.created_at
    assert engine.process(topics=["shift.z_report"]).claimed == 0  # not due yet (backoff)
    Directive.objects.filter(pk=retry.pk).update(available_at=retry.created_at)
    assert engine.process(topics=["shift.z_report"]).outcomes == [(retry.pk, "done")]
    assert len(mail.outbox) == 1 and emailed(shift) == ["z_report_emailed", "z_report_email_failed", "z_report_emailed"]
    Directive.objects.filter(pk=retry.pk).update(status="queued")
    engine.process(topics=["shift.z_report"])
    assert len(mail.outbox) == 1
