"""Small renderers the manager review's pages share: badges, tables, JSON, links, times."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from omniman import formatting
from omniman.texts import handle_label

STATUS_BADGES = {
    "new": "info",
    "confirmed": "primary",
    "processing": "warning",
    "ready": "success",
    "dispatched": "info",
    "delivered": "success",
    "returned": "warning",
    "cancelled": "danger",
}
SESSION_BADGES = {"open": "info", "committed": "success", "abandoned": "warning"}
DIRECTIVE_BADGES = {"queued": "info", "running": "warning", "done": "success", "failed": "danger"}
IDEMPOTENCY_BADGES = {"in_progress": "warning", "done": "success", "failed": "danger"}
PRE_STYLE = "white-space: pre-wrap; word-break: break-word; font-family: ui-monospace, monospace; font-size: 12px; margin: 0"


def badge(text: Any, variant: str = "") -> str:
    return render_to_string("unfold/helpers/label.html", {"text": text, "type": variant})


def badges(items: list[tuple[Any, str]]) -> str:
    return mark_safe(" ".join(badge(text, variant) for text, variant in items)) if items else "—"


def pretty_json(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html('<pre style="{}">{}</pre>', PRE_STYLE, text)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """Rows as unfold's table component (cells are escaped unless marked safe)."""
    if not rows:
        return "—"
    return mark_safe(render_to_string("unfold/components/table.html", {"table": {"headers": headers, "rows": rows}}))


def admin_link(model: str, pk: Any, text: Any) -> str:
    if pk is None:
        return str(text)
    return format_html('<a class="text-primary-600" href="{}">{}</a>', reverse(f"admin:omniman_{model}_change", args=[pk]), text)


def nowrap(text: Any, title: str = "") -> str:
    return format_html('<span style="white-space: nowrap" title="{}">{}</span>', title, text)


def when(value: datetime | None) -> str:
    """A compact local time in the active language: ``10:25:32`` today (``10:25:32 AM`` in en),
    ``26 de nov. de 2026 10:25`` before (the full instant on hover)."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        text = formatting.format_time(local, format="medium")
    else:
        text = formatting.format_datetime(local, format="medium")
    return nowrap(text, title=local.isoformat(timespec="seconds"))


def qty_text(qty: Any) -> str:
    """A quantity in the active language (``2``, ``0.5``; ``0,5`` in pt-br), as the POS writes it."""
    return formatting.format_qty(qty)


def customer_text(data: dict[str, Any]) -> str:
    customer = (data or {}).get("customer") or {}
    if not isinstance(customer, dict):
        return str(customer)
    return " · ".join(str(customer[k]) for k in ("name", "phone", "email") if customer.get(k)) or "—"


def handle_text(obj) -> str:
    if not obj.handle_ref:
        return "—"
    return f"{handle_label(obj.handle_type)} {obj.handle_ref}".strip()


def price_override_text(override: dict[str, Any]) -> str:
    """A line's manual price change, as the order and session pages show it."""
    return _("price overridden %(from)s → %(to)s (%(reason)s)") % {
        "from": override.get("from"), "to": override.get("to"), "reason": override.get("reason", ""),
    }
