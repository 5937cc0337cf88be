"""The manager's reports (issue #18): each selector against the sales' own book, the previous period's comparison,
fixed query counts, the period's errors — and the numbers that agree (reports, dashboard, API list of orders)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.exceptions import OmnimanError, ValidationError
from omniman.models import Bill, Order
from omniman.services import (
    REPORTS, Period, build_report, day_totals, kitchen_times, report_period, sales_by_category, sales_by_channel,
    sales_by_day, sales_by_hour, sales_by_method, sales_by_product, sales_by_staff, sales_summary,
)
from omniman.services.reports import adjustments_by_actor, kpi_summaries, kpi_summary, percentile
from tests.report_data import Book, a_week, channels, sell

pytestmark = [pytest.mark.django_db, pytest.mark.contrib("omniman.contrib.payment")]

MONDAY = date(2026, 11, 2)
WEEK = Period(MONDAY, MONDAY + timedelta(days=6))


@pytest.fixture
def two_weeks():
    """A week of sales (the previous period) and the week after it (the period), each with its own book."""
    counter, tables = channels()
    before = a_week(counter, tables, MONDAY - timedelta(days=7), per_day=1)
    now = a_week(counter, tables, MONDAY, per_day=2)
    return before, now


def test_the_summary_is_the_days_totals_added_up_and_the_book(two_weeks):
    before, book = two_weeks
    summary = sales_summary(WEEK)
    days = [day_totals(MONDAY + timedelta(days=n)) for n in range(7)]
    for key in ("sales_q", "gross_q", "payments_q", "tips_q", "refunds_q", "discounts_q", "voids_q", "bills"):
        assert summary[key] == sum(day[key] for day in days), key
    assert summary["sales_q"] == book.sales_q and summary["bills"] == book.bills == 14
    assert summary["refunds_q"] == book.refunds_q > 0 and summary["tips_q"] == book.tips_q > 0
    assert summary["discounts_q"] == book.discounts_q > 0 and summary["voids_q"] == book.voids_q > 0
    assert summary["gross_q"] == summary["orders_q"] + summary["bill_adjustments_q"]
    assert summary["average_q"] == book.sales_q // book.bills
    assert {m: row["amount_q"] for m, row in summary["by_method"].items()} == dict(book.by_method)
    assert sales_summary(WEEK.previous())["sales_q"] == before.sales_q
    # One channel: the figures split without loss.
    split = [sales_summary(Period(WEEK.start, WEEK.end, channel=code))["sales_q"] for code in ("counter", "tables")]
    assert sum(split) == book.sales_q and all(split)


def test_reports_compare_with_the_previous_period(two_weeks):
    before, book = two_weeks
    hourly = sales_by_hour(WEEK)
    assert [row["label"] for row in hourly.rows] == [f"{h:02d}:00" for h in range(24)]
    assert {row["key"]: row["sales_q"] for row in hourly.rows if row["sales_q"]} == dict(book.by_hour)
    assert hourly.totals["sales_q"] == book.sales_q and hourly.totals["previous_sales_q"] == before.sales_q
    assert hourly.totals["delta_sales_q"] == book.sales_q - before.sales_q
    assert hourly.previous == Period(MONDAY - timedelta(days=7), MONDAY - timedelta(days=1))
    daily = sales_by_day(WEEK)
    assert [row["label"] for row in daily.rows] == [(MONDAY + timedelta(days=n)).isoformat() for n in range(7)]
    assert sum(row["sales_q"] for row in daily.rows) == book.sales_q
    assert daily.rows[0]["previous_sales_q"] == sales_summary(Period(MONDAY - timedelta(days=7), MONDAY - timedelta(days=7)))["sales_q"]
    assert all(row["bills"] == 2 for row in daily.rows)
    by_channel = sales_by_channel(WEEK)
    assert {row["key"] for row in by_channel.rows} == {"counter", "tables"}
    assert {row["label"] for row in by_channel.rows} == {"Counter", "Tables"}
    assert by_channel.totals["sales_q"] == book.sales_q and by_channel.totals["previous_sales_q"] == before.sales_q
    for row in by_channel.rows:
        assert row["sales_q"] == row["payments_q"] - row["refunds_q"]
        assert row["pct_sales_q"] is not None
    methods = sales_by_method(WEEK)
    assert {row["key"]: row["amount_q"] for row in methods.rows} == dict(book.by_method)
    assert methods.totals["tip_q"] == book.tips_q
    staff = sales_by_staff(WEEK)
    assert {row["key"]: row["amount_q"] for row in staff.rows if row["amount_q"]} == dict(book.by_staff)
    assert {row["label"] for row in staff.rows} == {"ana", "bia", "boss"}  # the boss refunded
    assert next(row for row in staff.rows if row["key"] == "user:boss")["refunds_q"] == book.refunds_q


def test_products_and_categories_take_voids_off(two_weeks, settings):
    before, book = two_weeks
    products = sales_by_product(WEEK)
    assert {row["key"]: int(row["qty"]) for row in products.rows if row["qty"]} == dict(book.by_sku_qty)
    burger = next(row for row in products.rows if row["key"] == "BURG")
    assert burger["name"] == "Burger" and burger["amount_q"] == burger["qty"] * 3200
    assert products.totals["voided_qty"] > 0
    # Without a category source every product is in "No category".
    categories = sales_by_category(WEEK)
    assert [row["key"] for row in categories.rows] == ["No category"]
    assert categories.totals["amount_q"] == products.totals["amount_q"]
    assert categories.totals["previous_amount_q"] == products.totals["previous_amount_q"] > 0


def test_kitchen_times_per_station_are_percentiles_of_ticket_to_ready(two_weeks):
    before, book = two_weeks
    report = kitchen_times(WEEK)
    rows = {row["key"]: row for row in report.rows}
    assert set(rows) == {"bar", "kitchen", "pastry"}
    for station, seconds in book.kitchen_seconds.items():
        assert rows[station]["done"] == rows[station]["items"] == len(seconds)
        assert rows[station]["p50"] == round(percentile(seconds, 0.5))
        assert rows[station]["p90"] == round(percentile(seconds, 0.9))
        assert rows[station]["previous_done"] > 0
    assert percentile([60, 120, 180, 240], 0.5) == 150 and percentile([60, 120, 180, 240], 0.9) == pytest.approx(222)
    assert percentile([], 0.5) is None


def test_discounts_voids_and_refunds_by_actor(two_weeks):
    before, book = two_weeks
    report = adjustments_by_actor(WEEK)
    boss = next(row for row in report.rows if row["key"] == "user:boss")
    assert boss["discounts_q"] == book.discounts_q and boss["voids_q"] == book.voids_q and boss["refunds_q"] == book.refunds_q
    assert boss["previous_refunds_q"] == before.refunds_q
    entries = report.extra["entries"]
    assert {entry["kind"] for entry in entries} == {"discount", "void", "refund"}
    assert all(entry["actor"] == "user:boss" and entry["reason"] for entry in entries)
    assert sum(entry["amount_q"] for entry in entries if entry["kind"] == "refund") == book.refunds_q


def counted(build, p):
    with CaptureQueriesContext(connection) as queries:
        build(p)
    return len(queries)


# The counts docs/api/reports.rst gives (the previous period's and the currency's included).
QUERIES = {"adjustments": 9, "category": 10, "channel": 8, "day": 5, "hour": 5, "kitchen": 7, "method": 3, "product": 11, "staff": 5}


def test_each_report_runs_a_fixed_number_of_queries():
    counter, tables = channels()
    sell(counter, MONDAY, 9)
    expected = {**QUERIES, "kitchen": 5} if connection.vendor == "postgresql" else QUERIES  # percentile_cont in SQL
    few = {name: counted(build, WEEK) for name, build in REPORTS.items()}
    assert few == expected
    a_week(counter, tables, MONDAY, per_day=3)
    a_week(counter, tables, MONDAY - timedelta(days=7), per_day=1)
    assert {name: counted(build, WEEK) for name, build in REPORTS.items()} == expected
    assert counted(sales_summary, WEEK) == 7
    assert counted(kpi_summary, WEEK) == 6
    assert counted(lambda p: kpi_summaries(p, p.previous(), Period(p.start, p.start)), WEEK) == 6


def test_the_kpi_summary_is_the_summarys_card_figures(two_weeks):
    keys = ("sales_q", "bills", "average_q", "tips_q", "refunds_q", "discounts_q")
    for p in (WEEK, WEEK.previous(), Period(WEEK.start, WEEK.end, channel="counter"), Period(WEEK.start, WEEK.end, register="nope")):
        summary = sales_summary(p)
        assert kpi_summary(p) == {key: summary[key] for key in keys}
    # Several periods in the same queries: each the same as alone (a period, the one before, one inside it).
    for p in (WEEK, Period(WEEK.start, WEEK.end, channel="counter")):
        periods = (p, p.previous(), Period(p.start + timedelta(days=2), p.start + timedelta(days=3), channel=p.channel))
        assert kpi_summaries(*periods) == [kpi_summary(q) for q in periods]
        assert kpi_summaries(*periods)[1]["bills"] > 0
    with pytest.raises(ValueError):
        kpi_summaries(WEEK, Period(WEEK.start, WEEK.end, channel="counter"))


def test_kitchen_times_are_the_same_in_sql_and_in_python(two_weeks):
    from unittest import mock

    from omniman.services import reports

    for p in (WEEK, WEEK.previous(), Period(WEEK.start, WEEK.end, channel="tables")):
        in_database = reports._kitchen(p)
        with mock.patch.object(reports, "connection", mock.Mock(vendor="sqlite")):
            assert reports._kitchen(p) == in_database


def test_product_names_are_the_latest_sold_the_same_in_sql_and_in_python(two_weeks):
    """PostgreSQL takes each SKU's latest name by one index probe (``_names``); other databases read the items: the
    same names. A SKU sold under a new name takes it; an unknown SKU has none."""
    from unittest import mock

    from omniman.models import OrderItem
    from omniman.services import reports

    latest = OrderItem.objects.filter(sku="BURG").order_by("-id").first()
    OrderItem._base_manager.filter(pk=latest.pk).update(name="Burger (new recipe)")  # as if sold last under that name
    skus = ["BURG", "CAP", "ESP", "NOPE"]
    in_database = reports._names(skus)
    assert in_database == {"BURG": "Burger (new recipe)", "CAP": "Cappuccino", "ESP": "Espresso"}
    with mock.patch.object(reports, "connection", mock.Mock(vendor="sqlite")):
        assert reports._names(skus) == in_database


def test_the_period_and_its_errors():
    today = date(2026, 12, 3)
    assert report_period(preset="today", today=today) == Period(today, today)
    assert report_period(preset="yesterday", today=today) == Period(today - timedelta(days=1), today - timedelta(days=1))
    assert report_period(preset="7d", today=today, channel=" counter ") == Period(today - timedelta(days=6), today, channel="counter")
    assert report_period(preset="30d", today=today).days == 30
    assert report_period("2026-11-01", "", today=today) == Period(date(2026, 11, 1), date(2026, 11, 1))
    assert Period(date(2026, 11, 8), date(2026, 11, 14)).previous() == Period(date(2026, 11, 1), date(2026, 11, 7))
    for args, kwargs, field in [
        (("2026-11-10", "2026-11-01"), {}, "end"),
        (("2026-13-01",), {}, "start"),
        (("2025-01-01", "2026-12-01"), {}, "end"),
        ((), {"preset": "90d"}, "preset"),
    ]:
        with pytest.raises(ValidationError) as caught:
            report_period(*args, today=today, **kwargs)
        assert caught.value.code == "invalid_period" and caught.value.context["field"] == field
    with pytest.raises(OmnimanError) as caught:
        build_report("nope", Period(today, today))
    assert caught.value.code == "not_found"


def test_numbers_that_agree_reports_dashboard_and_api(two_weeks, client, django_user_model):
    """For one period, to the cent: the reports' sales == the dashboard's day totals added up == the API's list of
    orders (created in the period) summed, with the bills' own adjustments and the refunds, as the figures define."""
    before, book = two_weeks
    summary = sales_summary(WEEK)
    reports = {name: REPORTS[name](WEEK) for name in ("hour", "day", "channel")}
    assert {r.totals["sales_q"] for r in reports.values()} == {summary["sales_q"]} == {book.sales_q}
    assert sum(day_totals(WEEK.start + timedelta(days=n))["sales_q"] for n in range(7)) == summary["sales_q"]
    assert sum(row["amount_q"] for row in sales_by_method(WEEK).rows) == summary["payments_q"]
    user = django_user_model.objects.create_user("api", password="pw", is_staff=True, is_superuser=True)
    client.force_login(user)
    start, end = WEEK.bounds()
    listed, url = [], f"/api/orders/?created_after={start.isoformat()}&created_before={end.isoformat()}"
    url = url.replace("+", "%2B")
    while url:
        page = client.get(url).json()
        listed += page["results"]
        url = page["next"]
    assert len(listed) == summary["orders"] == Order.objects.filter(bill__status=Bill.Status.SETTLED, created_at__gte=start, created_at__lt=end).count()
    api_orders_q = sum(order["total_q"] for order in listed)
    assert api_orders_q == summary["orders_q"]
    assert api_orders_q + summary["bill_adjustments_q"] - summary["refunds_q"] == summary["sales_q"]


