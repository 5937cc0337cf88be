"""Settling in a real browser (issue #15), tablet 1024×768: a table of 4 with two rounds → bill → split (two
guests by items, the rest equally by two) → cash with change, card with auth code, Pix with the QR and a 10 %
tip → table closed → receipt; the kitchen board still shows the un-bumped rounds. And a counter sale paid exact
cash in at most 3 taps after the last item.

Screenshots go to ``$OMNIMAN_SCREENSHOTS`` (``shot``); the scenario also runs in Portuguese (pt-BR strings).
"""

from __future__ import annotations

import re

import pytest

from omniman.models import Bill, Order, Payment, Session
from tests.e2e.conftest import settle
from tests.e2e.test_pos_e2e import new_basket

expect = pytest.importorskip("playwright.sync_api").expect

TAP = 44


def session_key(page) -> str:
    match = re.search(r"/s/([^/]+)/", page.url)
    assert match, f"not on a session screen: {page.url}"
    return match.group(1)


def tap_product(page, sku: str) -> None:
    page.click(f'button.product[value="{sku}"]')
    settle(page)


def add(page, sku: str) -> None:
    """Type (or scan) a SKU into the search box and press Enter: the first match is added."""
    page.fill("#pos-search", sku)
    page.keyboard.press("Enter")
    settle(page)


def add_burger(page, doneness: str) -> None:
    """The burger asks for its doneness (a forced choice) in one step: choose it and add."""
    add(page, "BURG")
    picker = page.locator("#picker [role=dialog]")
    expect(picker).to_be_visible()
    page.get_by_label(doneness).check()
    page.get_by_role("button", name="Add Burger").click()
    settle(page)
    expect(picker).to_have_count(0)


def send_round(page) -> None:
    button = page.locator("#cart .btn-commit")
    expect(button).to_be_enabled()
    with page.expect_navigation():
        button.click()
    expect(page.locator("#cart")).to_be_visible()


def money(amount_q: int) -> str:
    """R$ text as the demo shows it in English (``R$12.50``)."""
    return f"R${amount_q // 100:,}.{amount_q % 100:02d}"


def small_targets(page, selector: str) -> list[str]:
    small = []
    for element in page.locator(selector).all():
        box = element.bounding_box()
        if box is None or not element.is_visible():
            continue
        if box["height"] < TAP or box["width"] < TAP:
            label = (element.get_attribute("aria-label") or element.inner_text() or selector).strip().split("\n")[0]
            small.append(f"{label} {box['width']:.0f}×{box['height']:.0f}")
    return small


def pay_part(page, index: int) -> None:
    """Choose part ``index`` (0-based) in the list of parts."""
    page.locator(".parts .part").nth(index).locator("a").click()
    settle(page)


