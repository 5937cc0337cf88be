"""The manager's reports (issue #18): selectors over a period, each in a fixed number of queries.

A :class:`Period` is a range of local dates (``TIME_ZONE``), ``start``..``end``
inclusive, optionally narrowed to one channel and one register. Every report
reads the same rows the day's totals read (:func:`sales_summary`, which
``day_totals`` calls): **sales** are the totals of the bills *closed* (settled or
written off) in the period, minus the refunds *made* in the period; tips are
apart. Each report is computed for its period and for the **previous period**
of the same length (the days just before), so every figure has a comparison.

Nothing here writes; nothing here knows of HTTP, templates or files (the
admin's report pages and their CSV/XLSX exports build on these results).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date as date_type
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Q, Sum
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import ExtractHour, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from omniman import conf, registry
from omniman.exceptions import OmnimanError, ValidationError
from omniman.models import Bill, Channel, KitchenItem, Order, OrderEvent, OrderItem, Payment, Refund
from omniman.models.session import totals_over

# The longest period a report covers (a year and a day: a leap year's comparison still fits).
MAX_DAYS = 366
INVALID_PERIOD = "invalid_period"
CLOSED = (Bill.Status.SETTLED, Bill.Status.WRITTEN_OFF)
# OrderEvent types the kitchen writes (omniman.services.kitchen; repeated here: that module imports the order services).
KITCHEN_BUMPED = "kitchen.bumped"
KITCHEN_FIRED = "kitchen.fired"


# -- the period -------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Local dates ``start``..``end`` (inclusive), optionally one channel (``channel`` code) and one register (``register`` code)."""

    start: date_type
    end: date_type
    channel: str = ""
    register: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def bounds(self) -> tuple[datetime, datetime]:
        """``[start 00:00, end + 1 day 00:00)`` as aware datetimes in the current time zone."""
        tz = timezone.get_current_timezone()
        start = timezone.make_aware(datetime.combine(self.start, time.min), tz)
        end = timezone.make_aware(datetime.combine(self.end + timedelta(days=1), time.min), tz)
        return start, end

    def previous(self) -> Period:
        """The period of the same length just before this one (same channel and register)."""
        return replace(self, start=self.start - timedelta(days=self.days), end=self.start - timedelta(days=1))

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "channel": self.channel, "register": self.register}


PRESETS = ("today", "yesterday", "7d", "30d")


def period(
    start: date_type | str | None = None,
    end: date_type | str | None = None,
    *,
    preset: str = "",
    channel: str = "",
    register: str = "",
    today: date_type | None = None,
) -> Period:
    """A valid :class:`Period`: from ``start``/``end`` (dates or ISO text; a missing one is the other, both missing is
    today) or from a ``preset`` (``today``, ``yesterday``, ``7d``, ``30d``: the last 7/30 days, today included).

    Errors (``ValidationError``): ``invalid_period`` — a date that is not ``YYYY-MM-DD``, ``end`` before ``start``,
    more than 366 days, or an unknown preset (``context["field"]`` names it).
    """
    today = today or timezone.localdate()
    if preset:
        if preset not in PRESETS:
            raise ValidationError(INVALID_PERIOD, _("Unknown period preset."), {"field": "preset", "presets": list(PRESETS)})
        if preset == "today":
            start = end = today
        elif preset == "yesterday":
            start = end = today - timedelta(days=1)
        else:
            start, end = today - timedelta(days=int(preset[:-1]) - 1), today
    start, end = _date(start, "start"), _date(end, "end")
    start, end = start or end or today, end or start or today
    if end < start:
        raise ValidationError(INVALID_PERIOD, _("The period ends before it starts."), {"field": "end"})
    if (end - start).days + 1 > MAX_DAYS:
        raise ValidationError(INVALID_PERIOD, _("A report covers at most 366 days."), {"field": "end", "max_days": MAX_DAYS})
    return Period(start, end, channel=(channel or "").strip(), register=(register or "").strip())


def _date(value: date_type | str | None, name: str) -> date_type | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date_type):
        return value
    try:
        return date_type.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationError(INVALID_PERIOD, _("Enter a date as YYYY-MM-DD."), {"field": name}) from None


# -- the rows every report reads ---------------------------------------------------


def _closed_bills(p: Period):
    start, end = p.bounds()
    bills = Bill.objects.filter(settled_at__gte=start, settled_at__lt=end, status__in=CLOSED)
    if p.channel:
        bills = bills.filter(channel__code=p.channel)
    if p.register:
        # A bill belongs to the register that took (one of) its payments.
        bills = bills.filter(pk__in=Payment.objects.filter(shift__register__code=p.register).values("bill_id"))
    return bills


def _payments(p: Period, bills=None):
    payments = Payment.objects.filter(bill__in=_closed_bills(p) if bills is None else bills)
    if p.register:
        payments = payments.filter(shift__register__code=p.register)
    return payments


def _refunds(p: Period):
    start, end = p.bounds()
    refunds = Refund.objects.filter(created_at__gte=start, created_at__lt=end)
    if p.channel:
        refunds = refunds.filter(payment__bill__channel__code=p.channel)
    if p.register:
        # The drawer the refund left (``Refund.shift``).
        refunds = refunds.filter(shift__register__code=p.register)
    return refunds


def _live_orders(bills):
    """The orders of ``bills`` that were not cancelled (one query for the channels' cancel statuses)."""
    # A subquery, not a join + DISTINCT over the channels' JSON columns (that DISTINCT cost more than the report).
    channels = Channel.objects.filter(pk__in=bills.order_by().values("channel_id"))
    cancel_statuses = {c.order_flow.cancel_status for c in channels} - {""}
    return Order.objects.filter(bill__in=bills).exclude(status__in=cancel_statuses)


