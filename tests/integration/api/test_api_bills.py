"""The bills' REST API (issue #15): the services' use cases and codes over HTTP, idempotent by Idempotency-Key."""

from __future__ import annotations

import pytest

from omniman.models import Bill, BillEvent, Order, OrderEvent, Payment, Refund
from omniman.services import BillService, PaymentService
from tests.factories import commit, create_session_at, make_channel
from tests.integration.api.conftest import error_of

pytestmark = pytest.mark.django_db

PAYMENTS = {"payments": {"methods": ["cash", "card", "pix"], "pix": {"key": "pix@cafe.example"}}}


@pytest.fixture
def cafe(db):
    return make_channel("cafe", config=PAYMENTS)


def send_round(channel, table="5", lines=2, price=1000) -> Order:
    session = create_session_at(channel, lines=lines, price=price, handle_type="table", handle_ref=table)
    return Order.objects.get(ref=commit(session)["order_ref"])


class Rows:
    def __init__(self, bill=None):
        self.bill = bill
        self.before = self.snapshot()

    def snapshot(self):
        row = None
        if self.bill is not None:
            fresh = Bill.objects.get(pk=self.bill.pk)
            row = (fresh.rev, fresh.status, fresh.total_q, fresh.paid_q, fresh.adjustments, fresh.splits)
        counts = tuple(model.objects.count() for model in (Bill, Payment, Refund, BillEvent, OrderEvent))
        return counts, row

    def assert_unchanged(self):
        assert self.snapshot() == self.before


def pay(client, bill_ref, key="k1", **body):
    return client.post(f"/api/bills/{bill_ref}/payments/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_open_a_tables_bill_then_pay_it_in_two_tenders(pos, cafe):
    first, second = send_round(cafe), send_round(cafe, lines=1, price=550)
    opened = pos.post("/api/bills/", {"channel_code": "cafe", "handle_type": "table", "handle_ref": "5"}, format="json")
    assert opened.status_code == 201, opened.json()
    bill = opened.json()
    assert bill["ref"].startswith("BIL-") and bill["status"] == "open"
    assert (bill["total_q"], bill["paid_q"], bill["due_q"]) == (2550, 0, 2550)
    assert sorted(bill["order_refs"]) == sorted([first.ref, second.ref]) and len(bill["lines"]) == 3
    again = pos.post("/api/bills/", {"channel_code": "cafe", "handle_type": "table", "handle_ref": "5"}, format="json")
    assert again.status_code == 200 and again.json()["ref"] == bill["ref"]
    assert pos.get(f"/api/bills/{bill['ref']}/").json() == again.json()

    card = pay(pos, bill["ref"], "tap-1", method="card", amount_q=1000, reference="AUTH77", brand="visa", tip_q=100,
               expected_rev=bill["rev"])
    assert card.status_code == 201, card.json()
    body = card.json()
    assert body["idempotent"] is False and body["payment"]["amount_q"] == 1000 and body["payment"]["tip_q"] == 100
    assert body["bill"]["due_q"] == 1550 and body["bill"]["tips_q"] == 100
    replay = pay(pos, bill["ref"], "tap-1", method="card", amount_q=1000, reference="AUTH77", brand="visa", tip_q=100)
    assert replay.status_code == 200 and replay.json()["idempotent"] is True
    assert replay.json()["payment"]["id"] == body["payment"]["id"] and Payment.objects.count() == 1

    cash = pay(pos, bill["ref"], "tap-2", method="cash", tendered_q=2000, expected_rev=body["bill"]["rev"])
    assert cash.status_code == 201
    settled = cash.json()["bill"]
    assert settled["status"] == "settled" and settled["due_q"] == 0 and settled["change_q"] == 450
    assert settled["closed_by"] == "token:pos"
    late = pay(pos, bill["ref"], "tap-3", method="cash")
    assert late.status_code == 409 and error_of(late) == "already_paid"


def test_a_counter_sales_bill_by_order_ref(pos, cafe):
    session = create_session_at(cafe, lines=1, price=1250)
    order_ref = commit(session)["order_ref"]
    opened = pos.post("/api/bills/", {"channel_code": "cafe", "order_ref": order_ref}, format="json")
    assert opened.status_code == 201 and opened.json()["order_refs"] == [order_ref]
    paid = pay(pos, opened.json()["ref"], "x", method="pix", reference="E2E-TXID")
    assert paid.status_code == 201 and paid.json()["bill"]["status"] == "settled"


def test_a_stale_payment_is_409_with_the_fresh_bill_and_writes_nothing(pos, cafe):
    send_round(cafe)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    BillService.split(bill.ref, expected_rev=bill.rev, mode="equal", parts=2)
    bill.refresh_from_db()
    rows = Rows(bill)
    response = pay(pos, bill.ref, method="cash", expected_rev=bill.rev - 1)
    assert response.status_code == 409 and error_of(response) == "stale_bill"
    context = response.json()["error"]["context"]
    assert context["bill"]["rev"] == bill.rev and len(context["bill"]["splits"]) == 2 and context["bill"]["due_q"] == 2000
    rows.assert_unchanged()


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"method": "cash", "amount_q": -100}, {}, 400, "invalid"),
        ({"method": "cash", "tendered_q": -1}, {}, 400, "invalid"),
        ({"method": "cash", "currency": "USD"}, {}, 400, "currency_mismatch"),
        ({"method": "cash", "currency": "usd"}, {}, 400, "invalid"),
        ({"method": "cash", "amount_q": 999999}, {}, 400, "overpayment"),
        ({"method": "cash", "tendered_q": 100}, {}, 400, "insufficient_tender"),
        ({"method": "gateway"}, {}, 400, "unknown_method"),
        ({"method": "card"}, {}, 400, "reference_required"),
        ({"method": "cash"}, {"HTTP_IDEMPOTENCY_KEY": ""}, 400, "missing_idempotency_key"),
        ({"method": "cash"}, {"HTTP_IDEMPOTENCY_KEY": "no spaces please"}, 400, "invalid"),
    ],
)
def test_bad_tenders_are_4xx_and_write_nothing(pos, cafe, body, headers, status, code):
    send_round(cafe)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    rows = Rows(bill)
    response = pos.post(f"/api/bills/{bill.ref}/payments/", body, format="json", **{"HTTP_IDEMPOTENCY_KEY": "k", **headers})
    assert response.status_code == status and error_of(response) == code, response.json()
    rows.assert_unchanged()


