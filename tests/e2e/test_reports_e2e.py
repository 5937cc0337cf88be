"""The report pages in chromium at 1280×800 (issue #18): each page draws its Chart.js chart (unfold's, served
locally) under the admin's CSP with no violation and no JavaScript error; a screenshot of each is saved to
``REPORT_SCREENSHOTS`` (default ``/tmp/omniman-report-screenshots``) to be looked at."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.e2e.conftest import TIMEOUT_MS, login
from tests.e2e.test_csp_e2e import REPORTER
from tests.report_data import a_week, channels

pytestmark = [pytest.mark.e2e, pytest.mark.contrib("omniman.contrib.payment", "omniman.contrib.demo")]

SCREENS = Path(os.environ.get("REPORT_SCREENSHOTS", "/tmp/omniman-report-screenshots"))
NAMES = ["day", "hour", "channel", "product", "category", "method", "staff", "kitchen", "adjustments"]


def test_every_report_page_draws_its_chart_under_the_csp(browser, demo):
    counter, tables = channels("r-")
    today = timezone.localdate()
    a_week(counter, tables, today - timedelta(days=13), per_day=2)
    a_week(counter, tables, today - timedelta(days=6), per_day=3)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=demo.url)
    context.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    context.expose_binding("reportCspViolation", lambda source, text: problems.append(f"{source['page'].url}: {text}"))
    context.add_init_script(REPORTER)
    page = context.new_page()
    page.on("pageerror", lambda exc: problems.append(f"{page.url}: pageerror: {exc}"))
    page.on("console", lambda message: problems.append(f"{page.url}: {message.text}") if "Refused to" in message.text else None)
    login(page, demo.url, "manager")
    SCREENS.mkdir(parents=True, exist_ok=True)
    try:
        for name in NAMES:
            response = page.goto(f"/admin/reports/{name}/?preset=7d")
            assert response is not None and response.status == 200, name
            # unfold's app.js made a Chart.js chart of the canvas (Chart is unfold's static chart.js).
            page.wait_for_function("() => window.Chart && Chart.getChart(document.querySelector('canvas.chart'))")
            page.wait_for_timeout(400)  # the chart's entry animation
            assert page.locator("#report-total").count() == 1
            page.screenshot(path=str(SCREENS / f"report-{name}.png"), full_page=False)
            page.screenshot(path=str(SCREENS / f"report-{name}-full.png"), full_page=True)
    finally:
        context.close()
    assert not problems, problems