def order_totals(bills) -> Iterable[dict[str, Any]]:
    """What each live order of ``bills`` charged — ``total_q``, ``discount_q``, ``service_q`` — as its snapshot says
    (``Order.totals``), reading only the snapshot's adjustments (or, for an order from before them, its stored
    totals), not its items (two queries)."""
    rows = _live_orders(bills).annotate(
        _adjustments=KeyTransform("adjustments", "snapshot"),
        _stored=KeyTransform("totals", KeyTransform("data", "snapshot")),
    ).values_list("total_q", "_adjustments", "_stored")
    for total_q, adjustments, stored in rows:
        if adjustments is not None:
            applied = adjustments if isinstance(adjustments, list) else []
            yield {
                "total_q": int(total_q),
                "discount_q": -sum(int(a.get("amount_q") or 0) for a in applied if a.get("kind") == "discount"),
                "service_q": sum(int(a.get("amount_q") or 0) for a in applied if a.get("kind") == "service_charge"),
            }
        else:
            yield totals_over(stored, int(total_q))


def adjustment_figures(closed: Iterable[dict[str, Any]], bills) -> dict[str, int]:
    """The one rule for the discounts, voids, write-offs and service charge of a set of closed bills (the sales
    summary, ``day_totals`` and the Z-report all call it): ``closed`` their rows (``total_q``, ``adjustments``),
    ``bills`` the same bills as a queryset (for their orders; two queries).

    ``discounts_q`` (≥ 0) — the bills' ``discount`` adjustments plus their live orders' discounts; ``voids_q``,
    ``written_off_q`` (≥ 0) — the bills' ``void`` / ``write_off`` adjustments; ``service_q`` — the live orders'
    service charge **plus** the bills' own ``service_charge`` adjustments (a service charge is service wherever it
    was applied); ``orders`` / ``orders_q`` — the live orders and what they charged; ``bill_adjustments_q`` — the
    bills' own adjustments, signed (a bill's total is its orders' plus its adjustments)."""
    figures = dict.fromkeys(("discounts_q", "voids_q", "written_off_q", "service_q", "orders", "orders_q", "bill_adjustments_q"), 0)
    negative = {"discount": "discounts_q", "void": "voids_q", "write_off": "written_off_q"}
    for row in closed:
        for adjustment in row["adjustments"] or []:
            amount = int(adjustment.get("amount_q") or 0)
            kind = adjustment.get("kind")
            figures["bill_adjustments_q"] += amount
            if kind in negative:
                figures[negative[kind]] -= amount
            elif kind == "service_charge":
                figures["service_q"] += amount
    for totals in order_totals(bills):
        figures["orders"] += 1
        figures["orders_q"] += int(totals.get("total_q") or 0)
        figures["discounts_q"] += int(totals.get("discount_q") or 0)
        figures["service_q"] += int(totals.get("service_q") or 0)
    return figures


def currency() -> str:
    """The reports' currency: the first active channel's, else ``DEFAULT_CURRENCY`` (one query)."""
    found = Channel.objects.filter(is_active=True).order_by("display_order", "code").first()
    return (found.currency if found is not None else "") or conf.get("DEFAULT_CURRENCY")


# -- the summary (the day's totals, over a period) --------------------------------------


