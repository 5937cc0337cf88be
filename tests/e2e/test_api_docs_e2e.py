"""The API's docs page in a real browser: Swagger UI from this server renders every operation.

Nothing is loaded from another origin (the assets come from drf-spectacular-sidecar),
and no Content-Security-Policy violation, console error or JavaScript error happens.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import TIMEOUT_MS, VIEWPORT

expect = pytest.importorskip("playwright.sync_api").expect

REPORTER = """
document.addEventListener("securitypolicyviolation", function (event) {
  window.reportCspViolation([event.violatedDirective, event.blockedURI, event.sourceFile + ":" + event.lineNumber].join(" "));
});
"""
OPERATIONS = 24  # every operation of the schema (tests/integration/api/test_api_fuzz.py counts them from it)


def test_the_api_docs_page_renders_every_operation_from_this_server(browser, demo):
    context = browser.new_context(viewport=VIEWPORT, base_url=demo.url)
    context.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    context.expose_binding("reportCspViolation", lambda source, text: problems.append(f"csp: {text}"))
    context.add_init_script(REPORTER)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    try:
        response = page.goto("/api/docs/")
        assert response is not None and response.status == 200
        operations = page.locator(".opblock")
        expect(operations).to_have_count(OPERATIONS)
        expect(page.locator(".opblock-summary-path", has_text="/api/channels/{code}/orders/").first).to_be_visible()
        assert [url for url in requested if not url.startswith(demo.url)] == []
        assert problems == [], "\n".join(problems)
    finally:
        context.close()
