"""Park, resume and close-table through the API: the POS's use cases, the same codes, the same 409s."""

from __future__ import annotations

import pytest

from omniman.models import Channel, Order, Session
from omniman.services import BillService, ModifyService, OrderService, PaymentService, SessionService
from tests.factories import DbState, commit, create_session_at, make_channel
from tests.integration.api.conftest import error_of

pytestmark = pytest.mark.django_db

ACTIONS = ("park", "resume", "close-table")


@pytest.fixture
def tables(db):
    return make_channel("tables", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})


def post(client, key, action, channel_code="tables", **body):
    return client.post(f"/api/sessions/{key}/{action}/", {"channel_code": channel_code, **body}, format="json")


def table_with_a_round(table="4") -> tuple[Order, Session]:
    """A table whose first round was sent (confirmed) and whose next round is open and empty."""
    session = create_session_at(Channel.objects.get(code="tables"), lines=1, handle_type="table", handle_ref=table)
    order = Order.objects.get(ref=commit(session)["order_ref"])
    return order, SessionService.open_next(session.session_key, "tables")


def test_park_then_resume(pos, tables):
    session = create_session_at(tables, lines=1)
    parked = post(pos, session.session_key, "park", expected_rev=session.rev)
    assert parked.status_code == 200
    body = parked.json()
    assert body["data"]["parked"] is True and body["rev"] == session.rev + 1
    resumed = post(pos, session.session_key, "resume", expected_rev=body["rev"])
    assert resumed.status_code == 200
    assert resumed.json()["data"]["parked"] is False and resumed.json()["rev"] == session.rev + 2
    # Without expected_rev: last write wins, as modify.
    assert post(pos, session.session_key, "park").json()["data"]["parked"] is True


def test_a_modify_resumes_a_parked_session(pos, tables):
    session = create_session_at(tables, lines=1)
    post(pos, session.session_key, "park")
    changed = pos.post(
        f"/api/sessions/{session.session_key}/modify/",
        {"channel_code": "tables", "ops": [{"op": "set_data", "path": "notes", "value": "later"}]},
        format="json",
    )
    assert changed.status_code == 200 and changed.json()["data"] == {"parked": False, "notes": "later"}


def pay(table: str) -> None:
    bill = BillService.open("tables", handle_type="table", handle_ref=table)
    PaymentService.tender(bill.ref, method="cash", idempotency_key=f"pay-{table}")


def test_close_table_refuses_an_unpaid_table(pos, tables):
    order, current = table_with_a_round("8")
    before = DbState(current)
    response = post(pos, current.session_key, "close-table", expected_rev=current.rev)
    assert response.status_code == 409 and error_of(response) == "bill_not_settled"
    assert response.json()["error"]["context"]["due_q"] == 1000
    before.assert_unchanged()


def test_close_table_completes_its_rounds_past_the_kitchen(pos, tables):
    order, current = table_with_a_round("8")
    OrderService.transition(order.ref, "ready", actor="kitchen")
    pay("8")
    response = post(pos, current.session_key, "close-table", expected_rev=current.rev)
    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "abandoned"
    order.refresh_from_db()
    assert order.status == "completed"
    assert set(order.events.filter(type="status_changed").values_list("actor", flat=True)) >= {"token:pos"}


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("not_a_table", 400, "not_a_table"),
        ("round_not_sent", 400, "round_not_sent"),
        ("stale", 409, "stale_rev"),
        ("unknown", 404, "not_found"),
        ("wrong_channel", 404, "not_found"),
        ("bad_rev", 400, "invalid"),
        ("no_channel", 400, "invalid"),
        ("unpaid", 409, "bill_not_settled"),
    ],
)
def test_close_table_errors_write_nothing(pos, tables, case, status, code):
    order, current = table_with_a_round("5")
    if case != "unpaid":
        pay("5")
    if case == "not_a_table":
        current = create_session_at(tables, lines=0)
    elif case == "round_not_sent":
        current = ModifyService.modify_session(
            current.session_key, "tables", [{"op": "add_line", "sku": "Y", "qty": 1, "unit_price_q": 100}]
        )
    make_channel("other")
    before = DbState(current)
    key = "SESS-nope" if case == "unknown" else current.session_key
    body = {"channel_code": "other" if case == "wrong_channel" else "tables", "expected_rev": current.rev}
    if case == "stale":
        body["expected_rev"] = current.rev + 1
    elif case == "bad_rev":
        body["expected_rev"] = "three"
    elif case == "no_channel":
        del body["channel_code"]
    response = pos.post(f"/api/sessions/{key}/close-table/", body, format="json")
    assert response.status_code == status and error_of(response) == code
    before.assert_unchanged()
    order.refresh_from_db()
    assert order.status == "confirmed"