def sales_summary(p: Period) -> dict[str, Any]:
    """The period's money in 7 queries, whatever the number of bills, orders and payments.

    ``sales_q`` — the totals of the bills closed (settled or written off) in the period, minus the refunds made in
    it; ``gross_q`` the closed bills' totals alone; ``payments_q`` what their payments put on them (``amount_q``, tips
    apart); ``tips_q``, ``change_q``, ``tendered_q``; ``refunds_q``; ``discounts_q`` (taken off, ≥ 0, bill- and
    order-level), ``voids_q``, ``written_off_q`` (≥ 0), ``service_q`` (the orders' service charge and the bills' own
    ``service_charge`` adjustments: :func:`adjustment_figures`, the rule the Z-report shares); ``bills`` (closed), ``orders`` (their live
    orders) and ``orders_q`` (what those orders charged), ``bill_adjustments_q`` (the bills' own adjustments, signed:
    ``gross_q == orders_q + bill_adjustments_q``), ``average_q`` (``sales_q`` / ``bills``, rounded down); ``by_method``
    (``{method: {"count", "amount_q", "tip_q"}}``); ``by_channel``
    (``{code: {"bills", "sales_q", "payments_q", "tips_q", "refunds_q"}}``); ``open_bills`` and ``open_paid_q``
    (bills opened in the period and still open, what was paid on them).
    """
    start, end = p.bounds()
    bills = _closed_bills(p)
    payments = _payments(p, bills)
    refunds = _refunds(p)
    open_bills = Bill.objects.filter(status=Bill.Status.OPEN, opened_at__gte=start, opened_at__lt=end)
    if p.channel:
        open_bills = open_bills.filter(channel__code=p.channel)
    if p.register:
        open_bills = open_bills.filter(pk__in=Payment.objects.filter(shift__register__code=p.register).values("bill_id"))
    closed = list(bills.values("total_q", "adjustments", "channel__code"))
    figures = adjustment_figures(closed, bills)
    discounts_q, voids_q, written_off_q, service_q = (figures[k] for k in ("discounts_q", "voids_q", "written_off_q", "service_q"))
    orders, orders_q, bill_adjustments_q = figures["orders"], figures["orders_q"], figures["bill_adjustments_q"]
    by_method: dict[str, dict[str, int]] = {}
    paid = {"amount": 0, "tip": 0, "change": 0, "tendered": 0}
    rows = payments.values("method").annotate(
        count=Count("id"), amount=Sum("amount_q"), tip=Sum("tip_q"), change=Sum("change_q"), tendered=Sum("tendered_q")
    )
    for row in rows.order_by("method"):
        by_method[row["method"]] = {"count": row["count"], "amount_q": int(row["amount"] or 0), "tip_q": int(row["tip"] or 0)}
        for key in paid:
            paid[key] += int(row[key] or 0)
    open_rows = open_bills.aggregate(count=Count("id"), paid=Sum("paid_q"))
    by_channel: dict[str, dict[str, int]] = {}

    def channel_row(code: str) -> dict[str, int]:
        return by_channel.setdefault(code, {"bills": 0, "sales_q": 0, "payments_q": 0, "tips_q": 0, "refunds_q": 0})

    for row in closed:
        entry = channel_row(row["channel__code"])
        entry["bills"] += 1
        entry["sales_q"] += int(row["total_q"])
    for row in payments.values("bill__channel__code").annotate(amount=Sum("amount_q"), tip=Sum("tip_q")).order_by():
        entry = channel_row(row["bill__channel__code"])
        entry["payments_q"] += int(row["amount"] or 0)
        entry["tips_q"] += int(row["tip"] or 0)
    refunds_q = 0
    for row in refunds.values("payment__bill__channel__code").annotate(amount=Sum("amount_q")).order_by():
        entry = channel_row(row["payment__bill__channel__code"])
        entry["refunds_q"] += int(row["amount"] or 0)
        entry["sales_q"] -= int(row["amount"] or 0)
        refunds_q += int(row["amount"] or 0)
    gross_q = sum(int(row["total_q"]) for row in closed)
    return {
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "channel": p.channel or None,
        "register": p.register or None,
        "bills": len(closed),
        "orders": orders,
        "orders_q": orders_q,
        "bill_adjustments_q": bill_adjustments_q,
        "sales_q": gross_q - refunds_q,
        "gross_q": gross_q,
        "average_q": (gross_q - refunds_q) // len(closed) if closed else 0,
        "payments_q": paid["amount"],
        "tips_q": paid["tip"],
        "change_q": paid["change"],
        "tendered_q": paid["tendered"],
        "refunds_q": refunds_q,
        "discounts_q": discounts_q,
        "voids_q": voids_q,
        "service_q": service_q,
        "written_off_q": written_off_q,
        "by_method": by_method,
        "open_bills": int(open_rows["count"] or 0),
        "open_paid_q": int(open_rows["paid"] or 0),
        "by_channel": by_channel,
    }


def _discounted(orders):
    """``orders`` narrowed, on PostgreSQL, to those that can hold a discount: a ``discount`` in their snapshot's
    adjustments, or no adjustments at all (from before them: their stored totals say). The others add nothing to
    a discount figure; other databases read them all (no JSON containment there)."""
    if connection.vendor != "postgresql":
        return orders
    return orders.filter(Q(snapshot__adjustments__contains=[{"kind": "discount"}]) | ~Q(snapshot__has_key="adjustments"))


def kpi_summary(p: Period) -> dict[str, Any]:
    """The figures of :func:`sales_summary` the report pages' cards show — ``sales_q``, ``bills``, ``average_q``,
    ``tips_q``, ``refunds_q``, ``discounts_q`` — with the same values, in 6 queries of SQL aggregates: only the bills
    with adjustments and (on PostgreSQL) only the orders with a discount (or from before adjustments) are read."""
    return kpi_summaries(p)[0]


def kpi_summaries(*periods: Period) -> list[dict[str, Any]]:
    """:func:`kpi_summary` of each period (all of one channel and register, as a period and its ``previous()``), in
    the same 6 queries whatever their number: each figure is aggregated per period (``FILTER``) over the rows of
    the span that covers them all (a cancelled order is one in a cancel status of the span's channels)."""
    if not periods:
        return []
    if len({(q.channel, q.register) for q in periods}) > 1:
        raise ValueError("kpi_summaries: the periods must share their channel and register")
    span = replace(periods[0], start=min(q.start for q in periods), end=max(q.end for q in periods))
    ranges = [q.bounds() for q in periods]
    bills = _closed_bills(span)

    def per_period(prefix: str, field: str, aggregate, value: str):
        return {f"{prefix}{i}": aggregate(value, filter=Q(**{f"{field}__gte": start, f"{field}__lt": end}))
                for i, (start, end) in enumerate(ranges)}

    closed = bills.order_by().aggregate(**per_period("n", "settled_at", Count, "id"),
                                        **per_period("total", "settled_at", Sum, "total_q"))
    tips = _payments(span, bills).order_by().aggregate(**per_period("tip", "bill__settled_at", Sum, "tip_q"))
    refunds = _refunds(span).order_by().aggregate(**per_period("amount", "created_at", Sum, "amount_q"))

    def which(moment) -> list[int]:
        return [i for i, (start, end) in enumerate(ranges) if start <= moment < end]

    discounts = [0] * len(periods)
    for settled_at, adjustments in bills.exclude(adjustments=[]).values_list("settled_at", "adjustments"):
        taken = -sum(int(a.get("amount_q") or 0) for a in adjustments or [] if a.get("kind") == "discount")
        for i in which(settled_at):
            discounts[i] += taken
    rows = _discounted(_live_orders(bills)).annotate(
        _adjustments=KeyTransform("adjustments", "snapshot"),
        _stored=KeyTransform("totals", KeyTransform("data", "snapshot")),
    ).values_list("bill__settled_at", "total_q", "_adjustments", "_stored")
    for settled_at, total_q, adjustments, stored in rows:
        if adjustments is not None:
            applied = adjustments if isinstance(adjustments, list) else []
            taken = -sum(int(a.get("amount_q") or 0) for a in applied if a.get("kind") == "discount")
        else:
            taken = int(totals_over(stored, int(total_q)).get("discount_q") or 0)
        for i in which(settled_at):
            discounts[i] += taken
    out = []
    for i in range(len(periods)):
        count, gross_q = int(closed[f"n{i}"] or 0), int(closed[f"total{i}"] or 0)
        refunds_q = int(refunds[f"amount{i}"] or 0)
        out.append({
            "bills": count,
            "sales_q": gross_q - refunds_q,
            "average_q": (gross_q - refunds_q) // count if count else 0,
            "tips_q": int(tips[f"tip{i}"] or 0),
            "refunds_q": refunds_q,
            "discounts_q": discounts[i],
        })
    return out


