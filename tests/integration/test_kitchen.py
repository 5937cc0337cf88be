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


def test_the_poll_that_finds_a_change_reads_the_version_once_and_costs_the_same_for_5_and_50_orders(kitchen_client):
    channel = make_channel()
    counts = {}
    made = 0
    for target in (5, 50):
        while made < target:
            table_order(channel, str(made), status="confirmed", lines=2)
            made += 1
        with CaptureQueriesContext(connection) as ctx:
            response = kitchen_client.get("/kitchen/board/?station=expo&channel=&v=old", HTTP_HX_REQUEST="true")
        assert response.status_code == 200 and response.content.decode().count('<article class="card') == target
        # The version it answers is the one it compared: read once, before the board.
        assert f"&v={board_version('')}" in response.content.decode()
        assert sum('MAX("omniman_order"."updated_at")' in q["sql"] for q in ctx.captured_queries) == 1
        counts[target] = len(ctx.captured_queries)
    assert counts[5] == counts[50] <= 12, counts


def test_the_board_polls_every_kitchen_poll_ms(kitchen_client, settings):
    from omniman.web.kitchen import POLL_MS

    assert POLL_MS <= 500  # a new ticket within the poll interval (issue 19: on the board within 1 s)
    assert f'hx-trigger="every {POLL_MS}ms"' in kitchen_client.get("/kitchen/").content.decode()
    settings.OMNIMAN = {**settings.OMNIMAN, "KITCHEN_POLL_MS": 1000}
    assert 'hx-trigger="every 1000ms"' in kitchen_client.get("/kitchen/").content.decode()
    changed = kitchen_client.get("/kitchen/board/?station=expo&channel=&v=old", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1000ms"' in changed  # the region the poll swaps in keeps polling at that pace


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


# -- per-station items on the screens (issue #16) ---------------------------------------------------


def burger_lemonade_order(channel=None, *, table="31", customer=None, notes=""):
    channel = channel or make_channel()
    from omniman.services import ModifyService, SessionService

    session = SessionService.open_session(channel.code, handle_type="table", handle_ref=table)
    ops = [
        {"op": "add_line", "sku": "BURGER", "qty": "1", "unit_price_q": 900, "name": "Burger", "meta": {"station": "kitchen", "note": "no onions"}},
        {"op": "add_line", "sku": "LEMONADE", "qty": "1", "unit_price_q": 400, "name": "Lemonade", "meta": {"station": "bar"}},
    ]
    if customer:
        ops.append({"op": "set_data", "path": "customer", "value": customer})
    if notes:
        ops.append({"op": "set_data", "path": "notes", "value": notes})
    session = ModifyService.modify_session(session.session_key, channel.code, ops)
    return Order.objects.get(ref=commit(session)["order_ref"])


def test_the_bar_bumps_the_lemonade_and_the_kitchen_still_shows_the_burger(kitchen_client):
    order = burger_lemonade_order(customer={"name": "Maria <Silva>", "pickup_time": "12:30"}, notes="allergic: nuts")
    for expected in ("queued", "cooking"):
        kitchen_client.post("/kitchen/bump/", {"order_ref": order.ref, "expected_status": expected, "station": "bar"}, HTTP_HX_REQUEST="true")
    bar = kitchen_client.get("/kitchen/?station=bar").content.decode()
    assert "Lemonade" in bar and "Burger" not in bar and 'class="btn bump"' not in bar  # done at the bar: no bump left
    kitchen = kitchen_client.get("/kitchen/?station=kitchen").content.decode()
    assert "Burger" in kitchen and "Lemonade" not in kitchen and "— Queued" in kitchen
    assert "Table 31: Cooking" in kitchen  # its bump, named for screen readers
    expo = kitchen_client.get("/kitchen/?station=expo").content.decode()
    assert "1/2 stations done" in expo and "Hand out" not in expo
    # Order-level information reaches the card, escaped; items are a list a screen reader reads out.
    assert escape("Maria <Silva>") in expo and "Maria <Silva>" not in expo and "pickup 12:30" in expo and "allergic: nuts" in expo
    assert '<ul class="card-items">' in expo and "no onions" in expo
    assert Order.objects.get(pk=order.pk).status == "new"  # the burger has not started: the order did not move


def test_a_void_shows_on_the_ticket_until_acknowledged_and_a_cancelled_order_stays_with_void(kitchen_client):
    order = burger_lemonade_order()
    burger = KitchenItem.objects.get(order=order, station="kitchen")
    Order.objects.get(pk=order.pk).emit_event("item_voided", actor="user:boss", payload={"line_id": burger.line_id, "qty": "1", "reason": "wrong table"})
    board = kitchen_client.get("/kitchen/?station=kitchen").content.decode()
    assert 'class="void-mark" role="alert">VOID' in board and "wrong table" in board and 'data-void-pending="1"' in board
    kitchen_client.post("/kitchen/void/acknowledge/", {"order_ref": order.ref, "station": "kitchen"}, HTTP_HX_REQUEST="true")
    assert KitchenItem.objects.get(pk=burger.pk).void_pending is False
    assert "VOID" not in kitchen_client.get("/kitchen/?station=kitchen").content.decode().split("All day")[0]
    # A cancelled order never silently leaves: its card stays with VOID until a cook acknowledges it.
    other = burger_lemonade_order(table="32")
    OrderService.transition(other.ref, "cancelled", reason="guest left")
    bar = kitchen_client.get("/kitchen/?station=bar").content.decode()
    assert "Table 32" in bar and 'class="void-mark"' in bar
    kitchen_client.post("/kitchen/void/acknowledge/", {"order_ref": other.ref, "station": "bar"}, HTTP_HX_REQUEST="true")
    assert "Table 32" not in kitchen_client.get("/kitchen/?station=bar").content.decode()
    assert "Table 32" in kitchen_client.get("/kitchen/?station=kitchen").content.decode()  # the kitchen has not seen it yet


def test_recall_lists_a_bump_and_undo_restores_it(kitchen_client):
    order = burger_lemonade_order()
    kitchen_client.post("/kitchen/bump/", {"order_ref": order.ref, "expected_status": "queued", "station": "bar"}, HTTP_HX_REQUEST="true")
    recall = kitchen_client.get("/kitchen/?station=bar&recall=1").content.decode()
    assert "Undo Table 31" in recall and "Queued → Cooking" in recall
    response = kitchen_client.post("/kitchen/undo/", {"order_ref": order.ref, "expected_status": "cooking", "station": "bar"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert KitchenItem.objects.get(order=order, station="bar").status == "queued"
    stale = kitchen_client.post("/kitchen/undo/", {"order_ref": order.ref, "expected_status": "cooking", "station": "bar", "label": "Table 31"}, HTTP_HX_REQUEST="true")
    assert "Table 31 was already moved on another screen" in stale.content.decode()


@pytest.mark.contrib("omniman.contrib.catalog")
def test_eighty_six_from_the_board_disables_the_pos_tile_and_refuses_the_sku(kitchen_client):
    from django.test import Client

    client = Client()
    kitchen_client.post("/kitchen/sold-out/", {"sku": "CROISSANT", "sold_out": "1", "station": "pastry"}, HTTP_HX_REQUEST="true")
    board = kitchen_client.get("/kitchen/?station=pastry").content.decode()
    assert "Back on: CROISSANT" in board
    from omniman.services import SessionService

    channel = make_channel()
    session = SessionService.open_session(channel.code)
    client.force_login(user_with("pos", "till"))
    poll = client.get(f"/pos/{channel.code}/sold-out/")
    assert poll.status_code == 200 and 'data-skus="CROISSANT"' in poll.content.decode()
    # Adding it by search or scan is refused with a clear message, the cart unchanged.
    from omniman.contrib.catalog.models import Product

    Product.objects.create(sku="CROISSANT", name="Croissant", price_q=700, station="pastry")
    added = client.post(f"/pos/{channel.code}/s/{session.session_key}/add/", {"q": "CROISSANT", "sku": "CROISSANT", "qty": "1", "rev": session.rev}, HTTP_HX_REQUEST="true")
    assert "CROISSANT is sold out." in added.content.decode()
    session.refresh_from_db()
    assert session.rev == 0 and session.items == []
    kitchen_client.post("/kitchen/sold-out/", {"sku": "CROISSANT", "sold_out": "0"}, HTTP_HX_REQUEST="true")
    assert 'data-skus=""' in client.get(f"/pos/{channel.code}/sold-out/").content.decode()


def test_channel_policy_a_web_order_reaches_the_kitchen_once_confirmed(kitchen_client):
    web = make_channel(config={"kitchen_flow": {"admit_statuses": ["confirmed", "processing", "ready"]}})
    order = burger_lemonade_order(web)
    assert "Table 31" not in kitchen_client.get("/kitchen/?station=bar").content.decode()
    refused = kitchen_client.post("/kitchen/bump/", {"order_ref": order.ref, "expected_status": "queued", "station": "bar", "label": "Table 31"}, HTTP_HX_REQUEST="true")
    assert "has not reached the kitchen" in refused.content.decode()
    assert KitchenItem.objects.get(order=order, station="bar").status == "queued"
    OrderService.transition(order.ref, "confirmed")
    assert "Table 31" in kitchen_client.get("/kitchen/?station=bar").content.decode()


def test_station_board_query_count_is_the_same_for_5_and_200_tickets(kitchen_client):
    channel = make_channel()
    counts = {}
    made = 0
    for target in (5, 200):
        while made < target:
            burger_lemonade_order(channel, table=str(made))
            made += 1
        for station in ("bar", "expo"):
            with CaptureQueriesContext(connection) as ctx:
                body = kitchen_client.get(f"/kitchen/?station={station}").content.decode()
            assert body.count('<article class="card') == target
            counts[(station, target)] = len(ctx.captured_queries)
    assert counts[("bar", 5)] == counts[("bar", 200)] and counts[("expo", 5)] == counts[("expo", 200)], counts
    assert max(counts.values()) <= 14, counts


def test_pickup_screen_needs_the_display_role_or_token_and_shows_numbers_only(client, settings):
    response = client.get("/pickup/")
    assert response.status_code == 302
    client.force_login(user_with("pos", "till"))
    assert client.get("/pickup/").status_code == 403
    client.force_login(user_with("display", "tv"))
    assert client.get("/pickup/").status_code == 200
    client.logout()
    settings.OMNIMAN = {**getattr(settings, "OMNIMAN", {}), "PICKUP_DISPLAY_TOKEN": "s3cret-token"}
    assert client.get("/pickup/?token=wrong").status_code == 403
    page = client.get("/pickup/?token=s3cret-token")
    assert page.status_code == 200 and "Preparing" in page.content.decode() and "Ready" in page.content.decode()


def test_pickup_numbers_move_from_preparing_to_ready(client, monkeypatch):
    from omniman import registry
    from omniman.web.pickup import pickup_numbers

    counter = make_channel()
    first = Order.objects.get(ref=commit(create_session_at(counter, lines=1))["order_ref"])
    second = Order.objects.get(ref=commit(create_session_at(counter, lines=1))["order_ref"])
    table = table_order(counter, "5")
    numbers = {first.ref: 41, second.ref: 42}
    monkeypatch.setattr(registry, "tickets_for", lambda refs: {ref: numbers[ref] for ref in refs if ref in numbers})
    assert (pickup_numbers().preparing, pickup_numbers().ready) == (["41", "42"], [])  # the table has no pickup number
    for expected in ("queued", "cooking"):
        KitchenService.bump(order_ref=first.ref, station="kitchen", expected_status=expected)
    assert (pickup_numbers().preparing, pickup_numbers().ready) == (["42"], ["41"])
    client.force_login(user_with("display", "tv"))
    page = client.get("/pickup/?partial=1").content.decode()
    assert 'data-ready="41"' in page and "<html" not in page and first.ref not in page and "Item" not in page
    assert table.ref not in page


def test_pickup_numbers_are_unique_per_screen_a_channel_filter_or_a_prefix_per_channel(client, monkeypatch, settings):
    """Two channels both issue #12: a shared screen prefixes them (C12, W12); a screen per channel shows 12."""
    from omniman import registry
    from omniman.web.pickup import pickup_numbers

    counter = make_channel("counter", name="Counter")
    web = make_channel("web", name="Web shop", config={"kitchen": {"pickup_prefix": "W"}})
    cafe = make_channel("cafe", name="Cafe")  # C, like the counter: both fall back to their codes
    at_counter = Order.objects.get(ref=commit(create_session_at(counter, lines=1))["order_ref"])
    online = Order.objects.get(ref=commit(create_session_at(web, lines=1))["order_ref"])
    numbers = {at_counter.ref: 12, online.ref: 12}
    monkeypatch.setattr(registry, "tickets_for", lambda refs: {ref: numbers[ref] for ref in refs if ref in numbers})
    shared = pickup_numbers()
    assert shared.preparing == ["COUNTER12", "W12"] and shared.prefixes == {"cafe": "CAFE", "counter": "COUNTER", "web": "W"}
    cafe.is_active = False
    cafe.save()
    assert pickup_numbers().preparing == ["C12", "W12"]
    assert pickup_numbers(["counter"]).preparing == ["12"] and pickup_numbers(["web"]).preparing == ["12"]
    assert pickup_numbers(["counter", "web"]).preparing == ["C12", "W12"]
    assert pickup_numbers(["nope"]).preparing == []
    for expected in ("queued", "cooking"):
        KitchenService.bump(order_ref=online.ref, station="kitchen", expected_status=expected)
    assert (pickup_numbers().preparing, pickup_numbers().ready) == (["C12"], ["W12"])

    settings.OMNIMAN = {**getattr(settings, "OMNIMAN", {}), "PICKUP_DISPLAY_TOKEN": "tv-token"}
    page = client.get("/pickup/?channel=web&token=tv-token").content.decode()
    assert 'data-ready="12"' in page and "W12" not in page
    assert "?channel=web&amp;token=tv-token&amp;partial=1" in page  # the poll keeps the screen's channel and token
    assert online.ref not in page and "Web shop" not in page  # numbers only
    both = client.get("/pickup/?token=tv-token&partial=1").content.decode()
    assert 'data-ready="W12"' in both and "<li>C12</li>" in both and "<html" not in both


def test_a_void_shows_on_the_card_leaves_the_all_day_count_and_moves_the_version(kitchen_client):
    from omniman.services import BillService

    channel = make_channel("void-board")
    order = table_order(channel, "9", status="confirmed", lines=2)
    first, second = order.items.order_by("id")
    before = board_version("")
    counts = dict(build_board().all_day)
    BillService.void_item(order.ref, first.line_id, reason="sent back", roles={"manager"})
    assert board_version("") != before  # the board's poll sees the change
    board = build_board()
    (card,) = [card for _status, _label, cards in board.columns for card in cards]
    voided = {item.line_id: (item.is_voided, item.void_pending) for item in card.items}
    assert voided == {first.line_id: (True, True), second.line_id: (False, False)}  # VOID until a cook acknowledges it
    assert first.name in counts and first.name not in dict(board.all_day)  # nothing left of it to cook
    assert dict(board.all_day)[second.name] == counts[second.name]
    body = kitchen_client.get("/kitchen/").content.decode()
    assert body.count("void-badge") == 1 and "VOID" in body


def test_the_rail_lists_the_newest_tickets_first_and_a_pending_void_leads_its_column(kitchen_client):
    from omniman.web.kitchen import RAIL_SIZE

    channel = make_channel("rail")
    orders = [table_order(channel, str(60 + n), status="confirmed", lines=1) for n in range(RAIL_SIZE + 2)]
    board = build_board("kitchen")
    assert [card.order for card in board.newest] == orders[::-1][:RAIL_SIZE]  # newest first, five of them
    queued = dict((status, cards) for status, _label, cards in board.columns)["queued"]
    assert [card.order for card in queued] == orders  # the column itself stays oldest first
    OrderService.transition(orders[4].ref, "cancelled", reason="walked out")
    queued = dict((status, cards) for status, _label, cards in build_board("kitchen").columns)["queued"]
    assert queued[0].order == orders[4] and queued[0].void_pending  # the VOID leads, the rest keep their order
    assert [card.order for card in queued[1:]] == orders[:4] + orders[5:]
    body = kitchen_client.get("/kitchen/?station=kitchen").content.decode()
    rail = body[body.index('<nav class="rail"'):body.index("</nav>", body.index('<nav class="rail"'))]
    assert rail.count('class="rail-ticket') == RAIL_SIZE and f'href="#card-{orders[-1].pk}-kitchen"' in rail
