"""The kitchen in a real browser: stations, expo, held course, VOID, recall/undo, 86 on the POS, the pickup screen."""

from __future__ import annotations

import re
import time

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
    from tests.e2e.test_pos_e2e import ready_basket

    key = ready_basket(pos)
    with pos.expect_navigation():
        pos.locator("#cart .btn-commit").click()
    return Order.objects.get(session_key=key)


def table_31() -> Order:
    """Table 31 built by services: a burger (kitchen), a lemonade (bar) and a brownie (pastry) held for later."""
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


def send_table_31_from_the_pos(pos) -> Order:
    """A manager at the POS: table 31, a medium burger, a lemonade, a brownie held for dessert, the customer and a note; Send."""
    from tests.e2e.test_pos_e2e import line, open_table
    from tests.e2e.test_settle_e2e import add, add_burger, send_round

    key = open_table(pos, "31")
    add_burger(pos, "Medium")
    add(pos, "LEMON")
    add(pos, "BROWNIE")
    line(pos, "Brownie").get_by_role("button", name="Hold Brownie").click()
    settle(pos)
    expect(line(pos, "Brownie").locator(".line-held")).to_be_visible()
    pos.locator("details.customer-form summary").click()
    pos.locator("details.customer-form input[name=name]").fill("Maria Silva")
    pos.locator("details.customer-form textarea[name=notes]").fill("birthday: candle on the brownie")
    pos.locator("details.customer-form").get_by_role("button", name="Save").click()
    settle(pos)
    send_round(pos)
    return Order.objects.get(session_key=key)


def card(board, label="Table 31"):
    return board.locator("#board article.card", has=board.locator(".card-label", has_text=label))


def board_version_of(board) -> str:
    return board.locator("#board").get_attribute("hx-get").rsplit("&v=", 1)[1]


def test_the_issue_scenario_stations_expo_fire_and_void_from_the_pos_recall_and_undo(new_page, shot):
    """Issue #16's scenario, every step through the screens a restaurant uses (the POS, four boards)."""
    pos = new_page("manager")
    pos.set_viewport_size(BOARD)
    order = send_table_31_from_the_pos(pos)
    assert {i.item.sku: (i.station, i.held) for i in KitchenItem.objects.filter(order=order).select_related("item")} == {
        "BURG": ("kitchen", False), "LEMON": ("bar", False), "BROWNIE": ("pastry", True)
    }
    bar = kitchen_board(new_page, "bar")
    kitchen = kitchen_board(new_page, "kitchen")
    expo = kitchen_board(new_page, "expo", "manager")
    pastry = kitchen_board(new_page, "pastry")
    expect(card(bar)).to_contain_text("Lemonade")
    expect(card(bar)).not_to_contain_text("Burger")
    expect(card(kitchen)).to_contain_text("Medium")  # the burger's modifier is on the ticket
    expect(card(pastry).locator("li.item.held")).to_contain_text("Brownie")  # greyed until fired
    expect(card(pastry).get_by_role("button", name=re.compile("Table 31"))).to_have_count(0)

    # The kitchen starts the burger; the bar makes the lemonade (queued → cooking → ready).
    card(kitchen).get_by_role("button", name="Table 31: Cooking").click()
    settle(kitchen)
    expect(kitchen.locator(".column-cooking")).to_contain_text("Burger")
    seen = board_version_of(kitchen)
    card(bar).get_by_role("button", name="Table 31: Cooking").click()
    settle(bar)
    card(bar).get_by_role("button", name="Table 31: Ready").click()
    settle(bar)
    expect(bar.locator(".column-ready")).to_contain_text("Lemonade")
    # The kitchen screen took the bar's moves in (its version moved on) and still shows the burger cooking.
    kitchen.wait_for_function("seen => !document.querySelector('#board').getAttribute('hx-get').endsWith('&v=' + seen)", arg=seen, timeout=LIVE_MS)
    expect(kitchen.locator(".column-cooking")).to_contain_text("Burger")
    expect(card(kitchen)).not_to_contain_text("Lemonade")
    expect(card(expo)).to_contain_text("1/2 stations done", timeout=LIVE_MS)
    expect(card(expo)).to_contain_text("Maria Silva")
    expect(card(expo)).to_contain_text("birthday: candle on the brownie")
    expect(card(expo).get_by_role("button", name=re.compile("Hand out"))).to_have_count(0)
    shot(bar, "12-kitchen-bar-1280")
    shot(kitchen, "13-kitchen-station-1280")
    shot(expo, "14-kitchen-expo-1280")
    assert Order.objects.get(pk=order.pk).status == "processing"

    # The server fires the dessert course from the POS: it reaches the pastry station within 3 s.
    pos.get_by_role("button", name="Fire the held item").click()
    settle(pos)
    expect(pos.locator("#cart .banner")).to_contain_text("Course fired")
    expect(card(pastry).get_by_role("button", name="Table 31: Cooking")).to_be_visible(timeout=LIVE_MS)
    expect(card(pastry).locator("li.item.held")).to_have_count(0)

    # The manager voids the burger on the POS bill: the kitchen sees VOID until a cook acknowledges it.
    with pos.expect_navigation():
        pos.locator("#cart .btn-bill").click()
    burger_line = pos.locator(".bill-line", has_text="Burger")
    burger_line.locator("summary").click()
    burger_line.locator('input[name="reason"]').fill("guest changed mind")
    burger_line.get_by_role("button", name="Void item").click()
    settle(pos)
    expect(pos.locator(".bill-line.is-void", has_text="Burger")).to_be_visible()
    expect(card(kitchen).locator(".void-mark")).to_have_text("VOID", timeout=LIVE_MS)
    expect(card(kitchen)).to_contain_text("guest changed mind")
    shot(kitchen, "15-kitchen-void-1280")
    card(kitchen).get_by_role("button", name=re.compile("Seen VOID")).click()
    settle(kitchen)
    expect(card(kitchen).locator(".void-mark")).to_have_count(0)
    burger = KitchenItem.objects.get(order=order, station="kitchen")
    assert burger.is_voided and burger.void_acknowledged_at is not None

    # Recall and undo: the bar takes its last bump back (ready → cooking), stale-safe.
    bar.goto("/kitchen/?station=bar&recall=1")
    bar.get_by_role("button", name="Undo Table 31").click()
    settle(bar)
    expect(bar.locator(".column-cooking")).to_contain_text("Lemonade")
    assert KitchenItem.objects.get(order=order, station="bar").status == "cooking"
    assert OrderEvent.objects.filter(order=order, type="kitchen.undone").count() == 1
    big = kitchen_board(new_page, "expo", "manager", viewport=TV)
    expect(card(big)).to_contain_text("Brownie")
    shot(big, "14b-kitchen-expo-1920")


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
        pos.get_by_role("link", name=re.compile(r"^New ")).click()
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
    # A stock-tracked product with nothing on hand is sold out the same way (the demo's kombucha: 0 on hand).
    pos.click('a.cat:has-text("Cold drinks")')
    settle(pos)
    expect(pos.locator('.grid .product[data-sku="KOMBU"]')).to_be_disabled()