# -- reports: rows with their previous period --------------------------------------------

# Column kinds: how a value is shown and written to a file.
MONEY, COUNT, QTY, TEXT, SECONDS, PERCENT = "money", "count", "qty", "text", "seconds", "percent"


@dataclass(frozen=True)
class Column:
    key: str
    label: Any  # lazy translation
    kind: str = MONEY
    compare: bool = False  # has a ``previous_<key>``, ``delta_<key>`` and ``pct_<key>`` in each row and in the totals


@dataclass(frozen=True)
class Report:
    """One report's result: rows (dicts keyed by the columns' keys, plus ``key``), totals, and the previous period's."""

    name: str
    title: Any
    period: Period
    previous: Period
    currency: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    totals: dict[str, Any]
    chart: str = "bar"  # the admin draws it as a bar or line chart of the first compared column
    extra: dict[str, Any] = field(default_factory=dict)

    def compared(self) -> list[Column]:
        return [column for column in self.columns if column.compare]


def _pct(now: int | Decimal, before: int | Decimal) -> Decimal | None:
    """The change in percent, one decimal (``None`` when there was nothing before)."""
    if not before:
        return None
    return (Decimal(now - before) * 100 / Decimal(before)).quantize(Decimal("0.1"))


def _compare(entry: dict[str, Any], before: dict[str, Any] | None, keys: Iterable[str]) -> dict[str, Any]:
    for key in keys:
        now, then = entry.get(key) or 0, (before or {}).get(key) or 0
        entry[f"previous_{key}"] = then
        entry[f"delta_{key}"] = now - then
        entry[f"pct_{key}"] = _pct(now, then)
    return entry


def _grouped(name, title, p: Period, columns: list[Column], compute, *, order=None, chart="bar", label=None) -> Report:
    """A report of groups (``compute(period) -> {key: {column: value}}``), each compared with the previous period."""
    previous = p.previous()
    now, before = compute(p), compute(previous)
    compared = [column.key for column in columns if column.compare]
    summed = [column.key for column in columns if column.kind in (MONEY, COUNT, QTY)]
    keys = list(now) + [key for key in before if key not in now]
    if order is not None:
        keys.sort(key=lambda key: order(key, now.get(key) or {}, before.get(key) or {}))
    rows = []
    for key in keys:
        entry = {column.key: (now.get(key) or {}).get(column.key, 0 if column.kind != TEXT else "") for column in columns}
        entry["key"] = key
        entry["label"] = label(key) if label else ((now.get(key) or before.get(key) or {}).get("label") or key)
        rows.append(_compare(entry, before.get(key), compared))
    totals = {key: sum(row.get(key) or 0 for row in rows) for key in summed}
    previous_totals = {key: sum((row.get(key) or 0) for row in before.values()) for key in summed}
    _compare(totals, previous_totals, compared)
    return Report(name, title, p, previous, currency(), columns, rows, totals, chart)


def _by_time(p: Period, bucket) -> dict[Any, dict[str, int]]:
    """Bills, sales and refunds of ``p`` grouped by ``bucket`` (``ExtractHour`` or ``TruncDate``, in the current time
    zone, computed by the database): bills at the moment they closed, refunds at the moment made (two queries)."""
    groups: dict[Any, dict[str, int]] = {}
    bills = _closed_bills(p).annotate(bucket=bucket("settled_at")).values("bucket").annotate(n=Count("id"), total=Sum("total_q"))
    for row in bills.order_by():
        entry = groups.setdefault(row["bucket"], {"bills": 0, "sales_q": 0, "refunds_q": 0})
        entry["bills"] += row["n"]
        entry["sales_q"] += int(row["total"] or 0)
    refunds = _refunds(p).annotate(bucket=bucket("created_at")).values("bucket").annotate(total=Sum("amount_q"))
    for row in refunds.order_by():
        entry = groups.setdefault(row["bucket"], {"bills": 0, "sales_q": 0, "refunds_q": 0})
        entry["refunds_q"] += int(row["total"] or 0)
        entry["sales_q"] -= int(row["total"] or 0)
    return groups


SALES_COLUMNS = [
    Column("bills", _("Bills"), COUNT, compare=True),
    Column("sales_q", _("Sales"), MONEY, compare=True),
    Column("refunds_q", _("Refunds"), MONEY),
]


