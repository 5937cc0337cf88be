"""The floor's REST endpoints (docs/api/floor.rst): the map, transfer lines, move a tab, merge, placements."""

from __future__ import annotations

import pytest

from omniman.models import FloorArea, FloorTable, Order, Session, TableMove
from omniman.services import ModifyService, SessionService
from tests.factories import commit, make_channel
from tests.integration.api.conftest import error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def tables(db):
    channel = make_channel("tables", config={"tables": True, "order_flow": {"auto_transitions": {"on_create": "confirmed"}}})
    area = FloorArea.objects.create(channel=channel, name="Salão")
    for i in range(1, 7):
        FloorTable.objects.create(channel=channel, area=area, label=str(i), x=(i - 1) * 3)
    return channel


def tab(table, *prices):
    session = SessionService.open_session("tables", handle_type="table", handle_ref=table)
    ops = [{"op": "add_line", "sku": f"S{i}", "qty": 1, "unit_price_q": p} for i, p in enumerate(prices)]
    return ModifyService.modify_session(session.session_key, "tables", ops) if ops else session


def test_floor_map(pos, tables, clients):
    four = tab("4", 1000)
    order = Order.objects.get(ref=commit(four)["order_ref"])
    tab("4", 250)
    response = pos.get("/api/channels/tables/floor/")
    assert response.status_code == 200
    body = response.json()
    assert body["channel_code"] == "tables" and body["version"]
    by = {t["table"]: t for area in body["areas"] for t in area["tables"]}
    assert by["4"]["occupied"] and by["4"]["owed_q"] == order.total_q + 250 and by["4"]["kitchen"] == {"waiting": 1, "ready": 0}
    assert by["1"]["occupied"] is False and by["1"]["owed_q"] == 0
    assert clients["kitchen"].get("/api/channels/tables/floor/").status_code == 200
    assert clients["anonymous"].get("/api/channels/tables/floor/").status_code == 401
    make_channel("counter")
    assert error_of(pos.get("/api/channels/counter/floor/")) == "not_found"


def test_transfer_lines_move_tab_and_merge(pos, tables):
    four = tab("4", 100, 200, 300)
    ids = [line["line_id"] for line in four.lines[:2]]
    response = pos.post(f"/api/sessions/{four.session_key}/transfer-lines/",
                        {"channel_code": "tables", "line_ids": ids, "to_table": "5", "expected_rev": four.rev}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["kind"] == "lines" and body["line_ids"] == ids and body["from_table"] == "4" and body["to_table"] == "5"
    assert body["source"]["rev"] == four.rev + 1 and [i["sku"] for i in body["target"]["items"]] == ["S0", "S1"]
    five = Session.objects.get(handle_ref="5", state="open")
    sent = Order.objects.get(ref=commit(five)["order_ref"])
    six = tab("6", 70)
    response = pos.post(f"/api/sessions/{six.session_key}/merge/",
                        {"channel_code": "tables", "to_table": "4", "expected_rev": six.rev}, format="json")
    assert response.status_code == 200 and response.json()["target"]["session_key"] == four.session_key
    five_next = SessionService.open_session("tables", handle_type="table", handle_ref="5")
    five_next = ModifyService.modify_session(five_next.session_key, "tables", [{"op": "add_line", "sku": "X", "qty": 1, "unit_price_q": 5}])
    response = pos.post(f"/api/sessions/{five_next.session_key}/move-tab/", {"channel_code": "tables", "to_table": "2"}, format="json")
    assert response.status_code == 200 and response.json()["order_refs"] == [sent.ref]
    sent.refresh_from_db()
    assert sent.current_handle_ref == "2"
    assert pos.get(f"/api/orders/{sent.ref}/").json()["current_handle_ref"] == "2"
    assert TableMove.objects.count() == 3


@pytest.mark.parametrize(
    ("path", "payload", "status", "code"),
    [
        ("transfer-lines", {"line_ids": ["nope"], "to_table": "5"}, 400, "line_not_found"),
        ("transfer-lines", {"line_ids": [], "to_table": "5"}, 400, "invalid"),
        ("merge", {"to_table": "4"}, 400, "same_table"),
        ("merge", {"to_table": "77"}, 400, "table_not_found"),
        ("merge", {"to_table": "5", "expected_rev": 0}, 409, "stale_rev"),
        ("move-tab", {"to_table": "3"}, 409, "table_occupied"),
    ],
)
def test_refusals_answer_their_code_and_change_nothing(pos, tables, path, payload, status, code):
    four = tab("4", 100)
    tab("3", 5)
    before = (list(Session.objects.values_list("pk", "rev", "state", "lines")), TableMove.objects.count())
    response = pos.post(f"/api/sessions/{four.session_key}/{path}/", {"channel_code": "tables", **payload}, format="json")
    assert response.status_code == status and error_of(response) == code
    assert (list(Session.objects.values_list("pk", "rev", "state", "lines")), TableMove.objects.count()) == before


def test_moves_need_a_session_writer(clients, tables):
    four = tab("4", 100)
    for who, expected in (("kitchen", 403), ("integration", 403), ("anonymous", 401)):
        response = clients[who].post(f"/api/sessions/{four.session_key}/merge/", {"channel_code": "tables", "to_table": "5"}, format="json")
        assert response.status_code == expected
    assert not TableMove.objects.exists()


def test_placements_are_for_managers(clients, tables):
    one = FloorTable.objects.get(label="1")
    payload = {"placements": [{"id": one.pk, "x": 10, "y": 4}]}
    assert clients["pos"].post("/api/channels/tables/floor/placements/", payload, format="json").status_code == 403
    response = clients["manager"].post("/api/channels/tables/floor/placements/", payload, format="json")
    assert response.status_code == 200
    one.refresh_from_db()
    assert (one.x, one.y) == (10, 4)
    response = clients["manager"].post("/api/channels/tables/floor/placements/", {"placements": [{"id": one.pk, "x": 3, "y": 0}]}, format="json")
    assert response.status_code == 400 and error_of(response) == "overlap"