def test_the_pickup_screen_moves_a_number_from_preparing_to_ready_with_a_chime(new_page, shot):
    pos = new_page("pos")
    order = place_counter_order(pos)
    from omniman import registry

    number = str(registry.tickets_for([order.ref])[order.ref])
    tv = new_page("manager")
    tv.set_viewport_size(TV)
    tv.goto("/pickup/?channel=counter")  # this TV calls the counter's numbers: plain, as on the receipt
    expect(tv.locator(".pickup-preparing")).to_contain_text(number)
    expect(tv.locator(".pickup-ready")).not_to_contain_text(number)
    assert tv.evaluate("document.body.dataset.chimes || '0'") == "0"
    for expected in ("queued", "cooking"):
        KitchenService.bump(order_ref=order.ref, station="bar", expected_status=expected, actor="user:kitchen")
    ready = tv.locator(".pickup-ready li", has_text=re.compile(rf"^{number}$"))
    expect(ready).to_be_visible(timeout=LIVE_MS)
    expect(tv.locator(".pickup-preparing li", has_text=re.compile(rf"^{number}$"))).to_have_count(0)
    expect(tv.locator("body")).to_have_attribute("data-chimes", "1")  # the chime played once, for the number turning ready
    # Large across a room: the ready number's glyphs are >= 100 px tall on a 1920×1080 TV, and nothing scrolls.
    size = float(ready.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))
    assert size >= 100, size
    assert tv.evaluate("document.scrollingElement.scrollHeight") <= TV["height"]
    shot(tv, "18-pickup-1920")
    tv.set_viewport_size(BOARD)
    size = float(ready.evaluate("el => parseFloat(getComputedStyle(el).fontSize)"))
    assert size >= 80, size
    shot(tv, "18b-pickup-1280")
    assert order.ref not in tv.content()  # numbers only


def fold_tickets(count: int, first_table: int = 40) -> list[Order]:
    from omniman.models import Channel

    channel = Channel.objects.filter(code="fold").first() or make_channel(
        "fold", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}}
    )
    orders = []
    for table in range(first_table, first_table + count):
        session = SessionService.open_session(channel.code, handle_type="table", handle_ref=str(table))
        session = ModifyService.modify_session(
            session.session_key, channel.code,
            [{"op": "add_line", "sku": "BURG", "qty": "1", "unit_price_q": 3200, "name": "Burger", "meta": {"station": "kitchen"}}],
        )
        orders.append(Order.objects.get(ref=commit(session)["order_ref"]))
    return orders