def test_table_of_4_two_rounds_split_cash_card_pix_tip_close_receipt(new_page, shot):
    page = new_page("pos")
    # Table 4: round 1 (two burgers, fries, two sodas), round 2 (two espressos, a croissant).
    page.goto("/pos/tables/")
    page.fill("#open-table", "4")
    with page.expect_navigation():
        page.get_by_role("button", name="Open table").click()
    key1 = session_key(page)
    add_burger(page, "Medium")  # guest 1's
    add_burger(page, "Well done")  # guest 2's: other modifiers, its own line
    for sku in ("FRIES", "SODA", "LEMON"):
        add(page, sku)
    send_round(page)
    for sku in ("ESP", "ESP", "CRO"):
        add(page, sku)
    send_round(page)
    first, second = Order.objects.filter(handle_ref="4", channel__code="tables").order_by("id")
    assert first.session_key == key1
    shot(page, "settle-01-tab-two-rounds")

    # The bill: every round, what is due.
    with page.expect_navigation():
        page.locator("#cart .btn-bill").click()
    bill = Bill.objects.get(channel__code="tables", handle_ref="4", status="open")
    expect(page.locator("#due")).to_have_text(money(bill.total_q))
    expect(page.locator(".bill-round")).to_have_count(2)
    shot(page, "settle-02-bill")

    # Split: guest 1 had a burger and a soda, guest 2 a burger and a lemonade; the rest (fries, coffees, croissant) equally by two.
    page.locator("summary", has_text="Split the bill").click()
    page.get_by_role("link", name="By items…").click()
    settle(page)
    burgers = page.get_by_label("Guest for Burger")
    burgers.nth(0).select_option("1")
    page.get_by_label("Guest for Soda can").select_option("1")
    burgers.nth(1).select_option("2")
    page.get_by_label("Guest for Lemonade").select_option("2")
    page.fill('input[name="rest_parts"]', "2")
    shot(page, "settle-03-split-by-items")
    page.get_by_role("button", name="Split by items").click()
    settle(page)
    expect(page.locator(".parts .part")).to_have_count(4)
    bill.refresh_from_db()
    parts = bill.splits
    assert sum(p["amount_q"] for p in parts) == bill.total_q
    shot(page, "settle-04-split-parts")

    # Guest 1: cash, hands over R$ 100: the change shows large as it is typed, and once taken.
    pay_part(page, 0)
    page.locator(".methods a", has_text="Cash").click()
    settle(page)
    page.fill("#tendered", "100")
    change = 10000 - parts[0]["amount_q"]
    expect(page.locator("#change-preview")).to_contain_text(f"{change // 100}.{change % 100:02d}")
    page.get_by_role("button", name=re.compile(r"^Cash ")).click()
    settle(page)
    expect(page.locator("#change-due")).to_have_text(money(change))
    shot(page, "settle-05-cash-change")

    # Guest 2: card (the shop's terminal), brand and auth code.
    pay_part(page, 1)
    page.locator(".methods a", has_text="Card").click()
    settle(page)
    page.locator(".brands label", has_text="Mastercard").click()
    page.fill("#auth-code", "AUT123")
    shot(page, "settle-06-card")
    page.get_by_role("button", name=re.compile(r"approved$")).click()
    settle(page)

    # The rest, first half: Pix with a 10 % tip — the QR for the amount plus the tip.
    pay_part(page, 2)
    page.locator(".methods a", has_text="Pix").click()
    settle(page)
    page.locator(".tips a", has_text="10 %").click()
    settle(page)
    expect(page.locator(".pix-qr svg")).to_be_visible()
    tip = (parts[2]["amount_q"] * 10 + 50) // 100
    expect(page.locator(".tip-amount")).to_contain_text(money(tip).replace("R$", ""))
    shot(page, "settle-07-pix-qr")
    page.get_by_role("button", name=re.compile(r"received$")).click()
    settle(page)

    # The rest, second half: exact cash.
    expect(page.locator(".part.is-current")).to_have_count(1)
    page.locator(".methods a", has_text="Cash").click()
    settle(page)
    page.locator(".btn-exact").click()
    settle(page)
    expect(page.locator(".settled-title")).to_have_text("Paid in full")
    shot(page, "settle-08-paid")

    payments = list(Payment.objects.filter(bill=bill).order_by("id").values_list("method", "amount_q", "tip_q", "change_q", "brand", "reference"))
    assert [p[0] for p in payments] == ["cash", "card", "pix", "cash"]
    assert payments[0][3] == change
    assert payments[1][4:] == ("mastercard", "AUT123")
    assert payments[2][2] == tip
    assert sum(p[1] for p in payments) == bill.total_q
    bill.refresh_from_db()
    assert bill.status == "settled"

    # The receipt.
    page.get_by_role("link", name="Receipt").click()
    expect(page.locator("body")).to_contain_text(first.ref)
    expect(page.locator("body")).to_contain_text("AUT123")
    shot(page, "settle-09-receipt")
    page.go_back()

    # Close the table: the kitchen has bumped nothing, and still shows both rounds.
    page.reload()
    with page.expect_navigation():
        page.get_by_role("button", name="Close table 4").click()
    expect(page.locator(".flash")).to_contain_text("Table 4 closed")
    assert not Session.objects.filter(channel__code="tables", handle_ref="4", state="open").exists()
    for order in (first, second):
        order.refresh_from_db()
        assert order.status == "confirmed"
    board = new_page("kitchen")
    board.goto("/kitchen/?channel=tables")
    for order in (first, second):
        expect(board.locator("#board .card", has_text=order.ref[-6:])).to_be_visible()
    board.locator("#board .card", has_text=first.ref[-6:]).scroll_into_view_if_needed()
    shot(board, "settle-10-board-after-close")
    # One total: the bill is what its rounds charged (their service charge included).
    assert bill.total_q == first.charged_q + second.charged_q


