"""The kitchen in a real browser: stations, expo, held course, VOID, recall/undo, 86 on the POS, the pickup screen."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from omniman.models import KitchenItem, Order, OrderEvent
from omniman.services import KitchenService, ModifyService, SessionService
from tests.e2e.conftest import settle
from tests.factories import commit, make_channel

BOARD = {"width": 1280, "height": 800}
TV = {"width": 1920, "height": 1080}
LIVE_MS = 3000  # every screen follows within 3 s


def kitchen_board(new_page, station="expo", username="kitchen", viewport=BOARD):
    page = new_page(username)
    page.set_viewport_size(viewport)
    page.goto(f"/kitchen/?station={station}")
    expect(page.locator("#board")).to_be_visible()
    return page


def place_counter_order(pos, sku="ESP") -> Order:
    pos.goto("/pos/counter/")
    with pos.expect_navigation():
        pos.get_by_role("button", name=re.compile(r"^New ")).click()
    pos.fill("#pos-search", sku)
    pos.keyboard.press("Enter")
    settle(pos)
    expect(pos.locator("#cart .line")).to_have_count(1)
    commit_button = pos.locator("#cart .btn-commit")
    expect(commit_button).to_be_enabled()
    key = pos.url.rstrip("/").split("/")[-1]
    with pos.expect_navigation():
        commit_button.click()
    return Order.objects.get(session_key=key)


def table_31() -> Order:
    """Table 31: a burger (kitchen), a lemonade (bar) and a brownie (pastry) held for later."""
    channel = make_channel("bistro", name="Bistro", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})
    session = SessionService.open_session(channel.code, handle_type="table", handle_ref="31")
    ops = [
        {"op": "add_line", "sku": "BURG", "qty": "1", "unit_price_q": 3200, "name": "Burger", "meta": {"station": "kitchen", "note": "no onions"}},
        {"op": "add_line", "sku": "LEMON", "qty": "1", "unit_price_q": 900, "name": "Lemonade", "meta": {"station": "bar"}},
        {"op": "add_line", "sku": "BROWNIE", "qty": "1", "unit_price_q": 1300, "name": "Brownie", "meta": {"station": "pastry", "hold": True}},
        {"op": "set_data", "path": "customer", "value": {"name": "Maria Silva"}},
        {"op": "set_data", "path": "notes", "value": "birthday: candle on the brownie"},
    ]
    session = ModifyService.modify_session(session.session_key, channel.code, ops)
    return Order.objects.get(ref=commit(session)["order_ref"])


def card(board, label="Table 31"):
    return board.locator("#board article.card", has=board.locator(".card-label", has_text=label))


def test_stations_expo_course_void_recall_and_undo(new_page, shot):
    order = table_31()
    bar = kitchen_board(new_page, "bar")
    kitchen = kitchen_board(new_page, "kitchen", "manager")
    expo = kitchen_board(new_page, "expo", "manager")
    pastry = kitchen_board(new_page, "pastry")
    expect(card(bar)).to_contain_text("Lemonade")
    expect(card(bar)).not_to_contain_text("Burger")
    expect(card(pastry)).to_contain_text("held")  # greyed until fired

    # The bar makes the lemonade: queued → cooking → ready. The kitchen still shows the burger, untouched.
    card(bar).get_by_role("button", name="Table 31: Cooking").click()
    settle(bar)
    card(bar).get_by_role("button", name="Table 31: Ready").click()
    settle(bar)
    expect(bar.locator(".column-ready")).to_contain_text("Lemonade")
    expect(kitchen.locator(".column-queued")).to_contain_text("Burger")
    card(kitchen).get_by_role("button", name="Table 31: Cooking").click()
    settle(kitchen)
    expect(kitchen.locator(".column-cooking")).to_contain_text("Burger")
    expect(card(kitchen)).to_contain_text("no onions")
    expect(card(expo)).to_contain_text("1/2 stations done", timeout=LIVE_MS)
    expect(card(expo)).to_contain_text("Maria Silva")
    expect(card(expo)).to_contain_text("birthday: candle on the brownie")
    expect(card(expo).get_by_role("button", name=re.compile("Hand out"))).to_have_count(0)
    shot(bar, "12-kitchen-bar-1280")
    shot(kitchen, "13-kitchen-station-1280")
    shot(expo, "14-kitchen-expo-1280")
    assert Order.objects.get(pk=order.pk).status == "processing"

    # The server fires the dessert course (KitchenService.fire: what the POS's "Fire" calls): it reaches the pastry.
    KitchenService.fire(order.ref, actor="user:pos")
    expect(card(pastry).get_by_role("button", name="Table 31: Cooking")).to_be_visible(timeout=LIVE_MS)

    # A manager voids the burger (the bill's void writes item_voided): the kitchen sees VOID until a cook acknowledges it.
    burger = KitchenItem.objects.get(order=order, station="kitchen")
    Order.objects.get(pk=order.pk).emit_event("item_voided", actor="user:manager", payload={"line_id": burger.line_id, "qty": "1", "reason": "guest changed mind"})
    expect(card(kitchen).locator(".void-mark")).to_have_text("VOID", timeout=LIVE_MS)
    expect(card(kitchen)).to_contain_text("guest changed mind")
    shot(kitchen, "15-kitchen-void-1280")
    card(kitchen).get_by_role("button", name=re.compile("Seen VOID")).click()
    settle(kitchen)
    expect(card(kitchen).locator(".void-mark")).to_have_count(0)
    assert KitchenItem.objects.get(pk=burger.pk).void_acknowledged_at is not None

    # Recall and undo: the bar takes its last bump back (ready → cooking), stale-safe.
    bar.goto("/kitchen/?station=bar&recall=1")
    bar.get_by_role("button", name="Undo Table 31").click()
    settle(bar)
    expect(bar.locator(".column-cooking")).to_contain_text("Lemonade")
    assert KitchenItem.objects.get(order=order, station="bar").status == "cooking"
    assert OrderEvent.objects.filter(order=order, type="kitchen.undone").count() == 1


def test_two_stations_bumping_one_card_move_it_once_with_the_notice_where_the_cook_looks(new_page, shot):
    order = table_31()
    first = kitchen_board(new_page, "bar")
    second = kitchen_board(new_page, "bar", "manager")
    expect(card(first)).to_be_visible()
    expect(card(second)).to_be_visible()
    second.route(re.compile(r"/kitchen/board/"), lambda route: route.abort())  # the second screen stops polling
    card(first).get_by_role("button", name="Table 31: Cooking").click()
    settle(first)
    second.unroute(re.compile(r"/kitchen/board/"))
    card(second).get_by_role("button", name="Table 31: Cooking").click()
    settle(second)
    notice = second.locator(".board-notice")
    expect(notice).to_contain_text("Table 31 was already moved on another screen")
    box = notice.bounding_box()
    assert box and box["y"] + box["height"] <= BOARD["height"]  # on screen, not scrolled away at the top
    shot(second, "16-kitchen-stale-bump-1280")
    assert OrderEvent.objects.filter(order=order, type="kitchen.bumped").count() == 1


def test_eighty_six_from_the_board_disables_the_pos_tile_within_3_seconds(new_page, shot):
    pos = new_page("pos")
    pos.set_viewport_size(BOARD)
    pos.goto("/pos/counter/")
    with pos.expect_navigation():
        pos.get_by_role("button", name=re.compile(r"^New ")).click()
    pos.get_by_role("link", name=re.compile("Pastr")).click()
    settle(pos)
    tile = pos.locator('.grid .product[data-sku="CRO"]')
    expect(tile).to_be_enabled()
    board = kitchen_board(new_page, "pastry")
    board.fill(".eighty-six input[name=sku]", "CRO")
    board.get_by_role("button", name="86 it").click()
    settle(board)
    expect(board.locator(".sold-out")).to_contain_text("CRO")
    expect(tile).to_be_disabled(timeout=LIVE_MS)
    expect(tile.locator(".sold-out-tag")).to_be_visible()
    shot(pos, "17-pos-croissant-86-1280")
    board.get_by_role("button", name="Back on: CRO").click()
    settle(board)
    expect(tile).to_be_enabled(timeout=LIVE_MS)


def test_the_pickup_screen_moves_a_number_from_preparing_to_ready(new_page, shot):
    pos = new_page("pos")
    order = place_counter_order(pos)
    tv = new_page("manager")
    tv.set_viewport_size(TV)
    tv.goto("/pickup/")
    from omniman import registry

    number = str(registry.tickets_for([order.ref])[order.ref])
    expect(tv.locator(".pickup-preparing")).to_contain_text(number)
    expect(tv.locator(".pickup-ready")).not_to_contain_text(number)
    for expected in ("queued", "cooking"):
        KitchenService.bump(order_ref=order.ref, station="bar", expected_status=expected, actor="user:kitchen")
    expect(tv.locator(".pickup-ready li", has_text=re.compile(rf"^{number}$"))).to_be_visible(timeout=LIVE_MS)
    expect(tv.locator(".pickup-preparing li", has_text=re.compile(rf"^{number}$"))).to_have_count(0)
    shot(tv, "18-pickup-1920")


def test_the_board_fits_1920_and_counts_cards_below_the_fold(new_page, shot):
    channel = make_channel("fold", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})
    for table in range(8):
        session = SessionService.open_session(channel.code, handle_type="table", handle_ref=str(40 + table))
        session = ModifyService.modify_session(
            session.session_key, channel.code,
            [{"op": "add_line", "sku": "BURG", "qty": "1", "unit_price_q": 3200, "name": "Burger", "meta": {"station": "kitchen"}}],
        )
        commit(session)
    small = kitchen_board(new_page, "kitchen")
    expect(small.locator(".column-queued .off-screen")).to_be_visible()
    expect(small.locator(".column-queued .off-screen")).to_contain_text("more")
    shot(small, "19-kitchen-busy-1280")
    assert small.evaluate("document.scrollingElement.scrollHeight") <= BOARD["height"]  # the page itself does not scroll
    big = kitchen_board(new_page, "expo", viewport=TV)
    shot(big, "20-kitchen-expo-1920")
    expect(big.locator("#heartbeat")).to_contain_text("updated")
