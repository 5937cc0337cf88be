"""The POS in a real browser: a table's round, stale screens, double commits, the keyboard.

Each test starts from the demo café (``seed_demo``) with the stock and pricing
checks dispatched in the request, signs in as ``pos`` through the login form
and drives Debian's chromium at 1024×768. After every action the test waits
for htmx to settle, then asserts what the operator sees and what the database
holds.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection

from omniman.contrib.stock.models import StockLevel
from omniman.models import Order, Session
from tests.e2e.conftest import settle

expect = pytest.importorskip("playwright.sync_api").expect

TAP = 44  # px: the smallest touch target (STYLE.md)
STALE = "changed on another screen"


# -- helpers ----------------------------------------------------------------------------


def session_key(page) -> str:
    match = re.search(r"/s/([^/]+)/", page.url)
    assert match, f"not on a session screen: {page.url}"
    return match.group(1)


def open_table(page, number: str) -> str:
    """From the tables list: type the table number, "Open table"; the tab's session key."""
    page.goto("/pos/tables/")
    page.fill("#open-table", number)
    with page.expect_navigation():
        page.get_by_role("button", name="Open table").click()
    expect(page.locator("#cart .cart-head h2")).to_contain_text(f"Table {number}")
    return session_key(page)


def new_basket(page, channel: str = "counter") -> str:
    """The screen of a new basket; its key (the basket itself is opened by its first item)."""
    page.goto(f"/pos/{channel}/")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile(r"^New ")).click()
    expect(page.locator("#cart")).to_be_visible()
    assert page.url.endswith(f"/pos/{channel}/new/")
    return page.locator('#add-form input[name="session_key"]').get_attribute("value")


def lines(page):
    return page.locator("#cart li.line")


def line(page, name: str):
    """The cart line of product ``name`` (exact name)."""
    return lines(page).filter(has=page.locator(".line-name", has_text=re.compile(rf"^{re.escape(name)}$")))


def tap_product(page, sku: str) -> None:
    page.click(f'button.product[value="{sku}"]')
    settle(page)


def db_skus(key: str) -> list[tuple[str, str]]:
    session = Session.objects.get(session_key=key)
    return [(ln["sku"], str(ln["qty"])) for ln in session.lines]


def commit_button(page):
    return page.locator("#cart .btn-commit")


def cart_as_shown(page) -> dict:
    """What the cart shows and the rev its forms will send, read off the page."""
    return page.evaluate(
        """() => {
            const cart = document.getElementById("cart");
            const text = (sel) => Array.from(cart.querySelectorAll(sel), (el) => el.innerText.trim());
            return {
                head: text(".cart-head"), lines: text("li.line"), issues: text(".issue"),
                totals: text(".totals"), checks: text(".check"),
                commit: cart.querySelector(".btn-commit").disabled,
                rev: document.getElementById("cart-head").dataset.rev,
            };
        }"""
    )


def assert_same_after_reload(page) -> None:
    """The cart built by a run of out-of-band swaps is the cart a reload renders."""
    swapped = cart_as_shown(page)
    page.reload()
    expect(page.locator("#cart")).to_be_visible()
    assert cart_as_shown(page) == swapped


def small_targets(page, selector: str) -> list[str]:
    """Visible elements matching ``selector`` smaller than TAP×TAP, as "label w×h"."""
    small = []
    for element in page.locator(selector).all():
        box = element.bounding_box()
        if box is None or not element.is_visible():
            continue
        if box["height"] < TAP or box["width"] < TAP:
            label = (element.get_attribute("aria-label") or element.inner_text() or selector).strip().split("\n")[0]
            small.append(f"{label} {box['width']:.0f}×{box['height']:.0f}")
    return small


# -- 1. a table's round, start to end ---------------------------------------------------


