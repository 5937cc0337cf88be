"""The Content-Security-Policy in a real browser: no page of the app breaks it, and htmx still works.

Every page is loaded with the policy the server sends (``omniman.web.csp``);
an init script (injected by the browser driver, so outside the policy) reports
each ``securitypolicyviolation`` event, and the console's "Refused to …"
messages are collected too, and JavaScript errors. All must stay empty.
"""

from __future__ import annotations

import re

import pytest

from omniman.models import Directive, Order, Session
from tests.e2e.conftest import TIMEOUT_MS, VIEWPORT, login, settle

expect = pytest.importorskip("playwright.sync_api").expect

REPORTER = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.reportCspViolation([event.violatedDirective, event.blockedURI, event.sourceFile + ":" + event.lineNumber].join(" "));
});
"""


@pytest.fixture
def csp_page(browser, demo):
    """Factory: a signed-in page whose CSP violations and console errors land in ``violations``."""
    contexts, violations = [], []

    def make(username: str | None):
        context = browser.new_context(viewport=VIEWPORT, base_url=demo.url)
        context.set_default_timeout(TIMEOUT_MS)
        context.expose_binding("reportCspViolation", lambda source, text: violations.append(f"{source['page'].url}: {text}"))
        context.add_init_script(REPORTER)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: violations.append(f"{page.url}: console: {message.text}")
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None,
        )
        page.on("pageerror", lambda exc: violations.append(f"{page.url}: pageerror: {exc}"))
        if username:
            login(page, demo.url, username)
        return page

    make.violations = violations
    yield make
    for context in contexts:
        context.close()


def visit(page, path: str) -> str:
    """Load ``path``; return the policy it was served with."""
    response = page.goto(path)
    assert response is not None and response.status == 200, f"{path}: {response and response.status}"
    page.wait_for_load_state("load")
    return response.headers.get("content-security-policy", "")


def test_operator_pages_run_under_the_strict_policy(csp_page):
    pos = csp_page("pos")
    assert csp_page.violations == []  # the login page, signed in through it

    policy = visit(pos, "/pos/counter/")
    assert "script-src 'self';" in policy and "unsafe" not in policy
    with pos.expect_navigation():
        pos.get_by_role("link", name=re.compile(r"^New ")).click()
    key = pos.locator('#add-form input[name="session_key"]').get_attribute("value")  # opened by its first item

    # htmx under the policy: search, add from the grid, the cart swaps in place.
    pos.fill("#pos-search", "ESP")
    settle(pos)
    pos.keyboard.press("Enter")
    settle(pos)
    expect(pos.locator("#cart li.line")).to_have_count(1)
    pos.click('button.product[value="CAP"]')  # another product: the same one would add to its line
    settle(pos)
    expect(pos.locator("#cart li.line")).to_have_count(2)
    assert len(Session.objects.get(session_key=key).items) == 2

    kitchen = csp_page("kitchen")
    policy = visit(kitchen, "/kitchen/")
    assert "unsafe" not in policy
    # The board refreshes itself (htmx polling) under the policy.
    with kitchen.expect_response(lambda response: "/kitchen/" in response.url and response.request.headers.get("hx-request")):
        pass
    settle(kitchen)

    assert csp_page.violations == []


def test_login_pages_run_under_their_policies(csp_page):
    anonymous = csp_page(None)
    assert "unsafe" not in visit(anonymous, "/accounts/login/")
    assert "'unsafe-eval'" in visit(anonymous, "/admin/login/")  # unfold's login page
    expect(anonymous.locator("#id_username")).to_be_visible()
    assert csp_page.violations == []


def test_admin_pages_run_under_the_admin_policy(csp_page):
    admin = csp_page("admin")
    order = Order.objects.order_by("pk").first()
    session = Session.objects.filter(state="open").order_by("pk").first()
    directive = Directive.objects.order_by("pk").first()
    for path in (
        "/admin/",
        "/admin/omniman/order/",
        f"/admin/omniman/order/{order.pk}/change/",
        f"/admin/omniman/session/{session.pk}/change/",
        "/admin/omniman/directive/",
        *([f"/admin/omniman/directive/{directive.pk}/change/"] if directive else []),
        "/admin/omniman/channel/",
    ):
        policy = visit(admin, path)
        assert "script-src 'self' 'unsafe-eval';" in policy, path
        assert "frame-ancestors 'none'" in policy, path
    assert csp_page.violations == []

    # Our admin templates' confirmations work without inline handlers (static/js/admin.js).
    visit(admin, f"/admin/omniman/session/{session.pk}/change/")
    questions = []

    def dismiss(dialog):
        questions.append(dialog.message)
        dialog.dismiss()

    admin.once("dialog", dismiss)
    admin.locator("#session-abandon button[type=submit]").click()
    expect(admin.locator("#session-abandon")).to_be_visible()
    assert questions and questions[0].startswith("Abandon this session?")
    assert Session.objects.get(pk=session.pk).state == "open"
    assert csp_page.violations == []
