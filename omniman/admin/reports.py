"""The manager's report pages and their CSV/XLSX exports (issue #18), under ``/admin/reports/``.

Each page: parse the filter (dates or a preset, channel, register) → one report selector
(``omniman.services.build_report``) and the period's money (``kpi_summaries``, sales_summary's card figures) → render a
view-model (cells already formatted) with unfold's cards and Chart.js charts (served from unfold's static files).
The exports write the same report: amounts as decimal money with a currency column, and a totals row.
Manager role only: the views are wrapped in ``admin_site.admin_view`` (the site lets only managers in).
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from omniman.exceptions import OmnimanError
from omniman.models import Channel, Register
from omniman.monetary import format_money, minor_units
from omniman.services import REPORTS, Period, Report, build_report, kpi_summaries, report_period

# The pages, in the sidebar's order: (name, title, icon).
PAGES = [
    ("day", _("Sales by day"), "calendar_month"),
    ("hour", _("Sales by hour"), "schedule"),
    ("channel", _("Sales by channel"), "hub"),
    ("product", _("Sales by product"), "coffee"),
    ("category", _("Sales by category"), "category"),
    ("method", _("Payment methods"), "credit_card"),
    ("staff", _("Staff"), "badge"),
    ("kitchen", _("Kitchen times"), "timer"),
    ("adjustments", _("Discounts, voids, refunds"), "percent"),
]
PRESETS = [("today", _("Today")), ("yesterday", _("Yesterday")), ("7d", _("Last 7 days")), ("30d", _("Last 30 days"))]
FORMATS = ("csv", "xlsx")


class ReportFilterForm(forms.Form):
    """The filter every report page and export reads (GET)."""

    preset = forms.ChoiceField(label=_("Period"), required=False, choices=[("", _("Dates below")), *PRESETS])
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    channel = forms.ChoiceField(label=_("Channel"), required=False)
    register = forms.ChoiceField(label=_("Register"), required=False)

    def __init__(self, *args, channels: list[tuple[str, str]], registers: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", _("All channels")), *channels]
        self.fields["register"].choices = [("", _("All registers")), *registers]

    def period(self) -> Period | None:
        """The valid period, or ``None`` with the errors on the form (``invalid_period`` named on its field)."""
        if not self.is_valid():
            return None
        data = self.cleaned_data
        if not data["preset"] and not data["start"] and not data["end"]:
            data["preset"] = "7d"
        try:
            return report_period(
                data["start"], data["end"], preset=data["preset"], channel=data["channel"], register=data["register"]
            )
        except OmnimanError as error:
            field = error.context.get("field")
            self.add_error(field if field in self.fields else None, error.message)
            return None


def _filter(request) -> tuple[ReportFilterForm, Period | None]:
    channels = list(Channel.objects.order_by("display_order", "code").values_list("code", "name"))
    registers = [(code, name or code) for code, name in Register.objects.order_by("code").values_list("code", "name")]
    form = ReportFilterForm(request.GET or None, channels=channels, registers=registers)
    if not request.GET:
        return form, report_period(preset="7d")
    return form, form.period()


# -- formatting -------------------------------------------------------------------------


def _money_units(amount_q: int, currency: str) -> Decimal:
    """Cents → decimal money (``1250`` → ``Decimal("12.50")``)."""
    places = minor_units(currency)
    return (Decimal(int(amount_q)) / (Decimal(10) ** places)).quantize(Decimal(1).scaleb(-places))


def _duration(seconds: int) -> str:
    seconds = int(seconds or 0)
    minutes, rest = divmod(seconds, 60)
    return gettext("%(m)s min %(s)02d s") % {"m": minutes, "s": rest} if minutes else gettext("%(s)s s") % {"s": rest}


def _cell(value: Any, kind: str, currency: str) -> str:
    if kind == "money":
        return format_money(int(value or 0), currency)
    if kind == "qty":
        return f"{Decimal(value or 0).normalize():f}"
    if kind == "seconds":
        return _duration(value) if value else "—"
    return str(value if value is not None else "")


# Figures where more is worse: their rise shows red, their fall green.
LOWER_IS_BETTER = {"refunds_q", "discounts_q", "voids_q", "written_off_q", "discounts", "voids", "write_offs", "refunds", "p50", "p90"}


def _change(pct: Decimal | None, delta: Any, key: str = "") -> dict[str, Any]:
    """A comparison as the page shows it: ``+12.5 %``, ``-3.0 %``, ``new`` (nothing before); ``trend`` is ``good``,
    ``bad`` or ``flat`` (a rise is bad for refunds, discounts, voids, kitchen times)."""
    if pct is None:
        text, sign = (gettext("new"), 1) if delta else ("—", 0)
    else:
        text, sign = f"{'+' if pct > 0 else ''}{pct} %", (pct > 0) - (pct < 0)
    if key in LOWER_IS_BETTER:
        sign = -sign
    return {"text": text, "trend": "good" if sign > 0 else "bad" if sign < 0 else "flat"}


# -- the page ---------------------------------------------------------------------------


def _kpis(p: Period, currency: str) -> list[dict[str, Any]]:
    """The period's money beside the previous period's: sales, bills, average ticket, tips, refunds, discounts."""
    now, before = kpi_summaries(p, p.previous())  # both periods in the same 6 queries
    cards = [
        ("sales_q", _("Sales"), "money"),
        ("bills", _("Bills"), "count"),
        ("average_q", _("Average ticket"), "money"),
        ("tips_q", _("Tips"), "money"),
        ("refunds_q", _("Refunds"), "money"),
        ("discounts_q", _("Discounts"), "money"),
    ]
    out = []
    for key, title, kind in cards:
        value, previous = now[key], before[key]
        pct = None if not previous else (Decimal(value - previous) * 100 / Decimal(previous)).quantize(Decimal("0.1"))
        out.append({
            "key": key, "title": title, "value": _cell(value, kind, currency), "previous": _cell(previous, kind, currency),
            "change": _change(pct, value - previous, key),
        })
    return out


def _chart(report: Report) -> str:
    """Chart.js data for unfold's chart components: the first compared column, this period against the previous."""
    column = report.compared()[1] if report.name in ("hour", "day", "channel") else report.compared()[0]
    if report.name == "kitchen":
        column = next(c for c in report.columns if c.key == "p50")
    rows = report.rows if report.name in ("hour", "day") else report.rows[:15]  # the top 15 of a ranking

    def number(value: Any) -> float:
        if column.kind == "money":
            return float(_money_units(int(value or 0), report.currency))
        if column.kind == "seconds":
            return round(float(value or 0) / 60, 1)
        return float(value or 0)

    data = {
        "labels": [str(row["label"]) for row in rows],
        "datasets": [
            {"label": str(_("This period")), "data": [number(row[column.key]) for row in rows],
             "backgroundColor": "var(--color-primary-600)", "borderColor": "var(--color-primary-600)"},
            {"label": str(_("Previous period")), "data": [number(row[f"previous_{column.key}"]) for row in rows],
             "backgroundColor": "var(--color-base-300)", "borderColor": "var(--color-base-400)"},
        ],
    }
    return json.dumps(data)


