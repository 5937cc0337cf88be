"""/api/kitchen/…: bump, undo, acknowledge voids, 86, an order's kitchen items, fire a course."""

from __future__ import annotations

import pytest

from omniman.models import KitchenItem, Order, OrderEvent
from omniman.services import ModifyService, SessionService
from tests.factories import commit, make_channel

pytestmark = pytest.mark.django_db


def burger_and_lemonade(hold_cake=False):
    channel = make_channel()
    session = SessionService.open_session(channel.code, handle_type="table", handle_ref="31")
    ops = [
        {"op": "add_line", "sku": "BURGER", "qty": "1", "unit_price_q": 900, "name": "Burger", "meta": {"station": "kitchen"}},
        {"op": "add_line", "sku": "LEMONADE", "qty": "1", "unit_price_q": 400, "name": "Lemonade", "meta": {"station": "bar"}},
    ]
    if hold_cake:
        ops.append({"op": "add_line", "sku": "CAKE", "qty": "1", "unit_price_q": 500, "name": "Cake", "meta": {"station": "pastry", "hold": True}})
    session = ModifyService.modify_session(session.session_key, channel.code, ops)
    return Order.objects.get(ref=commit(session)["order_ref"])


def test_the_bar_bumps_its_item_and_a_stale_bump_answers_409_changing_nothing(clients):
    order = burger_and_lemonade()
    kitchen = clients["kitchen"]
    body = {"order_ref": order.ref, "station": "bar", "expected_status": "queued"}
    response = kitchen.post("/api/kitchen/bump/", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["order_status"] == "new" and [i["status"] for i in response.json()["items"]] == ["cooking"]
    before = list(KitchenItem.objects.filter(order=order).values_list("status", "rev"))
    stale = kitchen.post("/api/kitchen/bump/", body, format="json")
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_status"
    assert list(KitchenItem.objects.filter(order=order).values_list("status", "rev")) == before
    items = clients["pos"].get(f"/api/orders/{order.ref}/kitchen/").json()["items"]
    assert {(i["station"], i["status"]) for i in items} == {("kitchen", "queued"), ("bar", "cooking")}


def test_roles_pos_may_not_bump_and_the_kitchen_may_not_fire(clients):
    order = burger_and_lemonade(hold_cake=True)
    events = OrderEvent.objects.count()
    refused = clients["pos"].post("/api/kitchen/bump/", {"order_ref": order.ref, "expected_status": "queued"}, format="json")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert clients["kitchen"].post(f"/api/orders/{order.ref}/kitchen/fire/", {}, format="json").status_code == 403
    assert OrderEvent.objects.count() == events
    fired = clients["pos"].post(f"/api/orders/{order.ref}/kitchen/fire/", {}, format="json")
    assert fired.status_code == 200 and [i["held"] for i in fired.json()["items"]] == [False]


def test_undo_acknowledge_and_eighty_six(clients):
    order = burger_and_lemonade()
    kitchen = clients["kitchen"]
    kitchen.post("/api/kitchen/bump/", {"order_ref": order.ref, "station": "bar", "expected_status": "queued"}, format="json")
    undone = kitchen.post("/api/kitchen/undo/", {"order_ref": order.ref, "station": "bar", "expected_status": "cooking"}, format="json")
    assert undone.status_code == 200 and undone.json()["items"][0]["status"] == "queued"
    again = kitchen.post("/api/kitchen/undo/", {"order_ref": order.ref, "station": "bar", "expected_status": "queued"}, format="json")
    assert again.status_code == 409 and again.json()["error"]["code"] == "undo_expired"
    burger = KitchenItem.objects.get(order=order, station="kitchen")
    Order.objects.get(pk=order.pk).emit_event("item_voided", actor="user:boss", payload={"line_id": burger.line_id, "qty": "1", "reason": "x"})
    ack = kitchen.post("/api/kitchen/acknowledge-void/", {"order_ref": order.ref, "item_ids": [burger.pk]}, format="json")
    assert ack.status_code == 200 and ack.json()["items"][0]["void_pending"] is False
    out = kitchen.post("/api/kitchen/sold-out/", {"sku": "CROISSANT", "sold_out": True}, format="json")
    assert out.status_code == 200 and out.json() == {"skus": ["CROISSANT"]}
    assert kitchen.get("/api/kitchen/sold-out/").json() == {"skus": ["CROISSANT"]}
    assert kitchen.post("/api/kitchen/bump/", {"expected_status": "queued"}, format="json").status_code == 400
    missing = kitchen.post("/api/kitchen/bump/", {"order_ref": "NOPE", "expected_status": "queued"}, format="json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert clients["pos"].get("/api/orders/NOPE/kitchen/").status_code == 404