def sales_by_hour(p: Period) -> Report:
    """Sales by hour of the day (0–23, local time; a bill counts at the hour it closed, a refund at the hour it was made),
    summed over the period's days: 24 rows, compared with the previous period (5 queries)."""

    def compute(q: Period):
        groups = _by_time(q, ExtractHour)
        return {hour: groups.get(hour, {"bills": 0, "sales_q": 0, "refunds_q": 0}) for hour in range(24)}

    return _grouped("hour", _("Sales by hour"), p, SALES_COLUMNS, compute, order=lambda key, *_: key,
                    label=lambda hour: f"{hour:02d}:00")


def sales_by_day(p: Period) -> Report:
    """Sales by local date, one row per day of the period (days without sales included); each row compared with the
    same day of the previous period (its n-th day) (5 queries)."""

    def compute(q: Period):
        groups = _by_time(q, TruncDate)
        return {
            index: {**groups.get(q.start + timedelta(days=index), {"bills": 0, "sales_q": 0, "refunds_q": 0}),
                    "label": (q.start + timedelta(days=index)).isoformat()}
            for index in range(q.days)
        }

    return _grouped("day", _("Sales by day"), p, SALES_COLUMNS, compute, order=lambda key, *_: key,
                    label=lambda index: (p.start + timedelta(days=index)).isoformat(), chart="line")


def sales_by_channel(p: Period) -> Report:
    """Sales by channel: bills closed, sales (bills' totals minus refunds), payments and tips (8 queries)."""

    columns = [
        Column("bills", _("Bills"), COUNT, compare=True),
        Column("sales_q", _("Sales"), MONEY, compare=True),
        Column("payments_q", _("Payments"), MONEY),
        Column("tips_q", _("Tips"), MONEY),
        Column("refunds_q", _("Refunds"), MONEY),
    ]
    names = dict(Channel.objects.values_list("code", "name"))
    return _grouped("channel", _("Sales by channel"), p, columns, _channel_sales,
                    order=lambda key, now, before: (-(now.get("sales_q") or 0), key), label=lambda code: names.get(code, code))


def _channel_sales(p: Period) -> dict[str, dict[str, int]]:
    """``sales_summary(p)["by_channel"]`` in 3 queries (bills, payments and refunds by channel)."""
    by_channel: dict[str, dict[str, int]] = {}

    def row_of(code: str) -> dict[str, int]:
        return by_channel.setdefault(code, {"bills": 0, "sales_q": 0, "payments_q": 0, "tips_q": 0, "refunds_q": 0})

    bills = _closed_bills(p)
    for row in bills.values("channel__code").annotate(n=Count("id"), total=Sum("total_q")).order_by():
        entry = row_of(row["channel__code"])
        entry["bills"] += row["n"]
        entry["sales_q"] += int(row["total"] or 0)
    for row in _payments(p, bills).values("bill__channel__code").annotate(amount=Sum("amount_q"), tip=Sum("tip_q")).order_by():
        entry = row_of(row["bill__channel__code"])
        entry["payments_q"] += int(row["amount"] or 0)
        entry["tips_q"] += int(row["tip"] or 0)
    for row in _refunds(p).values("payment__bill__channel__code").annotate(amount=Sum("amount_q")).order_by():
        entry = row_of(row["payment__bill__channel__code"])
        entry["refunds_q"] += int(row["amount"] or 0)
        entry["sales_q"] -= int(row["amount"] or 0)
    return by_channel


def _items(p: Period) -> dict[str, dict[str, Any]]:
    """Per SKU: quantity and amount of the live orders' items of the bills closed in ``p``, less what was voided
    (3 queries: the channels' cancel statuses, the items by SKU, the voided lines)."""
    bills = _closed_bills(p)
    live = _live_orders(bills)
    groups: dict[str, dict[str, Any]] = {}
    rows = OrderItem.objects.filter(order__in=live).values("sku").annotate(
        qty=Sum("qty"), amount=Sum("line_total_q"), lines=Count("id")
    ).order_by()
    names: dict[str, str] = {}
    for row in rows:
        groups[row["sku"]] = {"qty": row["qty"] or Decimal(0), "amount_q": int(row["amount"] or 0), "lines": row["lines"]}
    # Voids are bill adjustments naming "<order ref>:<line id>": take their quantities and amounts off the SKU.
    # Only the bills with adjustments are read (on PostgreSQL through the partial index omniman_bill_adjusted).
    voids: dict[tuple[str, str], tuple[Decimal, int]] = {}
    for adjustments in bills.exclude(adjustments=[]).values_list("adjustments", flat=True):
        for adjustment in adjustments or []:
            if adjustment.get("kind") == "void" and ":" in (adjustment.get("line_id") or ""):
                ref, line_id = adjustment["line_id"].rsplit(":", 1)
                qty, amount = voids.get((ref, line_id), (Decimal(0), 0))
                voids[(ref, line_id)] = (qty + Decimal(str(adjustment.get("qty") or 0)), amount - int(adjustment.get("amount_q") or 0))
    # The voided orders' items, by the orders' refs (their unique index), matched to their lines here. With no void
    # the query still runs ("" is no order's ref): the report's query count does not depend on the data.
    refs = sorted({ref for ref, _line in voids}) or [""]
    for row in OrderItem.objects.filter(order__ref__in=refs, order__in=live).values("sku", "name", "order__ref", "line_id"):
        key = (row["order__ref"], row["line_id"])
        if key not in voids:
            continue
        names.setdefault(row["sku"], row["name"])
        qty, amount = voids[key]
        entry = groups.setdefault(row["sku"], {"qty": Decimal(0), "amount_q": 0, "lines": 0})
        entry["qty"] -= qty
        entry["amount_q"] -= amount
        entry["voided_qty"] = entry.get("voided_qty", Decimal(0)) + qty
        entry["voided_q"] = entry.get("voided_q", 0) + amount
    return groups