def test_the_register_filter_keeps_its_shifts_payments_and_refunds():
    from omniman.models import Payment, Refund, Register, Shift

    counter, tables = channels()
    book_bar, book_other = Book(), Book()
    bar_bills = [sell(counter, MONDAY, 9, refund_q=100, tip_q=50, book=book_bar), sell(tables, MONDAY, 11, book=book_bar)]
    sell(counter, MONDAY, 10, refund_q=200, book=book_other)
    bar = Shift.objects.create(register=Register.objects.create(code="bar", name="Bar"), currency="BRL")
    Payment._base_manager.filter(bill__in=bar_bills).update(shift=bar)
    Refund._base_manager.filter(payment__bill__in=bar_bills).update(shift=bar)
    summary = sales_summary(Period(WEEK.start, WEEK.end, register="bar"))
    assert (summary["sales_q"], summary["bills"], summary["refunds_q"], summary["tips_q"]) == (
        book_bar.sales_q, 2, book_bar.refunds_q, book_bar.tips_q
    )
    assert summary["orders_q"] + summary["bill_adjustments_q"] == summary["gross_q"]
    assert sales_by_method(Period(WEEK.start, WEEK.end, register="bar")).totals["amount_q"] == summary["payments_q"]
    assert sum(r["done"] for r in kitchen_times(Period(WEEK.start, WEEK.end, register="bar")).rows) == 4
    assert sales_summary(WEEK)["sales_q"] == book_bar.sales_q + book_other.sales_q
    assert sales_summary(Period(WEEK.start, WEEK.end, register="nope"))["bills"] == 0