def test_table_7_round_from_grid_scan_qty_note_stock_issue_to_send(page, shot):
    page.goto("/pos/")
    expect(page.locator(".tiles .tile")).to_have_count(4)
    shot(page, "01-pos-channels")
    page.goto("/pos/tables/")
    expect(page.locator("#sessions")).to_contain_text("Table 5")
    shot(page, "02-tables-open-tabs")
    small = small_targets(page, ".topbar button, .channel-head button, #open-table, .search-sessions button, .row-link")
    assert not small, f"touch targets under {TAP}px: {small}"

    key = open_table(page, "7")
    search = page.locator("#pos-search")

    # Three products from the grid (the first category, coffee, is shown).
    for sku in ("ESP", "CAP", "LATTE"):
        tap_product(page, sku)
    expect(lines(page)).to_have_count(3)

    # One by "scanning" its barcode into the search box: added, the box cleared and still focused.
    search.fill("7890000000288")
    search.press("Enter")
    settle(page)
    expect(line(page, "Caesar salad")).to_have_count(1)
    expect(search).to_have_value("")
    expect(search).to_be_focused()
    expect(lines(page)).to_have_count(4)
    # (Whether the results list is empty too depends on a race: see the xfail test below.)

    # "+" on the espresso: two of them.
    line(page, "Espresso").get_by_role("button", name="One more Espresso").click()
    settle(page)
    expect(line(page, "Espresso").locator(".qty")).to_have_text("2")

    # A note for the kitchen on the salad.
    salad = line(page, "Caesar salad")
    salad.locator("a.edit-link", has_text="Note").click()  # the line editor loads in place
    settle(page)
    salad.locator("input[name=note]").fill("no onions")
    salad.get_by_role("button", name="Save note").click()
    settle(page)
    expect(line(page, "Caesar salad").locator(".note")).to_have_text("✎ no onions")
    expect(page.locator("#cart .check")).to_have_text("Stock: ok")
    expect(commit_button(page)).to_be_enabled()
    shot(page, "03-tab-several-lines")
    assert_same_after_reload(page)  # each change above swapped only its regions

    small = small_targets(page, "#cart button, #cart summary, #cart a.edit-link, button.product, a.cat, .scan button, #pos-search")
    assert not small, f"touch targets under {TAP}px: {small}"

    # A stock issue: one grilled chicken left, the tab asks for two.
    StockLevel.objects.filter(sku="CHICK").update(on_hand=Decimal("1"))
    page.locator("a.cat", has_text="Mains").click()
    settle(page)
    expect(page.locator("a.cat.active")).to_have_text("Mains")
    tap_product(page, "CHICK")
    expect(page.locator("#cart .check")).to_have_text("Stock: ok")
    line(page, "Grilled chicken").get_by_role("button", name="One more Grilled chicken").click()
    settle(page)
    issue = page.locator("#cart .issue")
    expect(issue).to_have_count(1)
    expect(issue).to_contain_text("Grilled chicken: only 1 of 2 available.")
    expect(page.locator("#cart .check")).to_have_text("Stock: issues")
    expect(commit_button(page)).to_be_disabled()
    assert_same_after_reload(page)
    shot(page, "04a-tab-stock-issue-as-shown")  # with five lines the issue is below the cart's fold
    issue.scroll_into_view_if_needed()
    shot(page, "04b-tab-stock-issue-scrolled")
    small = small_targets(page, "#cart .issue button")
    assert not small, f"issue actions under {TAP}px: {small}"

    # Its action resolves it.
    issue.get_by_role("button", name="Reduce to 1").click()
    settle(page)
    expect(page.locator("#cart .issue")).to_have_count(0)
    expect(page.locator("#cart .check")).to_have_text("Stock: ok")
    expect(line(page, "Grilled chicken").locator(".qty")).to_have_text("1")
    expect(commit_button(page)).to_be_enabled()

    # Send the round: the tab's next round opens, with the flash naming the order.
    sent_total = re.search(r"R\$\s?[\d,.]+", commit_button(page).inner_text()).group()
    assert sent_total == "R$113.30"  # R$103.00 of items + 10 % service
    with page.expect_navigation():
        commit_button(page).click()
    flash = page.locator(".flash .flash-success")
    expect(flash).to_have_text(re.compile(r"^Round \S+ sent\.$"))
    ref = flash.inner_text().split()[1]
    expect(page.locator("#cart .cart-head h2")).to_contain_text("Table 7")
    expect(page.locator("#cart .rounds")).to_contain_text(ref)
    expect(lines(page)).to_have_count(0)
    expect(page.locator("#cart dd.table-total")).to_have_text(sent_total)
    shot(page, "05-tab-round-sent")

    orders = list(Order.objects.filter(channel__code="tables", handle_type="table", handle_ref="7"))
    assert [o.ref for o in orders] == [ref]
    order = orders[0]
    assert order.session_key == key
    items = {item.sku: item for item in order.items.all()}
    assert {sku: item.qty for sku, item in items.items()} == {
        "ESP": Decimal("2"),
        "CAP": Decimal("1"),
        "LATTE": Decimal("1"),
        "CAESAR": Decimal("1"),
        "CHICK": Decimal("1"),
    }
    assert items["CAESAR"].meta.get("note") == "no onions"
    assert not any(item.meta.get("note") for sku, item in items.items() if sku != "CAESAR")


