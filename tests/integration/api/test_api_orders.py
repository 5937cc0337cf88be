"""Orders and channels through the API: lists, polling, detail, transitions, roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from omniman.models import Order, OrderEvent
from omniman.services import OrderService
from tests.factories import DbState, create_order_at, make_channel
from tests.integration.api.conftest import error_of

pytestmark = pytest.mark.django_db


def refs(response) -> list[str]:
    assert response.status_code == 200, response.json()
    return [order["ref"] for order in response.json()["results"]]


# -- channels ----------------------------------------------------------------------------------


def test_channels_list_and_detail(clients, channel, marketplace):
    make_channel("closed", is_active=False)
    listing = clients["kitchen"].get("/api/channels/")
    assert listing.status_code == 200
    codes = [c["code"] for c in listing.json()["results"]]
    assert codes == ["marketplace", "shop"]
    detail = clients["kitchen"].get("/api/channels/marketplace/").json()
    assert detail["pricing_policy"] == "external" and detail["edit_policy"] == "locked"
    assert detail["order_flow"]["initial_status"] == "new"
    assert detail["status_map"]["accepted"] == "confirmed" and detail["status_map"]["cancelled"] == "cancelled"
    assert detail["signed_ingestion"] is False and "config" not in detail
    for code in ("closed", "nope"):
        response = clients["kitchen"].get(f"/api/channels/{code}/")
        assert response.status_code == 404 and error_of(response) == "channel_not_found"


def test_the_channel_secret_is_never_shown(manager):
    make_channel("signed", config={"ingestion": {"signature_secret": "s3cret"}})
    body = manager.get("/api/channels/signed/")
    assert body.json()["signed_ingestion"] is True and "s3cret" not in body.content.decode()


# -- list, filters, polling ------------------------------------------------------------------


def test_orders_list_filters_newest_first(clients, channel):
    other = make_channel("other")
    a = create_order_at("new", channel)
    b = create_order_at("confirmed", channel)
    c = create_order_at("new", other)
    client = clients["kitchen"]
    assert refs(client.get("/api/orders/")) == [c.ref, b.ref, a.ref]
    assert refs(client.get("/api/orders/", {"channel_code": "shop"})) == [b.ref, a.ref]
    assert refs(client.get("/api/orders/", {"status": "confirmed"})) == [b.ref]
    body = client.get("/api/orders/", {"status": "confirmed"}).json()["results"][0]
    assert body["allowed_transitions"] == ["processing", "ready", "cancelled"]
    assert body["items"][0]["qty"] == "1" and body["confirmed_at"] is not None
    bad = client.get("/api/orders/", {"created_after": "yesterday"})
    assert bad.status_code == 400 and "created_after" in bad.json()["error"]["context"]["fields"]
    assert client.get("/api/orders/", {"ordering": "id"}).status_code == 400


def test_orders_created_window(clients, channel):
    order = create_order_at("new", channel)
    client = clients["pos"]
    after = (order.created_at - timedelta(seconds=1)).isoformat()
    before = (order.created_at + timedelta(seconds=1)).isoformat()
    assert refs(client.get("/api/orders/", {"created_after": after, "created_before": before})) == [order.ref]
    assert refs(client.get("/api/orders/", {"created_after": before})) == []
    assert refs(client.get("/api/orders/", {"created_before": after})) == []


def test_polling_with_updated_since_sees_status_changes(clients, channel):
    old = create_order_at("new", channel)
    moved = create_order_at("new", channel)
    mark = timezone.now()
    client = clients["integration"]
    assert refs(client.get("/api/orders/", {"updated_since": mark.isoformat()})) == []
    OrderService.transition(moved.ref, "confirmed", actor="test")
    polled = client.get("/api/orders/", {"updated_since": mark.isoformat(), "ordering": "updated_at"})
    assert refs(polled) == [moved.ref]
    assert polled.json()["results"][0]["status"] == "confirmed"
    assert old.ref not in refs(polled)


def test_orders_pagination(clients, channel):
    made = [create_order_at("new", channel).ref for _ in range(3)]
    first = clients["pos"].get("/api/orders/", {"page_size": 2}).json()
    second = clients["pos"].get("/api/orders/", {"page_size": 2, "page": 2}).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and second["next"] is None
    assert [o["ref"] for o in first["results"] + second["results"]] == made[::-1]


# -- detail and transition --------------------------------------------------------------------


def test_order_detail_has_items_and_events(clients, channel):
    order = create_order_at("confirmed", channel, lines=2)
    body = clients["kitchen"].get(f"/api/orders/{order.ref}/").json()
    assert body["ref"] == order.ref and len(body["items"]) == 2
    assert [e["type"] for e in body["events"]] == ["created", "status_changed"]
    missing = clients["kitchen"].get("/api/orders/ORD-NOPE/")
    assert missing.status_code == 404 and error_of(missing) == "not_found"


def test_transition_moves_the_order_and_records_the_caller(clients, channel):
    order = create_order_at("new", channel)
    response = clients["kitchen"].post(
        f"/api/orders/{order.ref}/transition/", {"status": "confirmed", "expected_status": "new", "reason": "go"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "confirmed"
    event = OrderEvent.objects.filter(order=order, type="status_changed").get()
    assert event.actor == "token:kitchen" and event.payload == {"from": "new", "to": "confirmed", "reason": "go"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"status": "confirmed", "expected_status": "ready"}, 409, "stale_status"),
        ({"status": "delivered"}, 400, "invalid_transition"),
        ({"status": ""}, 400, "invalid"),
        ({"status": 5, "reason": ["x"]}, 400, "invalid"),
        ({}, 400, "invalid"),
    ],
)
def test_transition_errors_change_nothing(manager, channel, body, status, code):
    order = create_order_at("new", channel)
    state = DbState()
    response = manager.post(f"/api/orders/{order.ref}/transition/", body, format="json")
    assert response.status_code == status and error_of(response) == code
    state.assert_unchanged()
    assert Order.objects.get(pk=order.pk).status == "new"


def test_transition_from_a_terminal_status_and_of_an_unknown_order(manager, channel):
    order = create_order_at("cancelled", channel)
    response = manager.post(f"/api/orders/{order.ref}/transition/", {"status": "confirmed"}, format="json")
    assert response.status_code == 400 and error_of(response) == "invalid_transition"
    missing = manager.post("/api/orders/ORD-NOPE/transition/", {"status": "confirmed"}, format="json")
    assert missing.status_code == 404 and error_of(missing) == "not_found"


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("pos", 200, 200),
        ("kitchen", 200, 200),
        ("manager", 200, 200),
        ("integration", 200, 403),
        ("nobody", 403, 403),
        ("anonymous", 401, 401),
    ],
)
def test_order_roles(clients, channel, role, read, write):
    order = create_order_at("new", channel)
    client = clients[role]
    assert client.get("/api/orders/").status_code == read
    assert client.get(f"/api/orders/{order.ref}/").status_code == read
    assert client.get("/api/channels/").status_code == read
    assert client.get("/api/channels/shop/").status_code == read
    response = client.post(f"/api/orders/{order.ref}/transition/", {"status": "confirmed"}, format="json")
    assert response.status_code == write
    if write != 200:
        assert Order.objects.get(pk=order.pk).status == "new"
        assert error_of(response) == ("not_authenticated" if write == 401 else "permission_denied")