def test_counter_sale_paid_exact_cash_in_at_most_3_taps_after_the_last_item(page, shot):
    key = new_basket(page)
    tap_product(page, "ESP")
    tap_product(page, "CAP")  # the last item
    expect(page.locator("#cart .btn-pay")).to_be_enabled()
    taps = 0
    with page.expect_navigation():
        page.locator("#cart .btn-pay").click()
    taps += 1
    order = Order.objects.get(session_key=key)
    expect(page.locator("#due")).to_have_text(money(order.total_q))
    shot(page, "settle-11-counter-bill")
    page.locator(".btn-exact").click()
    taps += 1
    settle(page)
    expect(page.locator(".settled-title")).to_have_text("Paid in full")
    assert taps <= 3
    bill = Bill.objects.get(pk=Order.objects.get(pk=order.pk).bill_id)
    assert bill.status == "settled"
    assert list(Payment.objects.filter(bill=bill).values_list("method", "amount_q", "change_q")) == [("cash", order.total_q, 0)]
    shot(page, "settle-12-counter-paid")
    small = small_targets(page, ".tender .btn, .tender a, .bill-links .btn")
    assert not small, f"touch targets under {TAP}px: {small}"


def test_two_screens_paying_one_bill_record_one_payment_the_other_sees_already_paid(new_page, shot):
    first, second = new_page("pos"), new_page("pos")
    new_basket(first)
    add(first, "ESP")
    with first.expect_navigation():
        first.locator("#cart .btn-pay").click()
    second.goto(first.url)  # the same bill on another screen
    first.locator(".btn-exact").click()
    settle(first)
    expect(first.locator(".settled-title")).to_have_text("Paid in full")
    # The second screen still shows the bill unpaid; its tap is refused with the fresh bill.
    second.fill("#tendered", "20")
    second.locator(".tender-form .btn-big").click()
    settle(second)
    expect(second.locator(".banner-conflict")).to_contain_text("already paid")
    expect(second.locator(".settled-title")).to_have_text("Paid in full")
    shot(second, "settle-13-second-screen-already-paid")
    bill = Bill.objects.get(ref=first.url.rstrip("/").split("/")[-1])
    assert Payment.objects.filter(bill=bill).count() == 1
    # A double tap on one screen: one payment too (the form's idempotency key, the button disabled in flight).
    third = new_page("pos")
    new_basket(third)
    add(third, "CAP")
    with third.expect_navigation():
        third.locator("#cart .btn-pay").click()
    third.locator(".btn-exact").dblclick()
    settle(third)
    expect(third.locator(".settled-title")).to_have_text("Paid in full")
    bill = Bill.objects.get(ref=third.url.rstrip("/").split("/")[-1])
    assert Payment.objects.filter(bill=bill).count() == 1


ENGLISH = re.compile(r"\b(Bill|Due|Paid|Cash|Card|Exact|Change|Tip|Split|Discount|Receipt|Whole bill|Paid in full|New basket|Pay)\b")


