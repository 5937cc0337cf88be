"""The POS's shift screen (issue #18): open with a count, cash in/out, close with a review and a manager's PIN,
the Z-report page and its PDF — through the views, with the database checked after each step."""

from __future__ import annotations

import pytest
from django.urls import reverse

from omniman.approvals import set_pin
from omniman.models import CashMovement, Order, Register, Shift, ShiftEvent
from omniman.services import BillService, PaymentService
from tests.factories import commit, create_session_at, make_channel
from tests.integration.web.helpers import XSS, XSS_ESCAPED, logged_in, make_user

pytestmark = pytest.mark.django_db

SHIFT = reverse("pos:shift")


@pytest.fixture(autouse=True)
def main_register(db):
    return Register.objects.get_or_create(code="main", defaults={"name": "Main"})[0]


@pytest.fixture
def cashier():
    return logged_in("ana", "pos")


def rows():
    return (Shift.objects.count(), CashMovement.objects.count(), ShiftEvent.objects.count(),
            list(Shift.objects.values_list("status", "rev", "counted_q")))


def test_only_pos_and_managers_reach_the_shift_screens(client):
    assert client.get(SHIFT).status_code == 302
    kitchen = logged_in("k", "kitchen")
    assert kitchen.get(SHIFT).status_code == 403
    assert kitchen.post(reverse("pos:shift_open"), {"register": "main", "total": "10"}).status_code == 403
    assert Shift.objects.count() == 0
    assert logged_in("m", "manager").get(SHIFT).status_code == 200


def test_a_shift_on_the_pos_open_move_review_close_with_a_pin_and_the_z_report(cashier):
    page = cashier.get(SHIFT)
    assert page.status_code == 200 and 'id="open-form"' in page.content.decode()
    opened = cashier.post(reverse("pos:shift_open"), {"register": "main", "count-5000": "2", "count-1000": "3", "total": ""})
    assert opened.status_code == 302
    shift = Shift.objects.get()
    assert (shift.opening_float_q, shift.opening_count, shift.opened_by) == (13000, {"5000": 2, "1000": 3}, "user:ana")
    assert cashier.session["omniman_register"] == "main"

    # A sale in cash through the services, on the cashier's register.
    channel = make_channel("cafe", config={"payments": {"methods": ["cash"]}})
    order = Order.objects.get(ref=commit(create_session_at(channel, lines=1, price=2000))["order_ref"])
    PaymentService.tender(BillService.open("cafe", order_ref=order.ref).ref, method="cash", register="main", idempotency_key="p")

    before = rows()
    refused = cashier.post(reverse("pos:shift_cash", args=[shift.pk]), {"idempotency_key": "m1", "kind": "out", "amount": "10", "reason": ""})
    assert refused.status_code == 422 and "is required" in refused.content.decode()
    assert rows() == before
    moved = cashier.post(reverse("pos:shift_cash", args=[shift.pk]), {"idempotency_key": "m1", "kind": "out", "amount": "50", "reason": XSS})
    assert moved.status_code == 302
    assert CashMovement.objects.get().amount_q == 5000
    page = cashier.get(SHIFT).content.decode()
    assert XSS_ESCAPED in page and XSS not in page
    assert "R$100.00" in page  # expected: 130 + 20 − 50

    # Close: the count first shows expected vs counted; nothing is written until confirmed.
    before = rows()
    shift.refresh_from_db()
    review = cashier.post(reverse("pos:shift_close", args=[shift.pk]), {"rev": shift.rev, "total": "90"})
    body = review.content.decode()
    assert review.status_code == 200 and 'data-figure="review-difference">-R$10.00' in body and 'name="approver"' in body
    assert rows() == before
    no_pin = cashier.post(reverse("pos:shift_close", args=[shift.pk]), {"rev": shift.rev, "total": "90", "confirm": "1"})
    assert no_pin.status_code == 422 and "manager must accept" in no_pin.content.decode()
    boss = make_user("boss", "manager")
    set_pin(boss, "2468")
    wrong = cashier.post(reverse("pos:shift_close", args=[shift.pk]),
                         {"rev": shift.rev, "total": "90", "confirm": "1", "approver": "boss", "pin": "0000"})
    assert wrong.status_code == 422
    assert rows() == before
    closed = cashier.post(reverse("pos:shift_close", args=[shift.pk]),
                          {"rev": shift.rev, "total": "90", "confirm": "1", "approver": "boss", "pin": "2468", "reason": "Short"})
    assert closed.status_code == 302 and closed["Location"] == reverse("pos:z_report", args=[shift.pk])
    shift.refresh_from_db()
    assert (shift.status, shift.counted_q, shift.difference_q, shift.difference_approved_by) == ("closed", 9000, -1000, "boss")

    report = cashier.get(reverse("pos:z_report", args=[shift.pk])).content.decode()
    for figure, text in (("expected", "R$100.00"), ("counted", "R$90.00"), ("difference", "-R$10.00"), ("cash-sales", "R$20.00"),
                         ("cash-out", "-R$50.00"), ("float", "R$130.00"), ("approved-by", "boss")):
        assert f'data-figure="{figure}">{text}<' in report, figure
    pdf = cashier.get(reverse("pos:z_report_pdf", args=[shift.pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert cashier.get(reverse("pos:z_report", args=[99999])).status_code == 404


def test_a_second_open_answers_the_kernels_conflict_and_the_channel_asks_for_a_shift(cashier):
    channel = make_channel("counter", config={"payments": {"methods": ["cash"]}})
    assert reverse("pos:shift_banner") in cashier.get(reverse("pos:channel", args=[channel.code])).content.decode()
    banner = cashier.get(reverse("pos:shift_banner"), {"channel": channel.code}, HTTP_HX_REQUEST="true")
    assert banner.status_code == 200 and "has no open shift" in banner.content.decode()
    cashier.post(reverse("pos:shift_open"), {"register": "main", "total": "0"})
    assert cashier.get(reverse("pos:shift_banner"), {"channel": channel.code}, HTTP_HX_REQUEST="true").status_code == 204
    before = rows()
    again = logged_in("bia", "pos").post(reverse("pos:shift_open"), {"register": "main", "total": "5"})
    assert again.status_code == 409 and "already has an open shift" in again.content.decode()
    assert rows() == before