def test_one_days_sales_through_one_shift_agree_in_the_z_report_the_summary_and_the_day_totals():
    """The Z-report leg of the numbers that agree: a day's sales all go through one shift, closed at the end of the day."""
    from django.utils import timezone

    from omniman.services import ShiftService, current_shift, z_report
    from tests.report_data import Book

    counter, tables = channels()
    tables.config = {**tables.config, "service_charge_percent": 10}
    tables.save()
    ShiftService.open("main", opening_float_q=10000, actor="user:ana")
    day, book = timezone.localdate(), Book()
    for n, method in enumerate(["cash", "card", "pix", "cash", "card", "pix"]):
        sell(tables if n % 2 else counter, day, 9 + n, method=method, tip_q=100 * (n % 2), discount_q=200 * (n == 2),
             void_first=n == 3, refund_q=150 * (n == 4), book=book)
    shift = current_shift("main")
    ShiftService.cash_out(shift.pk, amount_q=2000, reason="Bakery supplier", actor="user:ana", idempotency_key="out-1")
    ShiftService.close(shift.pk, counted_q=z_report(shift.pk)["cash"]["expected_q"], actor="user:ana")

    report = z_report(shift.pk)
    summary = sales_summary(Period(day, day, register="main"))
    totals = day_totals(day)
    assert report["status"] == "closed" and report["bills"] == summary["bills"] == totals["bills"] == 6
    assert report["sales_q"] == summary["gross_q"] == totals["gross_q"] == book.sales_q + book.refunds_q
    assert report["sales_q"] - report["refunds_q"] == summary["sales_q"] == totals["sales_q"] == book.sales_q
    assert report["payments_q"] == summary["payments_q"] == totals["payments_q"]
    by_method = {m: row["amount_q"] for m, row in report["by_method"].items()}
    assert by_method == {m: row["amount_q"] for m, row in summary["by_method"].items()} == dict(book.by_method)
    assert by_method == {m: row["amount_q"] for m, row in totals["by_method"].items()}
    for key in ("tips_q", "refunds_q", "discounts_q", "voids_q", "service_q", "written_off_q"):
        assert report[key] == summary[key] == totals[key], key
    assert report["tips_q"] == book.tips_q == 300 and report["refunds_q"] == book.refunds_q == 150
    assert report["discounts_q"] == book.discounts_q == 200 and report["voids_q"] == book.voids_q > 0
    assert report["service_q"] > 0  # the tables' 10 % service charge
    assert report["order_count"] == summary["orders"] == 6 and report["cash"]["difference_q"] == 0


def test_a_bill_level_service_charge_is_service_in_every_figure():
    """One rule (``adjustment_figures``) for the summary, the day's totals and the Z-report: a service charge is
    service whether the order or the bill carries it."""
    from omniman.services.reports import adjustment_figures

    rows = [{"total_q": 0, "adjustments": [{"kind": "service_charge", "amount_q": 300}, {"kind": "discount", "amount_q": -100},
                                           {"kind": "void", "amount_q": -50}, {"kind": "write_off", "amount_q": -20}]}]
    figures = adjustment_figures(rows, Bill.objects.none())
    assert (figures["service_q"], figures["discounts_q"], figures["voids_q"], figures["written_off_q"]) == (300, 100, 50, 20)
    assert figures["bill_adjustments_q"] == 130 and figures["orders"] == figures["orders_q"] == 0