def _chart_options(report: Report) -> str:
    """Chart.js options (unfold's defaults are for sparklines): a legend, both periods' bars side by side, a y axis
    titled with the figure and its unit."""
    column = report.compared()[1] if report.name in ("hour", "day", "channel") else report.compared()[0]
    if report.name == "kitchen":
        column = next(c for c in report.columns if c.key == "p50")
    unit = {"money": report.currency, "seconds": gettext("minutes")}.get(column.kind, "")
    muted = "#9ca3af"
    return json.dumps({
        "animation": False,
        "responsive": True,
        "maintainAspectRatio": False,
        "maxBarThickness": 32,
        "datasets": {"bar": {"borderRadius": 4}, "line": {"borderWidth": 2, "pointRadius": 3}},
        "plugins": {"legend": {"display": True, "align": "end", "position": "top", "labels": {"color": muted}},
                    "tooltip": {"enabled": True}},
        "scales": {
            "x": {"grid": {"display": False}, "ticks": {"color": muted}},
            "y": {"beginAtZero": True, "grid": {"color": "rgba(156,163,175,0.25)"}, "ticks": {"color": muted},
                  "title": {"display": True, "color": muted, "text": f"{column.label} ({unit})" if unit else str(column.label)}},
        },
    })


# A table cell's classes: by alignment, and by trend for a comparison (a month's product table has ~1,000 cells:
# the classes and the "was …" title are made here once, not worked out by the template cell by cell).
_CELL = " px-3 py-2 whitespace-nowrap"
_TREND = {"good": " text-green-700 dark:text-green-400", "bad": " text-red-600", "flat": " text-base-500"}


