"""A discount over the limit on a real screen: the form asks for a manager, the manager's PIN approves it there.

The demo café (``seed_demo`` with DEBUG on: the manager's approval PIN is 1234), signed in as ``pos``, 1024×768.
"""

from __future__ import annotations

import re

import pytest

from omniman.models import Session
from tests.e2e.conftest import settle

expect = pytest.importorskip("playwright.sync_api").expect


def test_a_discount_over_the_limit_is_approved_with_the_managers_pin(page, shot):
    page.goto("/pos/tables/")
    page.fill("#open-table", "21")
    with page.expect_navigation():
        page.get_by_role("button", name="Open table").click()
    key = re.search(r"/s/([^/]+)/", page.url).group(1)
    page.fill("#pos-search", "CAESAR")  # R$33.00 + 10 % service
    page.keyboard.press("Enter")  # Enter adds the first match
    settle(page)
    expect(page.locator("#cart li.line")).to_have_count(1)
    commit = page.locator("#cart .btn-commit")
    expect(commit).to_contain_text("R$36.30")
    expect(page.locator("#cart .check")).to_contain_text("ok")  # the stock check's follow-up has redrawn the cart

    whole = page.locator("#cart .lines-wrap > details.discount")
    whole.locator("summary").click()
    whole.locator('input[name="value"]').fill("30")
    whole.locator('input[name="reason"]').fill("birthday")
    whole.get_by_role("button", name="Apply discount").click()
    settle(page)
    # Refused, nothing applied: the same form comes back open, as typed, asking for a manager.
    expect(page.locator("#cart-banner")).to_contain_text("manager")
    whole = page.locator("#cart .lines-wrap > details.discount")
    expect(whole.locator('input[name="approved_by"]')).to_be_visible()
    expect(whole.locator('input[name="value"]')).to_have_value("30")
    assert Session.objects.get(session_key=key).totals["discount_q"] == 0
    shot(page, "discount-pin-dialog")

    whole.locator('input[name="approved_by"]').fill("manager")
    whole.locator('input[name="pin"]').fill("1234")
    whole.get_by_role("button", name="Apply discount").click()
    settle(page)
    expect(page.locator("#cart .adjustments")).to_contain_text("Discount 30 %")
    expect(page.locator("#cart .adjustments")).to_contain_text("approved by manager")
    expect(commit).to_contain_text("R$25.41")  # 33.00 − 30 % = 23.10, + 10 % service = 25.41
    discount = next(a for a in Session.objects.get(session_key=key).adjustments if a["kind"] == "discount")
    assert discount["approved_by"] == "manager" and discount["actor"] == "user:pos"
    shot(page, "discount-approved")