def test_scan_leaves_no_results_when_the_search_answers_after_the_add(page):
    new_basket(page, "counter")
    search = page.locator("#pos-search")
    searches, held = re.compile(r"/search/\?q="), []

    def hold(route):  # the search waits until the add is done
        held.append(route)

    page.route(searches, hold)

    search.fill("7890000000288")  # its search leaves 150 ms after the typing stops
    search.press("Enter")  # the add leaves at once, the box is emptied
    expect(line(page, "Caesar salad")).to_have_count(1)
    expect(search).to_have_value("")
    for _ in range(100):  # the debounced search, now held back by the route
        if held:
            break
        page.wait_for_timeout(20)
    assert held, "the search box sent no search"
    for route in held:
        route.continue_()
    page.unroute(searches, hold)
    settle(page)

    expect(search).to_have_value("")
    assert page.locator("#results .result").count() == 0, page.locator("#results").inner_text()



def test_rapid_taps_and_scans_are_all_added_in_order(page):
    """Taps and scans faster than the server answers: each waits for the one before, none is lost or refused."""
    key = new_basket(page, "counter")
    adds = []
    page.on("response", lambda r: adds.append(r.status) if r.url.endswith("/add/") else None)
    for sku in ("ESP", "CAP", "LATTE"):
        page.click(f'button.product[value="{sku}"]')  # no waiting between taps
    search = page.locator("#pos-search")
    for code in ("7890000000288", "7890000000042"):  # a Caesar salad and a cappuccino, scanned back to back
        search.press_sequentially(code)
        search.press("Enter")
    expect(line(page, "Cappuccino").locator(".qty")).to_have_text("2")
    settle(page)
    # The second cappuccino adds to the first one's line (same product, same modifiers).
    assert db_skus(key) == [("ESP", "1"), ("CAP", "2"), ("LATTE", "1"), ("CAESAR", "1")]
    expect(lines(page)).to_have_count(4)
    assert adds == [200] * 5, adds
    expect(page.locator("#cart .banner")).to_have_count(0)
    expect(search).to_have_value("")
    expect(page.locator("#cart .check")).to_have_text("Stock: ok")  # the follow-up check of the last rev
    # A double tap on "+": the first answer replaces the line (and its button); the second tap still counts.
    steps = []
    page.on("response", lambda r: steps.append(r.status) if r.url.endswith("/qty/") else None)
    line(page, "Espresso").get_by_role("button", name="One more Espresso").dblclick()
    expect(line(page, "Espresso").locator(".qty")).to_have_text("3")
    expect(page.locator("#cart .check")).to_have_text("Stock: ok")  # its follow-up check landed
    settle(page)
    assert steps == [200, 200], steps
    assert db_skus(key)[0] == ("ESP", "3")
    expect(page.locator("#cart .banner")).to_have_count(0)
    assert_same_after_reload(page)

# -- 2. two screens on the same tab ---------------------------------------------------------


def test_stale_screen_is_refused_with_banner_and_fresh_cart_nothing_doubled(page, new_page, shot):
    key = open_table(page, "7")
    other = new_page("pos")
    other.goto(page.url)
    expect(other.locator("#cart-head")).to_have_attribute("data-rev", "0")  # the rev is not shown (issue #17, 7), only kept

    # Screen A adds an espresso.
    tap_product(page, "ESP")
    expect(lines(page)).to_have_count(1)
    assert db_skus(key) == [("ESP", "1")]

    # Screen B still shows rev 0: its cappuccino is refused, it now shows A's espresso.
    with other.expect_response(lambda r: r.url.endswith("/add/")) as refused:
        other.click('button.product[value="CAP"]')
    settle(other)
    assert refused.value.status == 409
    expect(other.locator("#cart .banner")).to_contain_text(STALE)
    expect(lines(other)).to_have_count(1)
    expect(line(other, "Espresso")).to_have_count(1)
    assert db_skus(key) == [("ESP", "1")]
    shot(other, "06-stale-banner")

    # B, now fresh, adds again: applied once, the banner gone.
    with other.expect_response(lambda r: r.url.endswith("/add/")) as applied:
        other.click('button.product[value="CAP"]')
    settle(other)
    assert applied.value.status == 200
    expect(other.locator("#cart .banner")).to_have_count(0)
    expect(lines(other)).to_have_count(2)
    assert db_skus(key) == [("ESP", "1"), ("CAP", "1")]


