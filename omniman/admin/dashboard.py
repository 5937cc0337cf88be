"""The manager review's dashboard (``UNFOLD["DASHBOARD_CALLBACK"]``).

Today's orders by channel and status, the day's money (``day_totals``: the one
sales figure), the directive queue's health and the open sessions — a fixed handful of queries, whatever the volume.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from omniman import conf
from omniman.models import Channel, Directive, Order, Session, WorkerHeartbeat
from omniman.monetary import format_money
from omniman.services import day_totals

# Columns in the order a status is usually reached; statuses a channel adds come after.
STATUS_ORDER = ["new", "confirmed", "processing", "ready", "dispatched", "delivered", "completed", "returned", "cancelled"]


def start_of_today() -> datetime:
    """Midnight, in the project's time zone."""
    return timezone.make_aware(datetime.combine(timezone.localdate(), time.min))


def _changelist(model: str, **params: Any) -> str:
    url = reverse(f"admin:omniman_{model}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def orders_today(money: dict[str, Any] | None = None) -> dict[str, Any]:
    """Today's orders: one row per channel, one column per status, with counts — and each channel's sales
    as the day's totals have them (``omniman.services.day_totals``: settled bills minus refunds)."""
    since = start_of_today()
    rows = Order.objects.filter(created_at__gte=since).values("channel_id", "status").annotate(n=Count("id")).order_by()
    channels = {c.pk: c for c in Channel.objects.all()}
    money = money if money is not None else day_totals()
    counts: dict[int, dict[str, int]] = {}
    statuses: set[str] = set()
    for row in rows:
        counts.setdefault(row["channel_id"], {}).setdefault(row["status"], 0)
        counts[row["channel_id"]][row["status"]] += row["n"]
        statuses.add(row["status"])
    by_code = {c.code: c.pk for c in channels.values()}
    for code in money["by_channel"]:  # a channel that sold today (bills settled) without an order today
        if code in by_code:
            counts.setdefault(by_code[code], {})
    columns = sorted(statuses, key=lambda s: (STATUS_ORDER.index(s) if s in STATUS_ORDER else len(STATUS_ORDER), s))
    day = {"created_at_from": since.date().isoformat(), "created_at_to": since.date().isoformat()}
    table = []
    for channel_id in sorted(counts, key=lambda pk: (channels[pk].display_order, channels[pk].code)):
        channel = channels[channel_id]
        cells = []
        for status in columns:
            n = counts[channel_id].get(status, 0)
            link = _changelist("order", channel__id__exact=channel_id, status=status, **day) if n else ""
            cells.append({"count": n, "link": link})
        table.append(
            {
                "channel": channel,
                "link": _changelist("order", channel__id__exact=channel_id, **day),
                "cells": cells,
                "total": sum(counts[channel_id].values()),
                "sales": _sales_text(money["by_channel"].get(channel.code), channel.currency),
            }
        )
    return {
        "columns": columns,
        "rows": table,
        "total": sum(row["total"] for row in table),
        "link": _changelist("order", **day),
    }


def _sales_text(row: dict[str, int] | None, currency: str) -> str:
    return format_money(row["sales_q"], currency) if row else "—"


def money_today(money: dict[str, Any]) -> dict[str, Any]:
    """The day's money card: sales (settled bills minus refunds), tips apart, payments by method, change, refunds."""
    currency = next((c.currency for c in Channel.objects.filter(is_active=True).order_by("display_order", "code")[:1]), "")
    currency = currency or conf.get("DEFAULT_CURRENCY")

    def money_text(amount: int) -> str:
        return format_money(amount, currency)

    return {
        "sales": money_text(money["sales_q"]),
        "payments": money_text(money["payments_q"]),
        "tips": money_text(money["tips_q"]),
        "change": money_text(money["change_q"]),
        "refunds": money_text(money["refunds_q"]),
        "discounts": money_text(money["discounts_q"]),
        "service": money_text(money["service_q"]),
        "written_off": money_text(money["written_off_q"]),
        "bills": money["bills"],
        "open_bills": money["open_bills"],
        "by_method": [
            {"method": method, "count": row["count"], "amount": money_text(row["amount_q"]), "tips": money_text(row["tip_q"])}
            for method, row in sorted(money["by_method"].items())
        ],
        "totals": money,
    }


def directive_health() -> dict[str, Any]:
    """Failed directives, and how long the oldest due, queued one has been waiting."""
    now = timezone.now()
    by_status = dict(Directive.objects.values_list("status").annotate(n=Count("id")).order_by())
    due = Directive.objects.filter(status=Directive.Status.QUEUED, available_at__lte=now).aggregate(
        n=Count("id"), oldest=Min("available_at")
    )
    waiting = now - due["oldest"] if due["oldest"] else None
    return {
        "failed": by_status.get(Directive.Status.FAILED, 0),
        "failed_link": _changelist("directive", status__exact=Directive.Status.FAILED),
        "queued": by_status.get(Directive.Status.QUEUED, 0),
        "running": by_status.get(Directive.Status.RUNNING, 0),
        "due": due["n"],
        "oldest_wait": waiting,
        "oldest_wait_text": describe_age(waiting),
        "late": waiting is not None and waiting > timedelta(minutes=5),
        "queued_link": _changelist("directive", status__exact=Directive.Status.QUEUED),
        "recent_failures": [
            {"pk": d.pk, "topic": d.topic, "error": (d.last_error.strip().splitlines() or [""])[0], "updated_at": d.updated_at}
            for d in Directive.objects.filter(status=Directive.Status.FAILED)
            .order_by("-updated_at", "-id")
            .only("id", "topic", "last_error", "updated_at")[:5]
        ],
    }


WORKER_COMMAND = "python manage.py process_directives --watch"


def worker_health(now=None, *, due: int = 0) -> dict[str, Any]:
    """The directive workers' heartbeats: how many beat within ``HEALTH_WORKER_AGE_SECONDS``, and the
    freshest few; ``missing`` when none has (on a database where one ever ran) — as ``/healthz`` judges.

    ``warning`` says it plainly when nothing is processing the directives: no worker beat within the
    threshold (``missing``), or none ever ran while ``due`` directives wait.
    """
    now = now or timezone.now()
    threshold = int(conf.get("HEALTH_WORKER_AGE_SECONDS"))
    summary = WorkerHeartbeat.objects.summary(within=timedelta(seconds=threshold), now=now)
    unseen = now - summary["last_seen"] if summary["last_seen"] else None
    missing = threshold > 0 and unseen is not None and not summary["alive"]
    warning = ""
    if missing:
        warning = gettext(
            "No directive worker has been seen for %(seconds)s s — directives are not being processed. Start one with “%(command)s”."
        ) % {"seconds": int(unseen.total_seconds()), "command": WORKER_COMMAND}
    elif unseen is None and due:
        warning = gettext(
            "No directive worker has run on this database — %(due)s directives are waiting. Start one with “%(command)s”."
        ) % {"due": due, "command": WORKER_COMMAND}
    return {
        "warning": warning,
        "alive": summary["alive"],
        "ever": summary["last_seen"] is not None,
        "missing": missing,
        "unseen_seconds": int(unseen.total_seconds()) if unseen is not None else None,
        "unseen_text": describe_age(unseen) if unseen is not None else "",
        "threshold_seconds": threshold,
        "recent": [
            {"name": beat.name, "seen_text": describe_age(now - beat.last_seen_at), "processed": beat.processed}
            for beat in WorkerHeartbeat.objects.order_by("-last_seen_at", "name")[:3]
        ],
        "link": _changelist("workerheartbeat"),
    }


def describe_age(delta: timedelta | None) -> str:
    if delta is None:
        return str(_("nothing waiting"))
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return gettext("%(s)s s") % {"s": seconds}
    if seconds < 3600:
        return gettext("%(m)s min") % {"m": seconds // 60}
    if seconds < 86400:
        return gettext("%(h)s h %(m)s min") % {"h": seconds // 3600, "m": seconds % 3600 // 60}
    return gettext("%(d)s d %(h)s h") % {"d": seconds // 86400, "h": seconds % 86400 // 3600}


def dashboard_callback(request, context: dict[str, Any]) -> dict[str, Any]:
    money = day_totals()
    directives = directive_health()
    context.update(
        {
            "orders_today": orders_today(money),
            "money_today": money_today(money),
            "directives": directives,
            "workers": worker_health(due=directives["due"]),
            "open_sessions": Session.objects.filter(state=Session.State.OPEN).count(),
            "open_sessions_link": _changelist("session", state__exact=Session.State.OPEN),
            "today": timezone.localdate(),
            "title": _("Dashboard"),
        }
    )
    return context