def test_split_discount_and_remove_through_the_api(pos, manager, cafe):
    order = send_round(cafe, lines=4)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    over = pos.post(f"/api/bills/{bill.ref}/discounts/", {"percent": "50", "reason": "cold"}, format="json")
    assert over.status_code == 403 and error_of(over) == "approval_required"
    too_much = manager.post(f"/api/bills/{bill.ref}/discounts/", {"percent": "100.5", "reason": "x"}, format="json")
    assert too_much.status_code == 400 and error_of(too_much) == "invalid"
    both = manager.post(f"/api/bills/{bill.ref}/discounts/", {"percent": "5", "amount_q": 5, "reason": "x"}, format="json")
    assert both.status_code == 400
    discounted = manager.post(f"/api/bills/{bill.ref}/discounts/", {"percent": "10", "reason": "regulars", "expected_rev": bill.rev}, format="json")
    assert discounted.status_code == 200 and discounted.json()["total_q"] == 3600
    adjustment = discounted.json()["adjustments"][0]
    assert (adjustment["kind"], adjustment["amount_q"], adjustment["actor"]) == ("discount", -400, "token:manager")
    lines = list(order.items.values_list("line_id", flat=True))
    split = pos.post(
        f"/api/bills/{bill.ref}/split/",
        {"mode": "items", "groups": [[{"order_ref": order.ref, "line_id": lines[0]}]], "rest_parts": 3,
         "expected_rev": discounted.json()["rev"]},
        format="json",
    )
    assert split.status_code == 200
    assert [p["amount_q"] for p in split.json()["splits"]] == [900, 900, 900, 900]
    stale = pos.post(f"/api/bills/{bill.ref}/split/", {"mode": "equal", "parts": 2, "expected_rev": discounted.json()["rev"]}, format="json")
    assert stale.status_code == 409 and error_of(stale) == "stale_bill"
    assert stale.json()["error"]["context"]["bill"]["splits"] == split.json()["splits"]
    removed = pos.delete(f"/api/bills/{bill.ref}/adjustments/{adjustment['id']}/?expected_rev={split.json()['rev']}")
    assert removed.status_code == 200 and removed.json()["total_q"] == 4000 and removed.json()["splits"] == []
    gone = pos.delete(f"/api/bills/{bill.ref}/adjustments/{adjustment['id']}/")
    assert gone.status_code == 404 and error_of(gone) == "adjustment_not_found"