def cards_beyond_the_fold(board, column_css: str) -> tuple[int, int]:
    """(cards above, cards below) the visible part of a column's list, measured from the cards' boxes."""
    column = board.locator(column_css)
    area = column.locator(".column-cards").bounding_box()
    above = below = 0
    for box in (c.bounding_box() for c in column.locator("article.card").all()):
        if box["y"] >= area["y"] + area["height"] - 8:
            below += 1
        elif box["y"] + box["height"] <= area["y"] + 8:
            above += 1
    return above, below


def in_viewport(box, viewport) -> bool:
    return box is not None and box["y"] >= 0 and box["x"] >= 0 and box["y"] + box["height"] <= viewport["height"] and box["x"] + box["width"] <= viewport["width"]


def test_the_board_fits_1280x800_the_newest_ticket_in_sight_and_the_tickets_off_screen_counted(new_page, shot):
    fold_tickets(14)
    small = kitchen_board(new_page, "kitchen")
    assert small.evaluate("document.scrollingElement.scrollHeight") <= BOARD["height"]  # the page itself does not scroll
    # The newest ticket is on the "Just in" rail, in sight, while its card waits below the queue's fold.
    newest = small.locator(".rail .rail-ticket").first
    expect(newest).to_contain_text("Table 53")
    assert in_viewport(newest.bounding_box(), BOARD), newest.bounding_box()
    assert not in_viewport(card(small, "Table 53").bounding_box(), BOARD)
    above, below = cards_beyond_the_fold(small, ".column-queued")
    assert above == 0 and below >= 5, (above, below)
    expect(small.locator(".column-queued .off-screen-below")).to_have_text(f"{below} more ↓")
    expect(small.locator(".column-queued .off-screen-above")).to_be_hidden()
    shot(small, "19-kitchen-busy-1280")
    # A tap on the rail brings the card into view (its column scrolls, not the page); the counts follow.
    newest.click()
    expect(card(small, "Table 53")).to_be_in_viewport()
    assert in_viewport(card(small, "Table 53").bounding_box(), BOARD)
    above, below = cards_beyond_the_fold(small, ".column-queued")
    assert above >= 5 and below == 0, (above, below)
    expect(small.locator(".column-queued .off-screen-above")).to_have_text(f"{above} more ↑")
    expect(small.locator(".column-queued .off-screen-below")).to_be_hidden()
    assert small.evaluate("document.scrollingElement.scrollTop") == 0
    shot(small, "19b-kitchen-busy-rail-1280")
    # A new ticket arrives: it leads the rail within 3 s.
    fold_tickets(1, first_table=60)
    expect(small.locator(".rail .rail-ticket").first).to_contain_text("Table 60", timeout=LIVE_MS)
    assert in_viewport(small.locator(".rail .rail-ticket").first.bounding_box(), BOARD)
    big = kitchen_board(new_page, "expo", viewport=TV)
    expect(big.locator(".rail .rail-ticket").first).to_contain_text("Table 60")
    assert big.evaluate("document.scrollingElement.scrollHeight") <= TV["height"]
    shot(big, "20-kitchen-expo-1920")
    expect(big.locator("#heartbeat")).to_contain_text("updated")


def test_the_heartbeat_counts_every_successful_poll_and_warns_only_when_polls_fail(new_page, shot):
    """Issue #16 bug 2: with another screen bumping all the time the board must not cry "not updating"."""
    orders = fold_tickets(8)
    board = kitchen_board(new_page, "kitchen")
    stale = board.locator("#stale-banner")
    versions, worst = set(), 0
    # Another client bumps a ticket every ~1.3 s for 14 s: every poll answers a fresh board (200), none a 204.
    steps = [(order, expected) for order in orders for expected in ("queued", "cooking")]
    started = time.monotonic()
    for order, expected in steps:
        if time.monotonic() - started > 14:
            break
        KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status=expected, actor="user:other")
        board.wait_for_timeout(1300)
        versions.add(board_version_of(board))
        assert stale.is_hidden(), "the stale banner showed while updates were arriving"
        said = re.search(r"(\d+)", board.locator("#heartbeat").inner_text())  # "updated 2 s ago" ("just now": 0)
        worst = max(worst, int(said.group(1)) if said else 0)
    assert time.monotonic() - started > 12  # longer than the 10 s the banner waits for
    assert len(versions) >= 5, versions  # the board really was re-rendered again and again
    assert worst <= 4, worst
    # The polls fail (the network is gone): after 10 s the heartbeat turns red and the banner says so.
    board.route(re.compile(r"/kitchen/board/"), lambda route: route.abort())
    expect(stale).to_be_visible(timeout=15_000)
    expect(board.locator("#heartbeat.stale")).to_be_visible()
    shot(board, "21-kitchen-not-updating-1280")
    board.unroute(re.compile(r"/kitchen/board/"))
    expect(stale).to_be_hidden(timeout=LIVE_MS + 2000)