@pytest.mark.parametrize("action", ["park", "resume"])
@pytest.mark.parametrize(("case", "status", "code"), [("stale", 409, "stale_rev"), ("committed", 409, "already_committed"), ("unknown", 404, "not_found")])
def test_park_and_resume_errors_write_nothing(pos, tables, action, case, status, code):
    session = create_session_at(tables, lines=1)
    if action == "resume":
        session = SessionService.park(session.session_key, "tables")
    if case == "committed":
        commit(session)
        session = Session.objects.get(pk=session.pk)
    before = DbState(session)
    key = "SESS-nope" if case == "unknown" else session.session_key
    response = post(pos, key, action, expected_rev=session.rev - 1 if case == "stale" else session.rev)
    assert response.status_code == status and error_of(response) == code
    before.assert_unchanged()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("pos", True), ("manager", True), ("kitchen", False), ("integration", False), ("nobody", False), ("anonymous", False)],
)
def test_roles(clients, tables, role, allowed):
    order, current = table_with_a_round("2")
    pay("2")
    basket = create_session_at(tables, lines=1)
    client = clients[role]
    before = DbState(basket)
    for action, session in (("park", basket), ("resume", basket), ("close-table", current)):
        response = post(client, session.session_key, action)
        if allowed:
            assert response.status_code == 200, (action, response.json())
        else:
            assert response.status_code == (401 if role == "anonymous" else 403)
            assert error_of(response) == ("not_authenticated" if role == "anonymous" else "permission_denied")
    if not allowed:
        before.assert_unchanged()
        order.refresh_from_db()
        assert order.status == "confirmed"


def test_get_is_not_allowed(pos, tables):
    session = create_session_at(tables, lines=1)
    for action in ACTIONS:
        assert pos.get(f"/api/sessions/{session.session_key}/{action}/").status_code == 405


def test_the_schema_documents_the_three_paths(pos):
    schema = pos.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for action in ACTIONS:
        operation = schema["paths"][f"/api/sessions/{{key}}/{action}/"]["post"]
        assert set(operation["responses"]) >= {"200", "400", "401", "403", "404", "409"}
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/SessionActionRequest")


def test_adjust_qty_through_modify(pos, tables):
    session = create_session_at(tables, lines=1)
    line = session.lines[0]["line_id"]

    def step(delta, rev):
        return pos.post(
            f"/api/sessions/{session.session_key}/modify/",
            {"channel_code": "tables", "ops": [{"op": "adjust_qty", "line_id": line, "delta": delta}], "expected_rev": rev},
            format="json",
        )

    up = step("+1", session.rev)
    assert up.status_code == 200 and up.json()["items"][0]["qty"] == "2"
    before = DbState(Session.objects.get(pk=session.pk))
    bad = step("0", session.rev + 1)
    assert bad.status_code == 400 and error_of(bad) == "invalid_qty"
    before.assert_unchanged()
    gone = step(-2, session.rev + 1)
    assert gone.status_code == 200 and gone.json()["items"] == []