PRODUCT_COLUMNS = [
    Column("name", _("Product"), TEXT),
    Column("category", _("Category"), TEXT),
    Column("qty", _("Quantity"), QTY, compare=True),
    Column("amount_q", _("Amount"), MONEY, compare=True),
    Column("voided_qty", _("Voided"), QTY),
]


def _names(skus: Iterable[str]) -> dict[str, str]:
    """The latest name each SKU was sold under (one query). On PostgreSQL one probe of the index
    ``omniman_orderitem_sku_latest`` (``sku``, ``id``) per SKU; elsewhere every item of those SKUs is read."""
    skus = sorted(set(skus))
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT s.sku, (SELECT i.name FROM omniman_orderitem i WHERE i.sku = s.sku ORDER BY i.id DESC LIMIT 1) "
                "FROM unnest(%s::text[]) AS s(sku)",
                [skus],
            )
            return {sku: name for sku, name in cursor.fetchall() if name is not None}
    names: dict[str, str] = {}
    for sku, name in OrderItem.objects.filter(sku__in=skus).order_by("sku", "-id").values_list("sku", "name"):
        names.setdefault(sku, name)
    return names


def sales_by_product(p: Period) -> Report:
    """Per product (SKU): quantity sold and amount (line totals, before order and bill discounts and service), voids
    taken off; with its category (the registry's category source, e.g. the catalog) (11 queries)."""

    def compute(q: Period):
        return _items(q)

    report = _grouped("product", _("Sales by product"), p, PRODUCT_COLUMNS, compute,
                      order=lambda key, now, before: (-(now.get("amount_q") or 0), key))
    names = _names(row["key"] for row in report.rows)
    categories = registry.categories_for([row["key"] for row in report.rows])
    for row in report.rows:
        row["name"] = names.get(row["key"]) or row["key"]
        row["label"] = f"{row['name']} ({row['key']})"
        row["category"] = categories.get(row["key"], "")
    return report


def sales_by_category(p: Period) -> Report:
    """Per category (the registry's category source; "No category" when a product has none): quantity and amount, as
    :func:`sales_by_product` counts them (10 queries)."""
    no_category = str(_("No category"))
    items = {q: _items(q) for q in (p, p.previous())}
    categories = registry.categories_for(sorted({sku for found in items.values() for sku in found}))

    def compute(q: Period):
        groups: dict[str, dict[str, Any]] = {}
        for sku, entry in items[q].items():
            name = categories.get(sku) or no_category
            group = groups.setdefault(name, {"qty": Decimal(0), "amount_q": 0, "products": 0})
            group["qty"] += entry["qty"]
            group["amount_q"] += entry["amount_q"]
            group["products"] += 1
        return groups

    columns = [
        Column("products", _("Products"), COUNT),
        Column("qty", _("Quantity"), QTY, compare=True),
        Column("amount_q", _("Amount"), MONEY, compare=True),
    ]
    return _grouped("category", _("Sales by category"), p, columns, compute,
                    order=lambda key, now, before: (-(now.get("amount_q") or 0), key))


def sales_by_method(p: Period) -> Report:
    """Per payment method: payments (count), amount (tips apart) and tips, of the bills closed in the period (3 queries)."""

    def compute(q: Period):
        rows = _payments(q).values("method").annotate(count=Count("id"), amount=Sum("amount_q"), tip=Sum("tip_q")).order_by()
        return {row["method"]: {"count": row["count"], "amount_q": int(row["amount"] or 0), "tip_q": int(row["tip"] or 0)} for row in rows}

    columns = [
        Column("count", _("Payments"), COUNT, compare=True),
        Column("amount_q", _("Amount"), MONEY, compare=True),
        Column("tip_q", _("Tips"), MONEY),
    ]
    return _grouped("method", _("Sales by payment method"), p, columns, compute,
                    order=lambda key, now, before: (-(now.get("amount_q") or 0), key))


def sales_by_staff(p: Period) -> Report:
    """Per staff member — the **payment's actor**, who took the money (``Payment.actor``; "" for payments with none) —:
    payments, amount (tips apart), tips, and the refunds they made in the period (``Refund.actor``) (5 queries)."""

    def compute(q: Period):
        groups: dict[str, dict[str, int]] = {}
        for row in _payments(q).values("actor").annotate(count=Count("id"), amount=Sum("amount_q"), tip=Sum("tip_q")).order_by():
            groups[row["actor"]] = {"count": row["count"], "amount_q": int(row["amount"] or 0), "tip_q": int(row["tip"] or 0), "refunds_q": 0}
        for row in _refunds(q).values("actor").annotate(amount=Sum("amount_q")).order_by():
            entry = groups.setdefault(row["actor"], {"count": 0, "amount_q": 0, "tip_q": 0, "refunds_q": 0})
            entry["refunds_q"] += int(row["amount"] or 0)
        return groups

    columns = [
        Column("count", _("Payments"), COUNT, compare=True),
        Column("amount_q", _("Amount"), MONEY, compare=True),
        Column("tip_q", _("Tips"), MONEY),
        Column("refunds_q", _("Refunds"), MONEY),
    ]
    return _grouped("staff", _("Sales by staff member"), p, columns, compute,
                    order=lambda key, now, before: (-(now.get("amount_q") or 0), key), label=_actor_label)


def _actor_label(actor: str) -> str:
    return actor.split(":", 1)[1] if actor.startswith("user:") else (actor or str(_("(nobody)")))


