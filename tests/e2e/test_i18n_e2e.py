"""A Brazilian browser (locale pt-BR, 1024×768): the tab, the kitchen board and the order page in Portuguese.

Money reads ``R$ 1.234,56`` and times are 24-hour. The screenshots
(``i18n-*.png``) are the ones docs/guides/languages.rst describes.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from omniman.contrib.catalog.models import Category, Product
from omniman.contrib.demo.menu import PT_BR_NAMES
from omniman.models import Channel, Order
from tests.e2e.conftest import TIMEOUT_MS, VIEWPORT, login, settle

NBSP = "\xa0"
ENGLISH = re.compile(r"\b(Add|Remove|Send round|Place|Park|Close table|Items|Service|Search|Log out|Confirmed|Processing|Ready|All day|Just in)\b")


def brazilian_page(browser, demo, username: str, errors: list):
    context = browser.new_context(viewport=VIEWPORT, base_url=demo.url, locale="pt-BR", timezone_id="America/Sao_Paulo")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{username}: {exc}"))
    login(page, demo.url, username)
    return context, page


def the_demo_in_portuguese():
    """The names seed_demo --language pt-br gives (the demo here was seeded in English)."""
    for sku, name in PT_BR_NAMES.items():
        Product.objects.filter(sku=sku).update(name=name)
        Category.objects.filter(code=sku).update(name=name)
        Channel.objects.filter(code=sku).update(name=name)
    Product.objects.filter(sku="ESP").update(price_q=123456)  # a price with a thousands separator


def text(locator) -> str:
    return locator.inner_text().replace(NBSP, " ").replace("\u202f", " ")


def test_a_brazilian_browser_gets_portuguese_screens_money_and_24_hour_times(browser, demo, shot):
    the_demo_in_portuguese()
    errors: list[str] = []
    contexts = []
    try:
        context, pos = brazilian_page(browser, demo, "pos", errors)
        contexts.append(context)
        expect(pos.locator("h1")).to_have_text("Escolha um canal")
        pos.goto("/pos/tables/")
        expect(pos.get_by_role("link", name="Abrir comanda")).to_be_visible()
        shot(pos, "i18n-tables")
        pos.fill("#open-table", "7")
        with pos.expect_navigation():
            pos.get_by_role("button", name="Abrir mesa").click()
        expect(pos.locator("#cart-head h2")).to_contain_text("Mesa 7")
        pos.fill("#pos-search", "ESP")
        pos.keyboard.press("Enter")
        settle(pos)
        expect(pos.locator("#cart .line")).to_have_count(1)
        expect(pos.locator("#cart .line-name")).to_have_text("Café expresso")
        assert text(pos.locator("#cart .line-total")) == "R$ 1.234,56"
        commit = pos.locator("#cart .btn-commit")
        expect(commit).to_be_enabled()
        assert text(commit).startswith("Enviar pedido · R$ 1.358,02")  # with the table's 10 % service
        cart = text(pos.locator("#cart"))
        assert "Serviço" in cart and "Fechar mesa" in cart and "Deixar em espera" in cart
        assert not ENGLISH.search(text(pos.locator("body"))), text(pos.locator("body"))
        shot(pos, "i18n-tab")
        with pos.expect_navigation():
            commit.click()
        order = Order.objects.filter(handle_ref="7").latest("id")

        context, board = brazilian_page(browser, demo, "kitchen", errors)
        contexts.append(context)
        board.set_viewport_size(VIEWPORT)
        board.goto("/kitchen/")
        expect(board.locator(".column-confirmed h2")).to_contain_text("Confirmado")
        expect(board.locator(".column-processing h2")).to_contain_text("Em preparo")
        expect(board.locator(".column-ready h2")).to_contain_text("Pronto")
        card = board.locator("#board .card", has=board.locator(".card-meta", has_text=order.ref[-6:]))
        expect(card).to_contain_text("Mesa 7")
        expect(board.locator(".all-day h2")).to_have_text(["Acabou de chegar", "Total em preparo", "Esgotados (86)"])
        assert not ENGLISH.search(text(board.locator("#board"))), text(board.locator("#board"))
        shot(board, "i18n-kitchen")
        board.goto("/kitchen/?station=bar")  # the espresso's station bumps its item: "Mesa 7: Preparando →"
        card = board.locator("#board .card", has=board.locator(".card-meta", has_text=order.ref[-6:]))
        expect(card.locator("button.bump")).to_contain_text("Mesa 7: Preparando")
        assert not ENGLISH.search(text(board.locator("#board"))), text(board.locator("#board"))

        context, admin = brazilian_page(browser, demo, "manager", errors)
        contexts.append(context)
        admin.goto(f"/admin/omniman/order/{order.pk}/change/")
        review = admin.locator("#order-review")
        expect(review).to_contain_text("Agora")
        expect(review.get_by_role("button", name="Em preparo")).to_be_visible()
        shot(admin, "i18n-admin-order")
        page_text = text(admin.locator("body"))
        assert "R$ 1.234,56" in page_text and "Mesa 7" in page_text and "Preço unitário" in page_text
        times = re.findall(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s?[AP]M)?", page_text)
        assert times and all(re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?", t) for t in times), times
        shot(admin, "i18n-admin-order")
    finally:
        for context in contexts:
            context.close()
    assert not errors, f"JavaScript errors: {errors}"
