"""The manager's report pages and exports (issue #18): managers only, the filter, KPI cards and charts, the CSV and
XLSX files parsed back (their totals equal the report's), a fixed query count per page, the sidebar's group."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from decimal import Decimal

import openpyxl
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.services import REPORTS, Period, build_report, sales_summary
from tests.integration.test_admin_review import make_user
from tests.report_data import a_week, channels, sell

pytestmark = [pytest.mark.django_db, pytest.mark.contrib("omniman.contrib.payment")]

MONDAY = date(2026, 11, 2)
WEEK = Period(MONDAY, MONDAY + timedelta(days=6))
FILTER = f"start={WEEK.start.isoformat()}&end={WEEK.end.isoformat()}"


@pytest.fixture
def manager(client):
    client.force_login(make_user("manager", groups=("manager",)))
    return client


@pytest.fixture
def sales():
    counter, tables = channels()
    a_week(counter, tables, MONDAY - timedelta(days=7), per_day=1)
    return a_week(counter, tables, MONDAY, per_day=2)


@pytest.mark.parametrize("username, staff, groups", [("pos", False, ("pos",)), ("kitchen", True, ("kitchen",)), ("staff", True, ())])
def test_only_managers_see_reports_and_exports(client, username, staff, groups):
    client.force_login(make_user(username, staff=staff, groups=groups))
    for url in ("/admin/reports/", "/admin/reports/day/", "/admin/reports/day/export.csv", "/admin/reports/staff/export.xlsx"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    client.logout()
    assert client.get("/admin/reports/day/").status_code == 302


def test_each_report_page_renders_kpis_chart_and_table(manager, sales):
    for name in sorted(REPORTS):
        check_page(manager, name)


def check_page(manager, name):
    response = manager.get(f"/admin/reports/{name}/?{FILTER}")
    assert response.status_code == 200
    html = response.content.decode()
    report = response.context["report"]
    assert report.period == WEEK and response.context["period"] == WEEK
    # KPI cards: the period's sales beside the previous period's.
    kpis = {kpi["key"]: kpi for kpi in response.context["kpis"]}
    assert kpis["sales_q"]["value"] in html and kpis["sales_q"]["change"]["text"].endswith("%")
    assert f'data-kpi="sales_q">{kpis["sales_q"]["value"]}' in html
    # The chart: unfold's component, its data as JSON in the canvas, two datasets (this period, the previous).
    canvas = re.search(r'<canvas class="chart"[^>]*data-value="([^"]+)"', html)
    data = json.loads(canvas.group(1).replace("&quot;", '"').replace("&#x27;", "'").replace("&amp;", "&"))
    assert [d["label"] for d in data["datasets"]] == ["This period", "Previous period"] and data["labels"]
    # Chart.js comes from unfold's own static files, no CDN.
    assert "/static/unfold/js/chart/chart.js" in html and not re.search(r'<script[^>]+src="https?://', html)
    assert 'id="report-total"' in html
    assert f"/admin/reports/{name}/export.csv?" in html and f"/admin/reports/{name}/export.xlsx?" in html


def test_the_sales_page_shows_the_book_and_escapes_names(manager, sales):
    response = manager.get(f"/admin/reports/channel/?{FILTER}")
    total = next(row for row in response.context["table"]["rows"] if row["total"])
    assert total["cells"][3]["text"] == f"R${Decimal(sales.sales_q) / 100:.2f}"
    staff = manager.get(f"/admin/reports/adjustments/?{FILTER}").content.decode()
    assert "complaint" in staff and "boss" in staff and 'id="report-entries"' in staff


def test_a_bad_filter_answers_422_with_the_error_in_place(manager, sales):
    response = manager.get("/admin/reports/day/?start=2026-11-10&end=2026-11-01")
    assert response.status_code == 422
    assert "The period ends before it starts." in response.content.decode() and "report" not in response.context
    assert manager.get("/admin/reports/day/?start=yesterday").status_code == 422
    assert manager.get("/admin/reports/day/export.csv?start=2026-11-10&end=2026-11-01").status_code == 422
    assert manager.get("/admin/reports/nope/").status_code == 404
    assert manager.get("/admin/reports/day/export.pdf").status_code == 404


def test_presets_and_the_default_period(manager):
    response = manager.get("/admin/reports/")
    assert response.status_code == 302 and response["Location"] == "/admin/reports/day/"
    response = manager.get("/admin/reports/day/")
    assert response.context["period"].days == 7  # the last 7 days by default
    assert manager.get("/admin/reports/day/?preset=yesterday").context["period"].days == 1
    assert manager.get("/admin/reports/hour/?preset=30d").context["period"].days == 30


def test_exports_parse_back_and_their_totals_equal_the_report(manager, sales):
    for name in sorted(REPORTS):
        check_exports(manager, name)


def check_exports(manager, name):
    report = build_report(name, WEEK)
    money = [column.key for column in report.columns if column.kind == "money"]
    response = manager.get(f"/admin/reports/{name}/export.csv?{FILTER}")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f"omniman-{name}-2026-11-02-2026-11-08.csv" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[-1]["Name"] == "Total" and len(rows) == len(report.rows) + 1
    assert {row["Currency"] for row in rows} == {"BRL"}
    labels = {column.key: str(column.label) for column in report.columns}
    for key in money:
        assert Decimal(rows[-1][labels[key]]) * 100 == report.totals[key]
        assert sum(Decimal(row[labels[key]]) for row in rows[:-1]) == Decimal(rows[-1][labels[key]])
    response = manager.get(f"/admin/reports/{name}/export.xlsx?{FILTER}")
    assert response.status_code == 200 and "spreadsheetml" in response["Content-Type"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.iter_rows(values_only=True))
    header, last = values[0], values[-1]
    assert last[0] == "Total" and len(values) == len(report.rows) + 2
    for key in money:
        column = header.index(labels[key])
        assert round(Decimal(str(last[column])) * 100) == report.totals[key]
        assert sheet.cell(row=len(values), column=column + 1).number_format == "#,##0.00"


def test_the_sales_export_totals_equal_the_summary(manager, sales):
    rows = list(csv.DictReader(io.StringIO(manager.get(f"/admin/reports/day/export.csv?{FILTER}").content.decode())))
    assert Decimal(rows[-1]["Sales"]) * 100 == sales_summary(WEEK)["sales_q"] == sales.sales_q
    assert Decimal(rows[-1]["Sales (previous period)"]) * 100 == sales_summary(WEEK.previous())["sales_q"]


def queries(client, url) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_each_page_runs_a_fixed_number_of_queries(manager):
    counter, tables = channels()
    sell(counter, MONDAY, 9)
    sell(tables, MONDAY - timedelta(days=3), 12)
    pages = {name: f"/admin/reports/{name}/?{FILTER}" for name in sorted(REPORTS)}
    few = {name: queries(manager, url) for name, url in pages.items()}
    # A page is its report's queries (docs/api/reports.rst), the KPI cards of both periods (kpi_summaries: 6) and the
    # admin's own: the session, the user, its groups, the filter's channels and registers, the permissions (2), the
    # failed directives' count.
    from tests.integration.test_reports import QUERIES

    selector = {**QUERIES, "kitchen": 5} if connection.vendor == "postgresql" else QUERIES
    assert few == {name: selector[name] + 6 + 8 for name in pages}
    a_week(counter, tables, MONDAY, per_day=3)
    a_week(counter, tables, MONDAY - timedelta(days=7), per_day=1)
    assert {name: queries(manager, url) for name, url in pages.items()} == few
    for name in pages:
        assert queries(manager, f"/admin/reports/{name}/export.csv?{FILTER}") < few[name]


def test_the_sidebar_has_a_reports_group(manager):
    html = manager.get("/admin/").content.decode()
    assert "Reports" in html
    for path in ("/admin/reports/day/", "/admin/reports/kitchen/", "/admin/reports/adjustments/"):
        assert f'href="{path}"' in html


def test_the_register_filter_lists_the_registers(manager):
    response = manager.get(f"/admin/reports/day/?{FILTER}&register=main")
    assert response.status_code == 200 and response.context["period"].register == "main"
    assert '<option value="main" selected>' in response.content.decode()
    response = manager.get(f"/admin/reports/day/?{FILTER}&register=nope")
    assert response.status_code == 422 and "report" not in response.context
