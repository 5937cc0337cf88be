"""Issue #17: the POS list, a tab, the floor map and the kitchen board at four screen sizes — nothing overflows
sideways, touch targets are at least 44 × 44 px, the cart and its Send button are reachable — and axe-core
(vendored in tests/e2e/vendor/) finds no serious or critical accessibility violation on them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from omniman.models import Channel, FloorArea, FloorTable, Session
from omniman.services import CommitService, ModifyService, SessionService
from tests.e2e.conftest import settle

SIZES = {"phone": (390, 844), "tablet": (768, 1024), "tablet-landscape": (1024, 768), "desktop": (1920, 1080)}
TAP = 44
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# What a finger taps: buttons, button-like links, the category pills, the tables of the map, the list's rows.
TARGETS = "main button, main a.btn, main a.cat, main a.row-link, main .table, main input, main select, .topbar button"


def floor_with_a_round():
    """The demo's tables channel with a plan of 8 tables in two areas, table 4 with a sent round and a line."""
    channel = Channel.objects.get(code="tables")
    salao = FloorArea.objects.create(channel=channel, name="Salão", position=0)
    varanda = FloorArea.objects.create(channel=channel, name="Varanda", position=1)
    for i in range(1, 9):
        FloorTable.objects.create(channel=channel, area=salao if i <= 4 else varanda, label=str(i), seats=4,
                                  x=((i - 1) % 4) * 4, y=0, w=3, h=2)
    tab = SessionService.open_session("tables", handle_type="table", handle_ref="4")
    tab = ModifyService.modify_session(tab.session_key, "tables", [{"op": "add_line", "sku": "CAESAR", "qty": 1, "unit_price_q": 3300, "name": "Caesar salad"}])
    from omniman import engine

    while engine.process(limit=50).claimed:
        pass
    CommitService.commit(tab.session_key, "tables", idempotency_key="layout-round")
    nxt = SessionService.open_next(tab.session_key, "tables")
    for sku, name in (("ESP", "Espresso"), ("CAP", "Cappuccino"), ("CAESAR", "Caesar salad")):
        nxt = ModifyService.modify_session(nxt.session_key, "tables", [{"op": "add_line", "sku": sku, "qty": 1, "name": name}])
    return nxt


def overflow(page) -> int:
    """How many px the page is wider than the viewport (0: nothing to scroll sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def small_targets(page) -> list[str]:
    return page.evaluate(
        """([selector, tap]) => {
          const small = [];
          for (const el of document.querySelectorAll(selector)) {
            if (el.type === "hidden") continue;
            const r = el.getBoundingClientRect(), style = getComputedStyle(el);
            if (!r.width || !r.height || style.visibility === "hidden" || style.display === "none") continue;
            if (el.closest("[hidden], .sr-only")) continue;
            if (el.type === "checkbox" || el.type === "radio") { // the label is the target
              const label = el.closest("label");
              if (label) { const l = label.getBoundingClientRect(); if (l.width >= tap && l.height >= tap) continue; }
            }
            if (r.width < tap - 0.5 || r.height < tap - 0.5) {
              const name = (el.getAttribute("aria-label") || el.innerText || el.name || el.id || el.className || "").trim().split("\\n")[0];
              small.push(`${el.tagName.toLowerCase()} "${name}" ${Math.round(r.width)}×${Math.round(r.height)}`);
            }
          }
          return small;
        }""",
        [TARGETS, TAP],
    )


def axe_violations(page) -> list[str]:
    """Serious and critical axe-core violations on the page (the script evaluated, not added: the CSP stays on)."""
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    result = page.evaluate("async () => JSON.stringify(await axe.run(document, {resultTypes: ['violations']}))")
    violations = json.loads(result)["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


def screens(tab: Session) -> dict[str, str]:
    return {
        "pos-list": "/pos/tables/",
        "tab": f"/pos/tables/s/{tab.session_key}/",
        "floor": "/pos/tables/floor/",
        "kitchen": "/kitchen/",
    }


def open_screen(page, name: str, url: str) -> None:
    response = page.goto(url)
    assert response is not None and response.status == 200, (name, url)
    settle(page)
    if name == "tab":
        expect(page.locator("#cart")).to_be_visible()
    if name == "bill":
        expect(page.locator("#due")).to_be_visible()


@pytest.mark.parametrize("size", list(SIZES))
def test_no_overflow_and_touch_targets_at_each_size(new_page, shot, size):
    tab = floor_with_a_round()
    width, height = SIZES[size]
    pages = {"pos": new_page("pos"), "kitchen": new_page("kitchen")}
    problems = []
    for name, url in screens(tab).items():
        page = pages["kitchen" if name == "kitchen" else "pos"]
        page.set_viewport_size({"width": width, "height": height})
        open_screen(page, name, url)
        shot(page, f"layout-{name}-{width}x{height}")
        if overflow(page) > 0:
            problems.append(f"{name}: {overflow(page)} px wider than {width}")
        small = small_targets(page)
        if small:
            problems.append(f"{name}: targets under {TAP} px: {small[:8]}")
        if name == "tab":
            # The cart shows its lines and the Send button is on screen (or one scroll away in the page).
            send = page.locator("#cart .btn-commit")
            send.scroll_into_view_if_needed()
            box = send.bounding_box()
            if not box or box["y"] < 0 or box["y"] + box["height"] > height:
                problems.append(f"tab: Send not reachable ({box})")
            lines = page.locator("#cart li.line")
            visible = sum(1 for i in range(lines.count()) if lines.nth(i).is_visible())
            cart = page.locator("#cart .lines-wrap").bounding_box()
            if cart and cart["height"] < 200:
                problems.append(f"tab: the cart's lines get {cart['height']:.0f} px")
            if visible != 3:
                problems.append(f"tab: {visible} of 3 lines visible")
    assert problems == [], "\n".join(problems)


def test_axe_finds_no_serious_or_critical_violation(new_page):
    from omniman.services import BillService

    tab = floor_with_a_round()
    bill = BillService.open("tables", handle_type="table", handle_ref="4")
    pages = {"pos": new_page("pos"), "kitchen": new_page("kitchen")}
    found = {}
    for name, url in {**screens(tab), "bill": f"/pos/tables/bills/{bill.ref}/"}.items():
        page = pages["kitchen" if name == "kitchen" else "pos"]
        open_screen(page, name, url)
        violations = axe_violations(page)
        if violations:
            found[name] = violations
    assert found == {}, json.dumps(found, indent=1, ensure_ascii=False)