def _table_cell(text: str, *, numeric: bool, trend: str = "", previous: str = "") -> dict[str, Any]:
    css = ("text-right" if numeric else "text-left") + _CELL + _TREND.get(trend, "")
    title = gettext("was %(value)s") % {"value": previous} if previous else ""
    return {"text": text, "numeric": numeric, "trend": trend, "css": css, "title": title}


def _table(report: Report) -> dict[str, Any]:
    """Headers and formatted rows (a comparison cell after each compared column, its title the previous value), and
    the totals row; each cell with its ``css`` classes."""
    headers = [str(_("Name"))]
    for column in report.columns:
        headers.append(str(column.label))
        if column.compare:
            headers.append(gettext("vs previous"))
    rows = []
    for row in [*report.rows, {**report.totals, "label": gettext("Total"), "total": True}]:
        cells = [_table_cell(str(row["label"]), numeric=False)]
        for column in report.columns:
            if row.get("total") and column.key not in row:
                cells.append(_table_cell("", numeric=True))
                if column.compare:
                    cells.append(_table_cell("", numeric=True))
                continue
            cells.append(_table_cell(_cell(row.get(column.key), column.kind, report.currency), numeric=column.kind != "text"))
            if column.compare:
                change = _change(row.get(f"pct_{column.key}"), row.get(f"delta_{column.key}"), column.key)
                cells.append(_table_cell(change["text"], numeric=True, trend=change["trend"],
                                         previous=_cell(row.get(f"previous_{column.key}"), column.kind, report.currency)))
        rows.append({"cells": cells, "total": bool(row.get("total"))})
    return {"headers": headers, "rows": rows}


def _when(value: Any) -> str:
    """An entry's ISO time as local ``YYYY-MM-DD HH:MM``."""
    from datetime import datetime

    from django.utils import timezone

    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def _query(request, **extra) -> str:
    params = {key: value for key, value in request.GET.items() if key in ReportFilterForm.base_fields and value}
    params.update(extra)
    return urlencode(params)


@require_GET
def report_view(request, name: str, admin_site=None):
    """One report page: ``/admin/reports/<name>/?preset=&start=&end=&channel=&register=``."""
    if name not in REPORTS:
        raise Http404(name)
    form, p = _filter(request)
    context: dict[str, Any] = {
        **admin_site.each_context(request),
        "title": dict((n, t) for n, t, _i in PAGES)[name],
        "form": form,
        "tabs": [
            {"title": title, "link": f"{reverse('admin:report', args=[page])}?{_query(request)}", "active": page == name}
            for page, title, _icon in PAGES
        ],
        "presets": [{"title": title, "link": f"{reverse('admin:report', args=[name])}?{urlencode({'preset': key, **({'channel': request.GET['channel']} if request.GET.get('channel') else {})})}",
                     "active": request.GET.get("preset", "" if request.GET else "7d") == key} for key, title in PRESETS],
        "name": name,
    }
    status = 200
    if p is None:
        status = 422
    else:
        report = build_report(name, p)
        context.update(
            period=p,
            report=report,
            kpis=_kpis(p, report.currency),
            chart=_chart(report),
            chart_options=_chart_options(report),
            chart_type=report.chart,
            table=_table(report),
            entries=[
                {**entry, "at": _when(entry["at"]), "actor": entry["actor"].split(":", 1)[-1], "amount": format_money(entry["amount_q"], report.currency),
                 "kind_label": {"discount": gettext("Discount"), "void": gettext("Void"), "write_off": gettext("Write-off"),
                                "refund": gettext("Refund")}[entry["kind"]]}
                for entry in report.extra.get("entries", [])[:200]
            ],
            exports=[
                {"title": fmt.upper(), "link": f"{reverse('admin:report-export', args=[name, fmt])}?{_query(request)}"}
                for fmt in FORMATS
            ],
        )
    return TemplateResponse(request, "admin/omniman/reports/report.html", context, status=status)


# -- exports ----------------------------------------------------------------------------------