def test_the_bill_in_portuguese(browser, demo, shot):
    """A Brazilian browser: the counter's Pagar, the bill, the tender and the paid screen in pt-BR, money as R$ 1,00."""
    from tests.e2e.conftest import TIMEOUT_MS, VIEWPORT, login

    context = browser.new_context(viewport=VIEWPORT, base_url=demo.url, locale="pt-BR", timezone_id="America/Sao_Paulo")
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, demo.url, "pos")
        page.goto("/pos/counter/")
        with page.expect_navigation():
            page.locator(".channel-head .btn-primary").click()  # a new sale (Venda)
        add(page, "ESP")
        add(page, "CRO")
        pay = page.locator("#cart .btn-pay")
        expect(pay).to_contain_text("Pagar · R$")
        with page.expect_navigation():
            pay.click()
        expect(page.locator(".bill-totals")).to_contain_text("A pagar")
        expect(page.locator(".methods")).to_contain_text("Dinheiro")
        expect(page.locator(".btn-exact")).to_contain_text("Exato R$")
        page.fill("#tendered", "50")
        expect(page.locator("#change-preview")).to_contain_text("R$")
        shot(page, "settle-14-pt-br-bill")
        body = page.locator("#bill").inner_text()
        assert not ENGLISH.search(body), body
        page.locator(".methods a", has_text="Pix").click()
        settle(page)
        expect(page.locator(".pix-qr svg")).to_be_visible()
        expect(page.get_by_role("button", name=re.compile(r"recebido$"))).to_be_visible()
        page.locator(".methods a", has_text="Dinheiro").click()
        settle(page)
        page.fill("#tendered", "50")
        page.locator(".tender-form .btn-big").click()
        settle(page)
        expect(page.locator(".settled-title")).to_have_text("Conta paga")
        expect(page.locator(".result")).to_contain_text("Troco")
        shot(page, "settle-15-pt-br-paid")
        body = page.locator("#bill").inner_text()
        assert not ENGLISH.search(body), body
    finally:
        context.close()
    assert not errors, errors


def test_a_big_discount_on_the_bill_asks_the_managers_pin_on_the_cashiers_screen(new_page, shot):
    from django.contrib.auth import get_user_model

    from omniman.approvals import set_pin

    set_pin(get_user_model().objects.get(username="manager"), "2468")
    page = new_page("pos")
    new_basket(page)
    add(page, "CAESAR")
    with page.expect_navigation():
        page.locator("#cart .btn-pay").click()
    bill = Bill.objects.get(ref=page.url.rstrip("/").split("/")[-1])
    page.locator("summary", has_text="Discount").click()
    page.fill('input[name="percent"]', "50")
    page.fill('.tool-form input[name="reason"]', "birthday")
    page.get_by_role("button", name="Apply discount").click()
    settle(page)
    expect(page.locator(".approval")).to_be_visible()
    expect(page.locator('input[name="percent"]')).to_have_value("50")  # what was typed, kept
    assert Bill.objects.get(pk=bill.pk).adjustments == []
    page.fill('input[name="approver"]', "manager")
    page.fill('input[name="pin"]', "2468")
    shot(page, "settle-16-discount-manager-pin")
    page.get_by_role("button", name="Approve").click()
    settle(page)
    expect(page.locator(".adjustments")).to_contain_text("birthday")
    expect(page.locator(".adjustments")).to_contain_text("approved by manager")
    after = Bill.objects.get(pk=bill.pk)
    assert after.total_q == bill.total_q - bill.total_q // 2
    expect(page.locator("#due")).to_have_text(money(after.total_q))
    shot(page, "settle-17-discount-applied")


def test_a_manager_voids_a_sent_item_on_the_bill_and_the_board_shows_void(new_page, shot):
    page = new_page("manager")
    page.goto("/pos/tables/")
    page.fill("#open-table", "12")
    with page.expect_navigation():
        page.get_by_role("button", name="Open table").click()
    add_burger(page, "Rare")
    add(page, "FRIES")
    send_round(page)
    order = Order.objects.get(handle_ref="12", channel__code="tables")
    with page.expect_navigation():
        page.locator("#cart .btn-bill").click()
    bill = Bill.objects.get(ref=page.url.rstrip("/").split("/")[-1])
    fries = page.locator(".bill-line", has_text="Fries")
    fries.locator("summary").click()
    fries.locator('input[name="reason"]').fill("sent by mistake")
    fries.get_by_role("button", name="Void item").click()
    settle(page)
    expect(page.locator(".bill-line.is-void", has_text="Fries")).to_contain_text("VOID")
    after = Bill.objects.get(pk=bill.pk)
    assert after.total_q < bill.total_q
    expect(page.locator("#due")).to_have_text(money(after.total_q))
    shot(page, "settle-18-void-on-the-bill")
    board = new_page("kitchen")
    board.goto("/kitchen/?channel=tables")
    card = board.locator("#board .card", has_text=order.ref[-6:])
    expect(card.locator(".item.voided")).to_contain_text("Fries")
    expect(card.locator(".item.voided .void-badge")).to_have_text("VOID")
    expect(card.locator(".void-mark")).to_have_text("VOID")  # until a cook acknowledges it
