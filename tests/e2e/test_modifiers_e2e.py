"""Modifiers in the browser: the burger asks for its doneness in one step, then the line shows its choices."""

from __future__ import annotations

import re

import pytest

from omniman.models import Session
from tests.e2e.conftest import settle
from tests.e2e.test_pos_e2e import line, lines, new_basket, tap_product

expect = pytest.importorskip("playwright.sync_api").expect


def test_tap_the_burger_choose_doneness_and_it_is_added_with_its_modifiers(page, shot):
    key = new_basket(page, "counter")
    page.click('a.cat:has-text("Mains")')
    settle(page)
    page.click('button.product[value="BURG"]')
    picker = page.locator("#picker [role=dialog]")
    expect(picker).to_be_visible()
    expect(picker.locator("h2")).to_contain_text("Burger")
    expect(lines(page)).to_have_count(0)  # nothing added yet
    expect(page.locator("#picker input[value='doneness:rare']")).to_be_focused()  # the first choice
    shot(page, "modifiers-01-doneness-asked")

    page.get_by_label("Medium").check()
    page.get_by_label("Bacon").check()
    page.get_by_label("No onions").check()
    page.get_by_role("button", name="Add Burger").click()
    settle(page)
    expect(picker).to_have_count(0)  # the step closed
    burger = line(page, "Burger")
    expect(burger).to_have_count(1)
    expect(burger.locator(".modifiers")).to_have_text("Medium · Bacon (+R$6.00) · No onions")
    expect(burger.locator(".line-total")).to_have_text("R$38.00")
    shot(page, "modifiers-02-burger-added")

    # The same choices again: the line counts two; Cancel leaves the cart alone.
    page.click('button.product[value="BURG"]')
    expect(picker).to_be_visible()
    page.get_by_role("link", name="Cancel").click()
    expect(picker).to_have_count(0)
    expect(lines(page)).to_have_count(1)

    # A coffee with optional milk: one tap adds it plain, "+ options" asks.
    page.click('a.cat:has-text("Coffee")')
    settle(page)
    tap_product(page, "CAP")
    page.get_by_role("link", name="Cappuccino with options").click()
    expect(picker).to_be_visible()
    page.get_by_label("Oat milk").check()
    page.get_by_role("button", name="Add Cappuccino").click()
    settle(page)
    expect(lines(page)).to_have_count(3)
    expect(line(page, "Cappuccino").nth(1).locator(".modifiers")).to_have_text("Oat milk (+R$2.00)")
    shot(page, "modifiers-03-cart")
    session = Session.objects.get(session_key=key)
    assert [(item["sku"], item["unit_price_q"]) for item in session.lines] == [("BURG", 3800), ("CAP", 950), ("CAP", 1150)]


def test_hold_the_dessert_send_the_round_then_fire_it(page, new_page, shot):
    from omniman.models import KitchenItem, Order

    from tests.e2e.test_pos_e2e import commit_button, open_table

    key = open_table(page, "12")
    page.click('a.cat:has-text("Cold drinks")')
    settle(page)
    tap_product(page, "LEMON")
    page.click('a.cat:has-text("Desserts")')
    settle(page)
    tap_product(page, "GELATO")
    line(page, "Gelato cup").get_by_role("button", name="Hold Gelato cup").click()
    settle(page)
    expect(line(page, "Gelato cup").locator(".line-held")).to_be_visible()
    expect(line(page, "Gelato cup").get_by_role("button", name="Release Gelato cup")).to_have_attribute("aria-pressed", "true")
    shot(page, "modifiers-04-dessert-held")
    expect(commit_button(page)).to_be_enabled()
    with page.expect_navigation():
        commit_button(page).click()
    order = Order.objects.get(session_key=key)
    held = {item.item.sku: item.held for item in KitchenItem.objects.filter(order=order).select_related("item")}
    assert held == {"LEMON": False, "GELATO": True}

    kitchen = new_page("kitchen")
    kitchen.goto("/kitchen/?station=pastry")
    gelato = kitchen.locator("li.item", has_text="Gelato cup")
    expect(gelato).to_have_class(re.compile(r"\bheld\b"))  # greyed: it waits for the fire
    shot(kitchen, "modifiers-05b-kitchen-held")

    fire = page.get_by_role("button", name="Fire the held item")
    expect(fire).to_be_visible()
    expect(page.locator(".rounds")).to_contain_text("course 2")
    shot(page, "modifiers-05-round-sent-held")
    fire.click()
    settle(page)
    expect(page.locator("#cart .banner")).to_contain_text("Course fired")
    expect(fire).to_have_count(0)
    assert not KitchenItem.objects.get(order=order, item__sku="GELATO").held
    shot(page, "modifiers-06-fired")
    kitchen.reload()
    expect(kitchen.locator("li.item", has_text="Gelato cup")).not_to_have_class(re.compile(r"\bheld\b"))