def export_rows(report: Report) -> tuple[list[str], list[list[Any]]]:
    """The file's header and rows: the name, each column (and its previous period's value when compared), the
    currency; money as ``Decimal`` units; the last row is the totals."""
    header = [gettext("Name")]
    for column in report.columns:
        header.append(str(column.label))
        if column.compare:
            header.append(gettext("%(column)s (previous period)") % {"column": column.label})
    header.append(gettext("Currency"))

    def value(row: dict[str, Any], key: str, kind: str) -> Any:
        raw = row.get(key)
        if raw is None or raw == "":
            return "" if kind == "text" or key not in row else 0
        if kind == "money":
            return _money_units(int(raw), report.currency)
        if kind == "qty":
            return Decimal(raw).normalize()
        return raw

    rows = []
    for row in [*report.rows, {**report.totals, "label": gettext("Total")}]:
        line = [str(row["label"])]
        for column in report.columns:
            line.append(value(row, column.key, column.kind) if column.key in row else "")
            if column.compare:
                line.append(value(row, f"previous_{column.key}", column.kind) if f"previous_{column.key}" in row else "")
        line.append(report.currency)
        rows.append(line)
    return header, rows


def _filename(report: Report, fmt: str) -> str:
    return f"omniman-{report.name}-{report.period.start.isoformat()}-{report.period.end.isoformat()}.{fmt}"


def export_csv(report: Report) -> bytes:
    header, rows = export_rows(report)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([f"{cell:f}" if isinstance(cell, Decimal) else cell for cell in row])
    return out.getvalue().encode("utf-8")


def export_xlsx(report: Report) -> bytes:
    import openpyxl

    header, rows = export_rows(report)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = str(report.name)[:31]
    sheet.append(header)
    places = minor_units(report.currency)
    money_format = "#,##0" + ("." + "0" * places if places else "")
    money_columns = set(_money_keys(report))
    for row in rows:
        sheet.append(row)
        for index, cell in enumerate(sheet[sheet.max_row]):
            if index in money_columns:
                cell.number_format = money_format
    for cell in sheet[sheet.max_row]:
        cell.font = openpyxl.styles.Font(bold=True)
    for cell in sheet[1]:
        cell.font = openpyxl.styles.Font(bold=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _money_keys(report: Report) -> list[str]:
    """The file columns' kinds, by position: "money" where a money value is."""
    kinds = ["text"]
    for column in report.columns:
        kinds.append(column.kind)
        if column.compare:
            kinds.append(column.kind)
    return [index for index, kind in enumerate(kinds) if kind == "money"]


@require_GET
def export_view(request, name: str, fmt: str, admin_site=None):
    """``/admin/reports/<name>/export.<csv|xlsx>?<the page's filter>``: the report as a file (422 on a bad filter)."""
    if name not in REPORTS or fmt not in FORMATS:
        raise Http404(name)
    form, p = _filter(request)
    if p is None:
        return HttpResponse("\n".join(f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()),
                            status=422, content_type="text/plain; charset=utf-8")
    report = build_report(name, p)
    if fmt == "csv":
        response = HttpResponse(export_csv(report), content_type="text/csv; charset=utf-8")
    else:
        response = HttpResponse(
            export_xlsx(report), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    response["Content-Disposition"] = f'attachment; filename="{_filename(report, fmt)}"'
    return response


def report_urls(admin_site) -> list:
    """The report URLs for ``ManagerAdminSite.get_urls`` (each behind ``admin_view``: managers only)."""
    from functools import partial

    from django.urls import path

    return [
        path("reports/", admin_site.admin_view(lambda request: _first(request)), name="reports"),
        path("reports/<slug:name>/", admin_site.admin_view(partial(report_view, admin_site=admin_site)), name="report"),
        path("reports/<slug:name>/export.<slug:fmt>", admin_site.admin_view(partial(export_view, admin_site=admin_site)),
             name="report-export"),
    ]


def _first(request):
    from django.shortcuts import redirect

    return redirect("admin:report", PAGES[0][0])


def sidebar_group() -> dict[str, Any]:
    """The sidebar's "Reports" group."""
    return {
        "title": _("Reports"),
        "separator": True,
        "items": [{"title": title, "icon": icon, "link": reverse("admin:report", args=[name])} for name, title, icon in PAGES],
    }


__all__ = ["report_view", "export_view", "report_urls", "sidebar_group", "export_rows", "export_csv", "export_xlsx", "PAGES"]