# -- kitchen times --------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float | None:
    """``percentile_cont``: linear interpolation between the closest ranks (``None`` for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _kitchen(p: Period) -> dict[str, dict[str, Any]]:
    """Per station: items that reached their station's done status (``kitchen_flow.station_done``), and the seconds
    from their ticket (the item's creation, or its firing for a held course) to that bump (4 queries; 2 on PostgreSQL,
    :func:`_kitchen_sql`)."""
    start, end = p.bounds()
    orders = Order.objects.filter(created_at__gte=start, created_at__lt=end)
    if p.channel:
        orders = orders.filter(channel__code=p.channel)
    if p.register:
        orders = orders.filter(bill__in=Bill.objects.filter(pk__in=Payment.objects.filter(shift__register__code=p.register).values("bill_id")))
    done_by_channel = {channel.pk: channel.kitchen_flow.station_done for channel in Channel.objects.all()}
    if connection.vendor == "postgresql":
        return _kitchen_sql(orders, done_by_channel)
    items = {
        row["pk"]: row
        for row in KitchenItem.objects.filter(order__in=orders).values("pk", "order_id", "line_id", "station", "created_at", "order__channel_id")
    }
    fired: dict[tuple[int, str], datetime] = {}
    ready: dict[int, datetime] = {}
    # Only the bumps that reach a station's done status (and the firings): the others are not read.
    wanted = Q(type=KITCHEN_FIRED) | Q(type=KITCHEN_BUMPED, payload__to__in=sorted(set(done_by_channel.values())))
    events = OrderEvent.objects.filter(wanted, order__in=orders).order_by("created_at", "id")
    for event in events.values("order_id", "type", "payload", "created_at"):
        payload = event["payload"] or {}
        if event["type"] == KITCHEN_FIRED:
            for line_id in payload.get("line_ids") or []:
                fired.setdefault((event["order_id"], line_id), event["created_at"])
            continue
        for pk in payload.get("items") or []:
            item = items.get(pk)
            if item is not None and payload.get("to") == done_by_channel.get(item["order__channel_id"]):
                ready.setdefault(pk, event["created_at"])
    groups: dict[str, dict[str, Any]] = {}
    for pk, item in items.items():
        entry = groups.setdefault(item["station"], {"items": 0, "done": 0, "seconds": []})
        entry["items"] += 1
        if pk in ready:
            ticket = fired.get((item["order_id"], item["line_id"]), item["created_at"])
            entry["done"] += 1
            entry["seconds"].append(max((ready[pk] - ticket).total_seconds(), 0.0))
    for entry in groups.values():
        seconds = entry.pop("seconds")
        entry["p50"] = _round(percentile(seconds, 0.5))
        entry["p90"] = _round(percentile(seconds, 0.9))
    return groups


def _kitchen_sql(orders, done_by_channel: dict[int, str]) -> dict[str, dict[str, Any]]:
    """:func:`_kitchen`'s groups computed by PostgreSQL (``percentile_cont``) in one query: the same rows, the same
    rule (an item's first bump to its channel's done status; its ticket the first firing of its line, else its
    creation), without loading the items and events into Python."""
    if not done_by_channel:
        return {}
    order_sql, order_params = orders.order_by().values("id", "channel_id").query.sql_with_params()
    done_sql = ", ".join(["(%s::bigint, %s::text)"] * len(done_by_channel))
    done_params = [value for pair in done_by_channel.items() for value in pair]
    sql = f"""
        WITH orders AS ({order_sql}),
        done(channel_id, status) AS (VALUES {done_sql}),
        items AS (
            SELECT k.id, k.order_id, k.line_id, k.station, k.created_at, d.status AS done
            FROM orders o JOIN omniman_kitchenitem k ON k.order_id = o.id LEFT JOIN done d ON d.channel_id = o.channel_id
        ),
        bumps AS (
            SELECT (item.value)::bigint AS item_id, e.payload ->> 'to' AS status, MIN(e.created_at) AS at
            FROM omniman_orderevent e CROSS JOIN LATERAL jsonb_array_elements_text(
                CASE WHEN jsonb_typeof(e.payload -> 'items') = 'array' THEN e.payload -> 'items' ELSE '[]'::jsonb END) AS item
            WHERE e.type = %s AND e.order_id IN (SELECT id FROM orders) AND e.payload ->> 'to' = ANY(%s)
            GROUP BY 1, 2
        ),
        fired AS (
            SELECT e.order_id, line.value AS line_id, MIN(e.created_at) AS at
            FROM omniman_orderevent e CROSS JOIN LATERAL jsonb_array_elements_text(
                CASE WHEN jsonb_typeof(e.payload -> 'line_ids') = 'array' THEN e.payload -> 'line_ids' ELSE '[]'::jsonb END) AS line
            WHERE e.type = %s AND e.order_id IN (SELECT id FROM orders)
            GROUP BY 1, 2
        ),
        timed AS (
            SELECT i.station, b.at AS ready,
                   CASE WHEN b.at IS NOT NULL  -- GREATEST(NULL, 0) is 0: an item not done has no time
                        THEN GREATEST(EXTRACT(EPOCH FROM (b.at - COALESCE(f.at, i.created_at)))::double precision, 0) END AS seconds
            FROM items i
            LEFT JOIN bumps b ON b.item_id = i.id AND b.status = i.done
            LEFT JOIN fired f ON f.order_id = i.order_id AND f.line_id = i.line_id
        )
        SELECT station, COUNT(*), COUNT(ready),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds), percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
        FROM timed GROUP BY station
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [*order_params, *done_params, KITCHEN_BUMPED, sorted(set(done_by_channel.values())), KITCHEN_FIRED])
        rows = cursor.fetchall()
    return {station: {"items": count, "done": done, "p50": _round(p50), "p90": _round(p90)}
            for station, count, done, p50, p90 in rows}


