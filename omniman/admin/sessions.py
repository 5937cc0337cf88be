"""Sessions: read-only, with their checks and issues; abandoning goes through the kernel."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from unfold.contrib.filters.admin import RelatedDropdownFilter
from unfold.decorators import display

from omniman.admin.base import ReadOnlyAdmin, ServiceActionsMixin
from omniman.admin.renderers import (
    SESSION_BADGES,
    admin_link,
    badge,
    badges,
    handle_text,
    nowrap,
    pretty_json,
    price_override_text,
    qty_text,
    table,
    when,
)
from omniman.exceptions import OmnimanError
from omniman.models import Order, Session
from omniman.monetary import format_money
from omniman.roles import actor_of
from omniman.services import SessionService


def check_rows(session: Session) -> list[tuple[str, str, str, dict]]:
    """(code, label, state, check) for the channel's required checks and any other check present (``Session.check_states``)."""
    return [(c.code, c.label, c.state, c.check) for c in session.check_states(every=True)]


def _checked_at(value: Any) -> str:
    try:
        return when(datetime.fromisoformat(str(value)))
    except ValueError:
        return "—" if value is None else str(value)


CHECK_BADGES = {"ok": "success", "missing": "", "stale": "warning", "expired": "warning", "issues": "danger", "failed": "danger"}