# -- 3. one order however often the commit is sent -------------------------------------------


def ready_basket(page) -> str:
    key = new_basket(page, "counter")
    tap_product(page, "ESP")
    expect(page.locator("#cart .check")).to_have_text("Stock: ok")
    expect(commit_button(page)).to_be_enabled()
    return key


def test_double_click_on_commit_places_one_order(page):
    key = ready_basket(page)
    before = Order.objects.filter(channel__code="counter").count()
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith("/commit/") else None)

    with page.expect_navigation():
        commit_button(page).dblclick()
    expect(page.locator(".flash .flash-success")).to_have_text(re.compile(r"^Order \S+ · pickup #\d+\.$"))

    assert Order.objects.filter(session_key=key).count() == 1
    assert Order.objects.filter(channel__code="counter").count() == before + 1
    assert len(posts) == 1, posts  # hx-disabled-elt: the second click hits a disabled button


REPLAY_JS = """async (parallel) => {
  const form = document.querySelector("#cart form.commit-form");
  const body = new URLSearchParams(new FormData(form));
  const send = () => fetch(form.action, {
    method: "POST", body, headers: {"HX-Request": "true", "HX-Current-URL": location.href},
  }).then(r => ({status: r.status, redirect: r.headers.get("HX-Redirect")}));
  if (parallel) { return Promise.all([send(), send()]); }
  const first = await send();
  return [first, await send()];
}"""


def open_baskets(channel: str = "counter") -> set[str]:
    return set(Session.objects.filter(channel__code=channel, state=Session.State.OPEN).values_list("session_key", flat=True))


def test_commit_form_replayed_with_same_idempotency_key_places_one_order(page):
    key = ready_basket(page)
    before = open_baskets()
    first, second = page.evaluate(REPLAY_JS, False)

    assert first["status"] == 200 and first["redirect"], first
    assert second["status"] in (200, 409), second
    assert Order.objects.filter(session_key=key).count() == 1
    assert Session.objects.get(session_key=key).state == Session.State.COMMITTED
    # The next basket is a screen until its first item (issue #17): neither request opens one.
    assert open_baskets() - before == set()
    assert first["redirect"].endswith("/pos/counter/new/")


@pytest.mark.postgres
def test_commit_form_sent_twice_at_once_places_one_order(page):
    assert connection.vendor == "postgresql"
    key = ready_basket(page)
    before = open_baskets()
    results = page.evaluate(REPLAY_JS, True)

    statuses = sorted(r["status"] for r in results)
    assert statuses in ([200, 200], [200, 409]), results  # 409: "already being placed"
    assert Order.objects.filter(session_key=key).count() == 1
    assert open_baskets() - before == set()  # no empty basket left behind


def test_sent_round_line_shows_the_total_that_was_sent(page):
    open_table(page, "7")
    tap_product(page, "ESP")  # R$6.00 + 10% service
    expect(commit_button(page)).to_contain_text("R$6.60")
    with page.expect_navigation():
        commit_button(page).click()
    round_text = page.locator("#cart .rounds .round p").inner_text()
    assert round_text.endswith("R$6.60"), round_text


# -- 4. the keyboard ------------------------------------------------------------------------


def test_slash_focuses_search_and_enter_adds_the_first_match(page):
    new_basket(page, "counter")
    search = page.locator("#pos-search")

    page.locator("#cart .cart-head h2").click()  # the focus leaves the search box
    expect(search).not_to_be_focused()
    page.keyboard.press("/")
    expect(search).to_be_focused()
    expect(search).to_have_value("")

    with page.expect_response(lambda r: "/search/?q=latte" in r.url):
        page.keyboard.type("latte")
    settle(page)
    first = page.locator("#results .result.first .name")
    expect(first).to_be_visible()
    name = first.inner_text()
    page.keyboard.press("Enter")
    settle(page)
    expect(lines(page)).to_have_count(1)
    expect(line(page, name)).to_have_count(1)
    expect(search).to_have_value("")
    expect(search).to_be_focused()

    # "/" typed in another field stays in that field.
    page.locator("#cart .customer-form summary").click()
    name_box = page.locator("#cart .customer-form input[name=name]")
    name_box.click()
    page.keyboard.type("a/b")
    expect(name_box).to_have_value("a/b")
    expect(name_box).to_be_focused()
