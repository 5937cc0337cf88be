"""The shifts' REST API (issue #18): registers, open, cash movements, close with a manager's PIN, the Z-report."""

from __future__ import annotations

import pytest

from omniman.approvals import set_pin
from omniman.models import CashMovement, Order, Register, Shift, ShiftEvent
from omniman.services import BillService
from tests.factories import commit, create_session_at, make_channel
from tests.integration.api.conftest import error_of, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def main_register(db):
    return Register.objects.get_or_create(code="main", defaults={"name": "Main"})[0]


def state():
    return (Shift.objects.count(), CashMovement.objects.count(), ShiftEvent.objects.count(),
            list(Shift.objects.values_list("status", "rev", "counted_q")))


def test_a_shift_through_the_api_open_move_close_with_a_managers_pin_and_its_z_report(pos):
    registers = pos.get("/api/registers/")
    assert registers.status_code == 200
    assert registers.json()[0]["code"] == "main" and registers.json()[0]["open_shift_id"] is None
    assert registers.json()[0]["difference_threshold_q"] == 500 and 5000 in registers.json()[0]["denominations"]
    opened = pos.post("/api/shifts/", {"register": "main", "opening_count": [{"denomination_q": 5000, "count": 2},
                                                                             {"denomination_q": 1000, "count": 1}]},
                      format="json")
    assert opened.status_code == 201, opened.json()
    shift = opened.json()
    assert (shift["status"], shift["opening_float_q"], shift["opening_count"], shift["opened_by"]) == (
        "open", 11000, {"5000": 2, "1000": 1}, "token:pos")
    assert pos.get("/api/registers/").json()[0]["open_shift_id"] == shift["id"]
    again = pos.post("/api/shifts/", {"register": "main", "opening_float_q": 0}, format="json")
    assert again.status_code == 409 and error_of(again) == "shift_already_open"

    channel = make_channel("cafe", config={"payments": {"methods": ["cash", "card"]}})
    order = Order.objects.get(ref=commit(create_session_at(channel, lines=1, price=2000))["order_ref"])
    bill = BillService.open("cafe", order_ref=order.ref)
    paid = pos.post(f"/api/bills/{bill.ref}/payments/", {"method": "cash", "register": "main"}, format="json",
                    HTTP_IDEMPOTENCY_KEY="pay-1")
    assert paid.status_code == 201 and paid.json()["payment"]["shift_id"] == shift["id"]

    out = pos.post(f"/api/shifts/{shift['id']}/cash-movements/", {"kind": "out", "amount_q": 5000, "reason": "Bank drop"},
                   format="json", HTTP_IDEMPOTENCY_KEY="out-1")
    assert out.status_code == 201 and out.json()["kind"] == "out"
    replay = pos.post(f"/api/shifts/{shift['id']}/cash-movements/", {"kind": "out", "amount_q": 5000, "reason": "Bank drop"},
                      format="json", HTTP_IDEMPOTENCY_KEY="out-1")
    assert replay.status_code == 200 and replay.json()["id"] == out.json()["id"]
    detail = pos.get(f"/api/shifts/{shift['id']}/").json()
    assert [m["reason"] for m in detail["cash_movements"]] == ["Bank drop"]
    assert [e["type"] for e in detail["events"]] == ["opened", "cash_out"]

    # Expected: 110.00 + 20.00 − 50.00 = 80.00; counted 70.00 → −10.00, over the 5.00 threshold.
    before = state()
    refused = pos.post(f"/api/shifts/{shift['id']}/close/", {"counted_q": 7000, "expected_rev": detail["rev"]}, format="json")
    assert refused.status_code == 403 and error_of(refused) == "difference_needs_approval"
    assert refused.json()["error"]["context"]["difference_q"] == -1000
    boss = make_user("boss", "manager")
    set_pin(boss, "2468")
    wrong = pos.post(f"/api/shifts/{shift['id']}/close/", {"counted_q": 7000, "approved_by": "boss", "approval_pin": "1111"},
                     format="json")
    assert wrong.status_code == 403 and error_of(wrong) == "approval_failed"
    assert state() == before
    closed = pos.post(f"/api/shifts/{shift['id']}/close/", {"counted_q": 7000, "expected_rev": detail["rev"], "reason": "Short",
                                                           "approved_by": "boss", "approval_pin": "2468"}, format="json")
    assert closed.status_code == 200, closed.json()
    assert (closed.json()["expected_cash_q"], closed.json()["difference_q"], closed.json()["difference_approved_by"]) == (
        8000, -1000, "boss")
    report = pos.get(f"/api/shifts/{shift['id']}/z-report/").json()
    assert report["by_method"] == {"cash": {"count": 1, "amount_q": 2000, "tip_q": 0, "change_q": 0}}
    assert report["cash"]["expected_q"] == 8000 and report["cash"]["counted_q"] == 7000 and report["bills"] == 1


def test_errors_in_the_api_format_and_nothing_changes(pos, clients):
    before = state()
    for body in ({"register": "main"}, {"register": "main", "opening_float_q": 1, "opening_count": [{"denomination_q": 1, "count": 1}]},
                 {"register": "main", "opening_count": []}, {"register": "main", "opening_float_q": -1}):
        response = pos.post("/api/shifts/", body, format="json")
        assert response.status_code == 400 and error_of(response) == "invalid", body
    missing = pos.post("/api/shifts/", {"register": "nope", "opening_float_q": 0}, format="json")
    assert missing.status_code == 404 and error_of(missing) == "register_not_found"
    assert pos.get("/api/shifts/999/").status_code == 404 and error_of(pos.get("/api/shifts/999/z-report/")) == "shift_not_found"
    for role in ("kitchen", "integration", "nobody"):
        response = clients[role].post("/api/shifts/", {"register": "main", "opening_float_q": 0}, format="json")
        assert response.status_code == 403 and error_of(response) == "permission_denied"
        assert clients[role].get("/api/registers/").status_code == 403
    assert clients["anonymous"].get("/api/registers/").status_code == 401
    shift = pos.post("/api/shifts/", {"register": "main", "opening_float_q": 0}, format="json").json()
    before = state()
    no_key = pos.post(f"/api/shifts/{shift['id']}/cash-movements/", {"kind": "in", "amount_q": 1, "reason": "x"}, format="json")
    assert no_key.status_code == 400 and error_of(no_key) == "missing_idempotency_key"
    no_reason = pos.post(f"/api/shifts/{shift['id']}/cash-movements/", {"kind": "in", "amount_q": 1, "reason": " "}, format="json",
                         HTTP_IDEMPOTENCY_KEY="k")
    assert no_reason.status_code == 400
    stale = pos.post(f"/api/shifts/{shift['id']}/close/", {"counted_q": 0, "expected_rev": 7}, format="json")
    assert stale.status_code == 409 and error_of(stale) == "stale_shift"
    assert state() == before