@admin.register(Session)
class SessionAdmin(ServiceActionsMixin, ReadOnlyAdmin):
    list_display = ("session_key", "channel", "handle", "state_badge", "items_count", "total", "checks_badges", "issues_badge", "updated")
    list_filter = (("state", admin.ChoicesFieldListFilter), ("channel", RelatedDropdownFilter))
    search_fields = ("session_key", "handle_ref", "data__customer__name", "data__customer__phone")
    search_help_text = _("Session key, table/handle, customer name or phone.")
    list_select_related = ("channel",)
    actions = ("abandon_selected",)
    fieldsets = (
        (None, {"fields": ("session_key", "channel", "handle", "state_view", "rev", "pricing_policy", "edit_policy", "order", "opened_at", "updated_at", "committed_at")}),
        (_("Items"), {"fields": ("items_table", "total")}),
        (_("Checks and issues"), {"fields": ("checks_table", "issues_table")}),
        (_("Other data"), {"fields": ("data_view",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "session_key", "channel", "handle", "state_view", "rev", "pricing_policy", "edit_policy", "order",
        "opened_at", "updated_at", "committed_at", "items_table", "total", "checks_table", "issues_table", "data_view",
    )
    change_form_outer_before_template = "admin/omniman/session/review_panel.html"
    review_actions = ("abandon",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel")

    @display(description=_("State"), ordering="state", label=SESSION_BADGES)
    def state_badge(self, obj):
        return obj.state, obj.get_state_display()

    @display(description=_("State"))
    def state_view(self, obj):
        return badge(obj.get_state_display(), SESSION_BADGES.get(obj.state, ""))

    @display(description=_("Table / handle"), ordering="handle_ref")
    def handle(self, obj):
        return handle_text(obj)

    @display(description=_("Items"))
    def items_count(self, obj):
        return obj.items_count

    @display(description=_("Total"), ordering="total_q")
    def total(self, obj):
        return nowrap(format_money(obj.total_q, obj.channel.currency))

    @display(description=_("Updated"), ordering="updated_at")
    def updated(self, obj):
        return when(obj.updated_at)

    @display(description=_("Checks"))
    def checks_badges(self, obj):
        return badges([(f"{code} {state}", CHECK_BADGES.get(state, "")) for code, _label, state, _c in check_rows(obj)])

    @display(description=_("Issues"))
    def issues_badge(self, obj):
        issues = obj.issues
        if not issues:
            return "—"
        blocking = sum(1 for issue in issues if issue.get("severity") == "blocking")
        others = len(issues) - blocking
        parts = [ngettext("%(n)s blocking", "%(n)s blocking", blocking) % {"n": blocking}] if blocking else []
        if others:
            parts.append(ngettext("%(n)s warning", "%(n)s warnings", others) % {"n": others})
        return badge(", ".join(parts), "danger" if blocking else "warning")

    @display(description=_("Order"))
    def order(self, obj):
        if obj.state != Session.State.COMMITTED:
            return "—"
        row = Order.objects.filter(session_key=obj.session_key).values_list("pk", "ref").first()
        return admin_link("order", row[0], row[1]) if row else "—"

    @display(description=_("Items"))
    def items_table(self, obj):
        currency = obj.channel.currency
        rows = []
        for item in obj.items:
            meta = item.get("meta") or {}
            notes = [str(meta["note"])] if meta.get("note") else []
            if meta.get("price_override"):
                override = meta["price_override"]
                notes.append(price_override_text(override))
            rows.append([
                item.get("line_id"), item.get("sku"), item.get("name") or "", qty_text(item.get("qty")),
                format_money(item.get("unit_price_q") or 0, currency), format_money(item.get("line_total_q") or 0, currency),
                "; ".join(notes) or "—",
            ])
        return table([_("Line"), _("SKU"), _("Name"), _("Qty"), _("Unit price"), _("Line total"), _("Notes")], rows)

    @display(description=_("Checks"))
    def checks_table(self, obj):
        rows = []
        for code, label, state, check in check_rows(obj):
            result = check.get("result")
            rows.append([
                f"{label} ({code})",
                badge(state, CHECK_BADGES.get(state, "")),
                check.get("rev", "—"),
                _checked_at(check.get("checked_at")),
                json.dumps(result, ensure_ascii=False, default=str)[:300] if result else "—",
            ])
        return table([_("Check"), _("State"), _("For rev"), _("Checked at"), _("Result")], rows)

    @display(description=_("Issues"))
    def issues_table(self, obj):
        rows = []
        for issue in obj.issues:
            severity = issue.get("severity", "")
            rows.append([
                badge(severity or "—", "danger" if severity == "blocking" else "warning"),
                issue.get("source", ""),
                issue.get("code", ""),
                issue.get("message", ""),
                " ".join(str(issue[k]) for k in ("line_id", "sku") if issue.get(k)) or "—",
                ", ".join(str(a.get("label") or a.get("id")) for a in issue.get("actions") or []) or "—",
            ])
        return table([_("Severity"), _("Source"), _("Code"), _("Message"), _("Line"), _("Resolutions")], rows)

    @display(description=_("Data"))
    def data_view(self, obj):
        return pretty_json({k: v for k, v in (obj.data or {}).items() if k not in ("checks", "issues")})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["review"] = {
                "state_badge": badge(obj.get_state_display(), SESSION_BADGES.get(obj.state, "")),
                "checks": self.checks_badges(obj),
                "issues": [
                    {"badge": badge(i.get("severity", ""), "danger" if i.get("severity") == "blocking" else "warning"), "message": i.get("message") or i.get("code")}
                    for i in obj.issues
                ],
                "is_open": obj.is_open,
                "can_manage": self.has_manage_permission(request, obj),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _abandon(self, request, session) -> bool:
        try:
            SessionService.abandon_session(session.session_key, session.channel.code, actor=actor_of(request.user))
        except OmnimanError as exc:
            messages.error(
                request,
                _("Session %(key)s was not abandoned: %(reason)s") % {"key": session.session_key, "reason": exc.message or exc.code},
            )
            return False
        self.log_change(request, session, "Abandoned through SessionService.abandon_session.")
        return True

    def abandon_view(self, request, object_id):
        session = self.get_review_object(request, object_id)
        if self._abandon(request, session):
            messages.success(request, _("Session %(key)s abandoned.") % {"key": session.session_key})
        return self.back_to(session)

    @admin.action(description=_("Abandon selected open sessions"), permissions=["manage"])
    def abandon_selected(self, request, queryset):
        sessions = list(queryset)
        done = sum(1 for session in sessions if session.is_open and self._abandon(request, session))
        skipped = sum(1 for session in sessions if not session.is_open)
        text = ngettext("%(n)s session abandoned.", "%(n)s sessions abandoned.", done) % {"n": done}
        if skipped:
            text += " " + ngettext(
                "%(n)s was not open and was left as it is.", "%(n)s were not open and were left as they are.", skipped
            ) % {"n": skipped}
        messages.info(request, text)
