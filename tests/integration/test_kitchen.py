"""The kitchen board: who sees it, what a card shows, bumps, the cheap 'nothing changed' poll, query counts."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.html import escape

from omniman.models import Order, OrderEvent
from omniman.services import KitchenService, OrderService
from omniman.models import KitchenItem
from omniman.web.kitchen import board_version, build_board
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db


def user_with(role, name=None):
    user = get_user_model().objects.create_user(name or role, password="pw")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


@pytest.fixture
def kitchen_client(client):
    client.force_login(user_with("kitchen"))
    return client


def table_order(channel, table="4", *, note="", status=None, lines=2):
    session = create_session_at(channel, lines=lines, handle_type="table", handle_ref=table)
    if note:
        from omniman.services import ModifyService

        session = ModifyService.modify_session(
            session.session_key,
            channel.code,
            [{"op": "set_line_meta", "line_id": session.items[0]["line_id"], "path": "note", "value": note}],
        )
    order = Order.objects.get(ref=commit(session)["order_ref"])
    if status:
        for step in {"confirmed": ["confirmed"], "processing": ["confirmed", "processing"], "ready": ["confirmed", "ready"]}[status]:
            OrderService.transition(order.ref, step)
    return Order.objects.get(pk=order.pk)


def test_board_requires_the_kitchen_or_manager_role(client):
    response = client.get("/kitchen/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    client.force_login(user_with("pos"))
    assert client.get("/kitchen/").status_code == 403
    assert client.post("/kitchen/bump/", {}).status_code == 403
    client.force_login(user_with("manager", "boss"))
    assert client.get("/kitchen/").status_code == 200


def test_cards_show_table_items_notes_by_column(kitchen_client):
    channel = make_channel("tables", config={"terminology": {"processing": "Cooking"}})
    table_order(channel, "4", note="<b>no onions</b>", status="confirmed")
    table_order(channel, "9", status="processing")
    body = kitchen_client.get("/kitchen/").content.decode()
    assert "Table 4" in body and "Table 9" in body
    assert escape("<b>no onions</b>") in body and "<b>no onions</b>" not in body
    assert "Cooking" in body  # channel terminology for the column
    columns = re.findall(r'<div class="column column-(\w+)">', body)
    assert columns == ["new", "confirmed", "processing", "ready"]


def test_station_filter_shows_only_that_stations_items(kitchen_client):
    channel = make_channel()
    session = create_session_at(channel, lines=0)
    from omniman.services import ModifyService

    ModifyService.modify_session(
        session.session_key,
        channel.code,
        [
            {"op": "add_line", "sku": "ESP", "qty": 1, "name": "Espresso", "meta": {"station": "bar"}},
            {"op": "add_line", "sku": "BURG", "qty": 1, "name": "Burger", "meta": {"station": "kitchen"}},
        ],
    )
    commit(session)
    bar = kitchen_client.get("/kitchen/?station=bar").content.decode()
    assert "Espresso" in bar and "Burger" not in bar
    expo = kitchen_client.get("/kitchen/?station=expo").content.decode()
    assert "Espresso" in expo and "Burger" in expo
    pastry = kitchen_client.get("/kitchen/?station=pastry").content.decode()
    assert "Espresso" not in pastry and "Burger" not in pastry


def test_bump_moves_the_stations_items_and_a_stale_bump_gets_the_fresh_board(kitchen_client):
    order = table_order(make_channel(), status="confirmed")  # its lines have no station: the default one, "kitchen"
    data = {"order_ref": order.ref, "expected_status": "queued", "station": "kitchen", "label": "Table 4"}
    response = kitchen_client.post("/kitchen/bump/", data, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="board"' in response.content.decode()
    assert "<html" not in response.content.decode()
    assert set(KitchenItem.objects.filter(order=order).values_list("status", flat=True)) == {"cooking"}
    assert Order.objects.get(pk=order.pk).status == "processing"  # the order follows its items
    # A second screen that still showed "queued" bumps the same card: no error, no second move, a notice.
    stale = kitchen_client.post("/kitchen/bump/", data, HTTP_HX_REQUEST="true")
    assert stale.status_code == 200
    assert "Table 4 was already moved on another screen" in stale.content.decode()
    assert 'class="banner banner-conflict board-notice" role="alert"' in stale.content.decode()
    assert set(KitchenItem.objects.filter(order=order).values_list("rev", flat=True)) == {1}
    assert OrderEvent.objects.filter(order=order, type="status_changed", payload__to="processing").count() == 1
    assert OrderEvent.objects.filter(order=order, type="kitchen.bumped").get().actor == "user:kitchen"


def test_bump_without_htmx_redirects_and_the_expo_hands_out(kitchen_client):
    order = table_order(make_channel(), status="confirmed")
    for expected in ("queued", "cooking"):
        kitchen_client.post("/kitchen/bump/", {"order_ref": order.ref, "expected_status": expected, "station": "kitchen"})
    assert Order.objects.get(pk=order.pk).status == "ready"
    expo = kitchen_client.get("/kitchen/?station=expo").content.decode()
    assert "Hand out Table 4" in expo and "1/1 stations done" in expo
    response = kitchen_client.post("/kitchen/bump/", {"order_ref": order.ref, "expected_status": "ready", "station": "expo"})
    assert response.status_code == 302 and response["Location"].startswith("/kitchen/?station=expo")
    assert Order.objects.get(pk=order.pk).status == "completed"
    # Gone from the board, back in the recall list, where an undo is refused: the order left the kitchen.
    assert "Table 4" not in kitchen_client.get("/kitchen/").content.decode().split("All day")[0]
    recall = kitchen_client.get("/kitchen/?recall=1").content.decode()
    assert "Bumped in the last 15 minutes" in recall and "Table 4" in recall.split("Bumped in the last")[1]
    undo = kitchen_client.post("/kitchen/undo/", {"order_ref": order.ref, "expected_status": "served", "station": "expo"}, HTTP_HX_REQUEST="true")
    assert "has not reached the kitchen (or has left it)" in undo.content.decode()


def test_poll_answers_204_without_a_template_when_nothing_changed(kitchen_client, monkeypatch):
    from omniman.web import kitchen

    rendered = []
    real_render = kitchen.render
    monkeypatch.setattr(kitchen, "render", lambda request, name, *a, **kw: rendered.append(name) or real_render(request, name, *a, **kw))
    channel = make_channel()
    table_order(channel, status="confirmed")
    version = board_version("")
    url = f"/kitchen/board/?station=expo&channel=&v={version}"
    with CaptureQueriesContext(connection) as ctx:
        response = kitchen_client.get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response.content == b""
    assert rendered == []
    assert len(ctx.captured_queries) <= 6  # session, user, its groups (the role), the channels' policies, two aggregates
    # A new order changes the version: the poll renders the board region.
    table_order(channel, "12")
    changed = kitchen_client.get(url, HTTP_HX_REQUEST="true")
    assert changed.status_code == 200 and "Table 12" in changed.content.decode()
    assert rendered == ["kitchen/board.html#board"]


def test_version_changes_when_a_card_moves_or_leaves():
    order = table_order(make_channel(), status="confirmed")
    before = board_version("")
    OrderService.transition(order.ref, "processing")
    moved = board_version("")
    assert moved != before
    OrderService.transition(order.ref, "ready")
    OrderService.transition(order.ref, "completed")
    assert board_version("") not in (before, moved)


def test_board_query_count_is_the_same_for_5_and_200_orders(kitchen_client):
    channel = make_channel()
    counts = {}
    made = 0
    for target in (5, 200):
        while made < target:
            table_order(channel, str(made), status="confirmed", lines=2)
            made += 1
        with CaptureQueriesContext(connection) as ctx:
            response = kitchen_client.get("/kitchen/")
        assert response.content.decode().count('<article class="card') == target
        counts[target] = len(ctx.captured_queries)
    assert counts[5] == counts[200], counts
    assert counts[200] <= 14


def test_the_board_asks_each_channels_flow_for_its_statuses_and_tables(kitchen_client):
    deli = make_channel(
        "deli",
        config={
            "order_flow": {
                "transitions": {"new": ["confirmed", "void"], "confirmed": ["ready", "void"], "ready": ["served", "void"]},
                "terminal_statuses": ["served", "void"],
                "cancel_status": "void",
                "done_status": "served",
                "kitchen_statuses": ["confirmed", "ready"],
                "table_handle_types": ["booth"],
            }
        },
    )
    fresh = Order.objects.get(ref=commit(create_session_at(deli, lines=1, handle_type="booth", handle_ref="3"))["order_ref"])
    assert not any(card.order == fresh for _s, _l, cards in build_board().columns for card in cards)  # "new" is not its kitchen status
    OrderService.transition(fresh.ref, "confirmed")
    order = Order.objects.get(pk=fresh.pk)
    response = kitchen_client.get("/kitchen/")
    assert "Booth" not in response.content.decode() and "Table 3" in response.content.decode()
    for expected in ("queued", "cooking"):
        KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status=expected, roles=["kitchen"])
    assert Order.objects.get(pk=order.pk).status == "ready"  # no "processing" in its flow: it waited, then went to ready
    kitchen_client.post("/kitchen/bump/", {"order_ref": order.ref, "expected_status": "ready"}, HTTP_HX_REQUEST="true")
    assert Order.objects.get(pk=order.pk).status == "served"  # the flow's done status, never "void"
