"""The kitchen board in a real browser: a POS commit appears live, bumps, two boards on one card."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from omniman.models import Order, OrderEvent
from tests.e2e.conftest import settle

BOARD = {"width": 1280, "height": 800}


def kitchen_board(new_page, username="kitchen"):
    page = new_page(username)
    page.set_viewport_size(BOARD)
    page.goto("/kitchen/")
    expect(page.locator("#board")).to_be_visible()
    return page


def place_counter_order(pos) -> Order:
    pos.goto("/pos/counter/")
    with pos.expect_navigation():
        pos.get_by_role("link", name=re.compile(r"^New ")).click()
    key = pos.locator('#add-form input[name="session_key"]').get_attribute("value")  # opened by its first item
    pos.fill("#pos-search", "ESP")
    pos.keyboard.press("Enter")
    settle(pos)
    expect(pos.locator("#cart .line")).to_have_count(1)
    commit = pos.locator("#cart .btn-commit")
    expect(commit).to_be_enabled()
    with pos.expect_navigation():
        commit.click()
    return Order.objects.get(session_key=key)


def card(board, order: Order):
    return board.locator("#board .card", has=board.locator(".card-meta", has_text=order.ref[-6:]))


def test_a_pos_commit_appears_on_the_board_within_3_seconds_and_is_bumped_to_ready(new_page, shot):
    board = kitchen_board(new_page)
    pos = new_page("pos")
    order = place_counter_order(pos)
    assert order.status == "confirmed"
    # No reload: the board's poll brings the new card.
    expect(card(board, order)).to_be_visible(timeout=3000)
    expect(board.locator(".column-confirmed")).to_contain_text(order.ref[-6:])
    shot(board, "10-kitchen-board")
    card(board, order).click()
    settle(board)
    expect(board.locator(".column-processing")).to_contain_text(order.ref[-6:])
    card(board, order).click()
    settle(board)
    expect(board.locator(".column-ready")).to_contain_text(order.ref[-6:])
    order.refresh_from_db()
    assert order.status == "ready" and order.ready_at is not None
    moves = list(OrderEvent.objects.filter(order=order, type="status_changed").values_list("payload__to", "actor"))
    assert moves[-2:] == [("processing", "user:kitchen"), ("ready", "user:kitchen")]
    expect(board.locator("#heartbeat")).to_contain_text("updated")


def test_two_boards_bumping_one_card_make_one_transition(new_page, shot):
    pos = new_page("pos")
    order = place_counter_order(pos)
    first = kitchen_board(new_page)
    second = kitchen_board(new_page, "manager")
    expect(card(first, order)).to_be_visible()
    expect(card(second, order)).to_be_visible()
    # The second screen stops polling, so it still shows the card as confirmed.
    second.route(re.compile(r"/kitchen/board/"), lambda route: route.abort())
    card(first, order).click()
    settle(first)
    expect(first.locator(".column-processing")).to_contain_text(order.ref[-6:])
    second.unroute(re.compile(r"/kitchen/board/"))
    card(second, order).click()
    settle(second)
    # No error page: the fresh board, with a notice, and the card where the first screen put it.
    expect(second.locator("#board .banner")).to_contain_text("already moved on another screen")
    expect(second.locator(".column-processing")).to_contain_text(order.ref[-6:])
    shot(second, "11-kitchen-stale-bump")
    order.refresh_from_db()
    assert order.status == "processing"
    assert OrderEvent.objects.filter(order=order, type="status_changed", payload__to="processing").count() == 1


def test_keys_bump_the_nth_card(new_page):
    pos = new_page("pos")
    order = place_counter_order(pos)
    board = kitchen_board(new_page)
    cards = board.locator("#board .card:not([disabled])")
    expect(card(board, order)).to_be_visible()
    index = next(i for i in range(cards.count()) if order.ref[-6:] in cards.nth(i).inner_text())
    assert index <= 8, "the demo board should have fewer than ten cards"  # only 1–9 are keys
    board.locator("body").press(str(index + 1))
    settle(board)
    order.refresh_from_db()
    assert order.status == "processing"