def test_splitting_a_paid_bill_is_409_and_writes_nothing(pos, cafe):
    send_round(cafe)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    bill = PaymentService.tender(bill.ref, method="cash", idempotency_key="all").bill
    rows = Rows(bill)
    response = pos.post(f"/api/bills/{bill.ref}/split/", {"mode": "equal", "parts": 2}, format="json")
    assert response.status_code == 409 and error_of(response) == "already_paid"
    rows.assert_unchanged()


def test_void_write_off_and_refund_are_a_managers(pos, manager, cafe):
    order = send_round(cafe, lines=2)
    line = order.items.first().line_id
    rows = Rows()
    refused = pos.post(f"/api/orders/{order.ref}/lines/{line}/void/", {"reason": "spilled"}, format="json")
    assert refused.status_code == 403 and error_of(refused) == "approval_required"
    rows.assert_unchanged()
    voided = manager.post(f"/api/orders/{order.ref}/lines/{line}/void/", {"reason": "spilled", "qty": "1"}, format="json")
    assert voided.status_code == 200 and voided.json()["total_q"] == 1000
    assert OrderEvent.objects.filter(order=order, type="item_voided").count() == 1
    again = manager.post(f"/api/orders/{order.ref}/lines/{line}/void/", {"reason": "again"}, format="json")
    assert again.status_code == 409 and error_of(again) == "already_voided"
    bill_ref = voided.json()["ref"]
    payment = pay(pos, bill_ref, "p", method="cash", amount_q=400).json()["payment"]
    bill = Bill.objects.get(ref=bill_ref)
    off = pos.post(f"/api/bills/{bill_ref}/write-off/", {"reason": "left"}, format="json")
    assert off.status_code == 403 and error_of(off) == "forbidden"
    off = manager.post(f"/api/bills/{bill_ref}/write-off/", {"reason": "left", "expected_rev": bill.rev}, format="json")
    assert off.status_code == 200 and off.json()["status"] == "written_off" and off.json()["total_q"] == 400
    url = f"/api/payments/{payment['id']}/refunds/"
    rows = Rows()
    assert error_of(pos.post(url, {"amount_q": 100, "reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="r")) == "forbidden"
    over = manager.post(url, {"amount_q": 401, "reason": "x"}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert over.status_code == 400 and error_of(over) == "over_refund"
    rows.assert_unchanged()
    refund = manager.post(url, {"amount_q": 150, "reason": "cold"}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert refund.status_code == 201 and refund.json()["refund"]["amount_q"] == 150
    assert refund.json()["bill"]["refunded_q"] == 150
    replay = manager.post(url, {"amount_q": 150, "reason": "cold"}, format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert replay.status_code == 200 and replay.json()["idempotent"] is True and Refund.objects.count() == 1
    assert manager.post("/api/payments/999999/refunds/", {"amount_q": 1, "reason": "x"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="z").status_code == 404


@pytest.mark.parametrize(
    ("role", "write"), [("pos", True), ("manager", True), ("kitchen", False), ("integration", False), ("nobody", False)]
)
def test_roles(clients, cafe, role, write):
    send_round(cafe)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    client = clients[role]
    assert client.get(f"/api/bills/{bill.ref}/").status_code == (403 if role == "nobody" else 200)
    response = pay(client, bill.ref, method="cash")
    assert response.status_code == (201 if write else 403)
    assert clients["anonymous"].get(f"/api/bills/{bill.ref}/").status_code == 401
    assert pos_unknown(clients["pos"]) == 404


def pos_unknown(client) -> int:
    return client.get("/api/bills/BIL-NOPE/").status_code


def test_bill_detail_reads_in_a_fixed_number_of_queries(pos, cafe, django_assert_max_num_queries):
    for _round in range(3):
        send_round(cafe, lines=3)
    bill = BillService.open("cafe", handle_type="table", handle_ref="5")
    for i in range(4):
        PaymentService.tender(bill.ref, method="cash", amount_q=100, idempotency_key=f"p{i}")
    with django_assert_max_num_queries(12):
        response = pos.get(f"/api/bills/{bill.ref}/")
    assert len(response.json()["lines"]) == 9 and len(response.json()["payments"]) == 4