def _round(value: float | None) -> int:
    return int(round(value)) if value is not None else 0


def kitchen_times(p: Period) -> Report:
    """Per kitchen station, for the items of the orders created in the period: items, items done, and the time from
    ticket to done (``ready`` by default) at the 50th and 90th percentiles (seconds; 7 queries, 5 on PostgreSQL).
    Percentiles are ``percentile_cont``'s (linear interpolation): PostgreSQL's own, in Python on other databases
    (the same results)."""
    columns = [
        Column("items", _("Items"), COUNT),
        Column("done", _("Done"), COUNT, compare=True),
        Column("p50", _("Ticket to ready, p50"), SECONDS, compare=True),
        Column("p90", _("Ticket to ready, p90"), SECONDS, compare=True),
    ]
    report = _grouped("kitchen", _("Kitchen times"), p, columns, _kitchen, order=lambda key, *_: key,
                      label=lambda station: station or str(_("(no station)")))
    # Percentiles do not add up: the totals are over every station's items (the same rows, once more).
    return report


# -- discounts, voids and refunds by actor -----------------------------------------------------


def _adjustments(p: Period) -> tuple[dict[str, dict[str, int]], list[dict[str, Any]]]:
    """Per actor: discounts, voids, write-offs (bills closed in ``p``, bill- and order-level) and refunds (made in
    ``p``); and every such entry (newest first) (4 queries)."""
    bills = _closed_bills(p)
    groups: dict[str, dict[str, int]] = {}
    entries: list[dict[str, Any]] = []

    def add(actor: str, kind: str, amount: int, *, reason: str, at: Any, ref: str) -> None:
        entry = groups.setdefault(actor, {"discounts": 0, "discounts_q": 0, "voids": 0, "voids_q": 0, "write_offs": 0,
                                          "written_off_q": 0, "refunds": 0, "refunds_q": 0})
        count, total = {"discount": ("discounts", "discounts_q"), "void": ("voids", "voids_q"),
                        "write_off": ("write_offs", "written_off_q"), "refund": ("refunds", "refunds_q")}[kind]
        entry[count] += 1
        entry[total] += amount
        entries.append({"actor": actor, "kind": kind, "amount_q": amount, "reason": reason, "at": at, "ref": ref})

    for bill in bills.exclude(adjustments=[]).values("ref", "adjustments", "settled_at"):
        for adjustment in bill["adjustments"] or []:
            if adjustment.get("kind") in ("discount", "void", "write_off"):
                add(adjustment.get("actor") or "", adjustment["kind"], -int(adjustment.get("amount_q") or 0),
                    reason=adjustment.get("reason") or "", at=adjustment.get("at") or bill["settled_at"].isoformat(), ref=bill["ref"])
    orders = _discounted(_live_orders(bills)).annotate(_adjustments=KeyTransform("adjustments", "snapshot"))
    for ref, created_at, adjustments in orders.values_list("ref", "created_at", "_adjustments"):
        for adjustment in adjustments if isinstance(adjustments, list) else []:
            if adjustment.get("kind") == "discount" and int(adjustment.get("amount_q") or 0):
                add(adjustment.get("actor") or "", "discount", -int(adjustment.get("amount_q") or 0),
                    reason=adjustment.get("reason") or "", at=adjustment.get("at") or created_at.isoformat(), ref=ref)
    for refund in _refunds(p).values("actor", "amount_q", "reason", "created_at", "payment__bill__ref"):
        add(refund["actor"], "refund", int(refund["amount_q"]), reason=refund["reason"], at=refund["created_at"].isoformat(),
            ref=refund["payment__bill__ref"])
    entries.sort(key=lambda entry: str(entry["at"]), reverse=True)
    return groups, entries


def adjustments_by_actor(p: Period) -> Report:
    """Per actor (who gave the discount, voided, wrote off or refunded): counts and amounts (positive, taken off), compared
    with the previous period; ``extra["entries"]`` lists the period's entries (actor, kind, amount_q, reason, at, ref),
    newest first (9 queries)."""
    entries: list[dict[str, Any]] = []

    def compute(q: Period):
        groups, found = _adjustments(q)
        if q == p:
            entries.extend(found)
        return groups

    columns = [
        Column("discounts", _("Discounts"), COUNT),
        Column("discounts_q", _("Discounted"), MONEY, compare=True),
        Column("voids", _("Voids"), COUNT),
        Column("voids_q", _("Voided"), MONEY, compare=True),
        Column("write_offs", _("Write-offs"), COUNT),
        Column("written_off_q", _("Written off"), MONEY),
        Column("refunds", _("Refunds"), COUNT),
        Column("refunds_q", _("Refunded"), MONEY, compare=True),
    ]
    report = _grouped("adjustments", _("Discounts, voids and refunds"), p, columns, compute,
                      order=lambda key, *_: key, label=_actor_label)
    report.extra["entries"] = entries
    return report


REPORTS = {
    "hour": sales_by_hour,
    "day": sales_by_day,
    "channel": sales_by_channel,
    "product": sales_by_product,
    "category": sales_by_category,
    "method": sales_by_method,
    "staff": sales_by_staff,
    "kitchen": kitchen_times,
    "adjustments": adjustments_by_actor,
}


def report(name: str, p: Period) -> Report:
    """The report called ``name`` (a key of ``REPORTS``) over ``p``; ``not_found`` for another name."""
    try:
        build = REPORTS[name]
    except KeyError:
        raise OmnimanError("not_found", _("No such report."), {"report": name, "reports": list(REPORTS)}) from None
    return build(p)
