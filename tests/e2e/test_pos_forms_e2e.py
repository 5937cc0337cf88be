"""Refused forms in a real browser: what the person typed stays (issue #17 item 4, issue #12 item 7)."""

from __future__ import annotations

import re

import pytest

from omniman.models import Session
from tests.e2e.conftest import settle

expect = pytest.importorskip("playwright.sync_api").expect

TYPED = "extra hot, takeaway cup"


def open_table(page, number: str) -> str:
    page.goto("/pos/tables/")
    page.fill("#open-table", number)
    with page.expect_navigation():
        page.get_by_role("button", name="Open table").click()
    expect(page.locator("#cart .cart-head h2")).to_contain_text(f"Table {number}")
    return re.search(r"/s/([^/]+)/", page.url).group(1)


def open_note_editor(page) -> None:
    page.locator("#cart .edit-link").first.click()
    settle(page)
    expect(page.locator("#cart input[name=note]")).to_be_visible()


def test_a_note_refused_as_stale_keeps_its_text_then_saves(page, new_page, shot):
    key = open_table(page, "11")
    page.click('button.product[value="ESP"]')
    settle(page)
    open_note_editor(page)
    page.fill("#cart input[name=note]", TYPED)

    # Another screen changes the tab meanwhile.
    other = new_page("pos")
    other.goto(page.url)
    other.click('button.product[value="CAP"]')
    settle(other)

    with page.expect_response(lambda r: r.url.endswith("/note/")) as refused:
        page.get_by_role("button", name="Save note").click()
    settle(page)
    assert refused.value.status == 409
    expect(page.locator("#cart .banner")).to_contain_text("changed on another screen")
    expect(page.locator("#cart input[name=note]")).to_have_value(TYPED)  # the editor is still open, with the text
    expect(page.locator("#cart li.line")).to_have_count(2)  # the fresh tab: the other screen's cappuccino
    shot(page, "forms-01-stale-note-kept")

    with page.expect_response(lambda r: r.url.endswith("/note/")) as applied:
        page.get_by_role("button", name="Save note").click()
    settle(page)
    assert applied.value.status == 200
    expect(page.locator("#cart .note").first).to_have_text(f"✎ {TYPED}")
    assert Session.objects.get(session_key=key).lines[0]["meta"]["note"] == TYPED


def test_a_customer_form_refused_for_length_keeps_its_text(page):
    key = open_table(page, "12")
    page.locator("#cart .customer-form summary").click()
    # The browser's maxlength stops typing: a longer value can only come from elsewhere (a paste through a script).
    page.evaluate("() => document.querySelector('#cart input[name=phone]').removeAttribute('maxlength')")
    page.fill("#cart input[name=name]", "Ana Lima")
    page.fill("#cart input[name=phone]", "9" * 41)
    with page.expect_response(lambda r: r.url.endswith("/customer/")) as refused:
        page.get_by_role("button", name="Save", exact=True).click()
    settle(page)
    assert refused.value.status == 422
    expect(page.locator("#cart .customer-form")).to_have_attribute("open", "")
    expect(page.locator("#cart input[name=name]")).to_have_value("Ana Lima")
    expect(page.locator("#customer-phone-error")).to_have_text("Phone is too long (at most 40 characters).")
    assert Session.objects.get(session_key=key).rev == 0
