"""The manager review: the kernel's models in the django-unfold admin.

Only managers enter (see ``omniman.admin_site``). No admin form bypasses a
service: ``rev``, items, snapshot, status and totals are read-only here. What
a manager changes goes through the kernel:

* an order's status — ``OrderService.transition`` with the status the page
  showed as ``expected_status`` (a stale page gets a message, never a change);
* a note on an order — ``events.note_added`` (an ``OrderEvent("note")``);
* abandoning a session — ``SessionService.abandon_session``;
* running or retrying directives — ``omniman.admin_actions`` (the engine's claim);
* a channel's config — validated before it is saved (``channel_config_problems``).

Every list and detail page runs a bounded number of queries, whatever its rows.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.validators import EMPTY_VALUES
from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline
from unfold.contrib.filters.admin import DropdownFilter, RangeDateFilter, RelatedDropdownFilter
from unfold.decorators import display
from unfold.utils import parse_date_str
from unfold.widgets import UnfoldAdminTextareaWidget

from omniman import admin_actions, registry
from omniman.admin_site import has_manager_access, is_manager
from omniman.exceptions import InvalidTransition, OmnimanError
from omniman.flow import build_order_flow, validate_order_flow
from omniman.models import Channel, Directive, IdempotencyKey, Order, OrderEvent, OrderItem, Session
from omniman.monetary import format_money
from omniman.services import OrderService, SessionService, events
from omniman.roles import actor_of, roles_of

# The whole admin is the manager review: managers only.
admin.site.has_permission = has_manager_access

NOTE_MAX_LENGTH = 2000

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


# -- small renderers ------------------------------------------------------------


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
    """A compact local time: ``10:25:32`` today, ``26 Nov 2026 10:25`` before (the full instant on hover)."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    text = local.strftime("%H:%M:%S") if local.date() == timezone.localdate() else formats.date_format(local, "j M Y H:i")
    return nowrap(text, title=local.isoformat(timespec="seconds"))


def qty_text(qty: Any) -> str:
    text = str(qty)
    return text.rstrip("0").rstrip(".") if "." in text else text


# -- who may do what ------------------------------------------------------------


class ManagerOnly:
    """Permissions follow the manager role rather than per-model permissions,
    so adding a user to the ``manager`` group is all it takes."""

    def has_view_permission(self, request, obj=None):
        return is_manager(request.user)

    def has_add_permission(self, request, obj=None):
        return is_manager(request.user)

    def has_change_permission(self, request, obj=None):
        return is_manager(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_manager(request.user)


class NoWrites:
    """Nobody adds, changes or deletes here: only services write these rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ManagerAdmin(ManagerOnly, ModelAdmin):
    """Managers view and edit; nobody else sees the model (the site refuses them anyway)."""

    def has_module_permission(self, request):
        return is_manager(request.user)

    def has_manage_permission(self, request, obj=None):
        """For actions that go through a service (transitions, abandon, run now)."""
        return is_manager(request.user)


class ReadOnlyAdmin(NoWrites, ManagerAdmin):
    """Managers look; only services write."""


class ManagerInline(ManagerOnly, TabularInline):
    """An editable inline of a ``ManagerAdmin``: managers only."""


class ReadOnlyInline(NoWrites, ManagerInline):
    """Rows a manager reads on their parent's page; nobody writes them here."""

    hide_title = True
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


class ServiceActionsMixin:
    """POST-only views next to a change page; each one calls a service and redirects back."""

    review_actions: tuple[str, ...] = ()

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        extra = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(require_POST(getattr(self, f"{name}_view"))),
                name=f"{info[0]}_{info[1]}_{name}",
            )
            for name in self.review_actions
        ]
        return extra + super().get_urls()

    def get_review_object(self, request, object_id):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} {object_id!r}.")
        return obj

    def back_to(self, obj):
        return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk]))


# -- list filters ------------------------------------------------------------------


class CreatedOnFilter(RangeDateFilter):
    """Days (in the project's time zone), both ends included."""

    def queryset(self, request, queryset):
        filters = {}
        for suffix, lookup in (("_from", "gte"), ("_to", "lt")):
            value = self.used_parameters.get(self.parameter_name + suffix)
            if value in EMPTY_VALUES:
                continue
            day = parse_date_str(value) if isinstance(value, str) else None
            if day is None:
                return queryset.none()
            if lookup == "lt":
                day += timedelta(days=1)
            filters[f"{self.field_path}__{lookup}"] = timezone.make_aware(datetime.combine(day, time.min))
        return queryset.filter(**filters)


class OrderStatusFilter(DropdownFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        statuses = Order.objects.order_by("status").values_list("status", flat=True).distinct()
        return [(status, status.replace("_", " ").capitalize()) for status in statuses]

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


class DirectiveTopicFilter(DropdownFilter):
    title = "topic"
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        topics = Directive.objects.order_by("topic").values_list("topic", flat=True).distinct()
        return [(topic, topic) for topic in topics]

    def queryset(self, request, queryset):
        return queryset.filter(topic=self.value()) if self.value() else queryset


# -- orders ------------------------------------------------------------------------


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("line_id", "sku", "name", "quantity", "unit_price", "line_total", "notes")
    readonly_fields = fields
    verbose_name = "item"
    verbose_name_plural = "items"

    @display(description="Qty")
    def quantity(self, obj):
        return qty_text(obj.qty)

    @display(description="Unit price")
    def unit_price(self, obj):
        return format_money(obj.unit_price_q, obj.order.currency)

    @display(description="Line total")
    def line_total(self, obj):
        return format_money(obj.line_total_q, obj.order.currency)

    @display(description="Notes")
    def notes(self, obj):
        meta = obj.meta or {}
        parts = []
        if meta.get("note"):
            parts.append(str(meta["note"]))
        override = meta.get("price_override")
        if override:
            parts.append(f"price overridden {override.get('from')} → {override.get('to')} ({override.get('reason', '')})")
        return "; ".join(parts) or "—"


def event_summary(event: OrderEvent) -> str:
    payload = event.payload or {}
    if event.type == events.STATUS_CHANGED:
        text = f"{payload.get('from')} → {payload.get('to')}"
        return f"{text} ({payload['reason']})" if payload.get("reason") else text
    if event.type == events.NOTE:
        return str(payload.get("text", ""))
    if event.type == events.CREATED:
        return f"status {payload.get('status')}, {payload.get('items_count')} items, rev {payload.get('rev')}"
    if event.type == events.PRICE_OVERRIDDEN:
        return f"{payload.get('sku')}: {payload.get('from')} → {payload.get('to')} ({payload.get('reason', '')})"
    return json.dumps(payload, ensure_ascii=False, default=str)


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("at", "type", "actor", "summary")
    readonly_fields = fields
    verbose_name = "event"
    verbose_name_plural = "timeline"

    @display(description="At")
    def at(self, obj):
        local = timezone.localtime(obj.created_at)
        return nowrap(formats.date_format(local, "j M Y H:i:s"), title=local.isoformat())

    @display(description="What happened")
    def summary(self, obj):
        return event_summary(obj)


def _customer(data: dict[str, Any]) -> str:
    customer = (data or {}).get("customer") or {}
    if not isinstance(customer, dict):
        return str(customer)
    return " · ".join(str(customer[k]) for k in ("name", "phone", "email") if customer.get(k)) or "—"


def _handle(obj) -> str:
    if not obj.handle_ref:
        return "—"
    return f"{obj.handle_type} {obj.handle_ref}".strip()


TIMESTAMPS = ("confirmed_at", "processing_at", "ready_at", "dispatched_at", "delivered_at", "completed_at", "cancelled_at")


@admin.register(Order)
class OrderAdmin(ServiceActionsMixin, ReadOnlyAdmin):
    list_display = ("order_ref", "channel", "status_badge", "handle", "customer", "items_count", "total", "created")
    list_display_links = ("order_ref",)
    list_filter = (("channel", RelatedDropdownFilter), OrderStatusFilter, ("created_at", CreatedOnFilter))
    list_filter_submit = True
    search_fields = ("ref", "handle_ref", "external_ref", "session_key", "snapshot__data__customer__phone", "snapshot__data__customer__name")
    search_help_text = "Ref, table/handle, external ref, session key, customer phone or name."
    list_select_related = ("channel",)
    date_hierarchy = "created_at"
    inlines = (OrderItemInline, OrderEventInline)
    fieldsets = (
        (None, {"fields": ("ref", "channel", "status_view", "handle", "external_ref", "session", "customer", "total", "created_at", "updated_at")}),
        ("Status timestamps", {"fields": TIMESTAMPS, "classes": ("collapse",)}),
        ("Snapshot (as committed)", {"fields": ("snapshot_view",), "classes": ("collapse",)}),
    )
    readonly_fields = ("ref", "channel", "status_view", "handle", "external_ref", "session", "customer", "total", "created_at", "updated_at", *TIMESTAMPS, "snapshot_view")
    change_form_outer_before_template = "admin/omniman/order/review_panel.html"
    review_actions = ("transition", "note")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel")

    def get_formset_kwargs(self, request, obj, inline, prefix):
        kwargs = super().get_formset_kwargs(request, obj, inline, prefix)
        if obj is not None and inline.model is OrderItem:
            kwargs["queryset"] = obj.items.all()  # each row knows its order (its currency): no query per row
        return kwargs

    @display(description="Status", ordering="status", label=STATUS_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.channel.term(obj.status)

    @display(description="Status")
    def status_view(self, obj):
        return badge(obj.channel.term(obj.status), STATUS_BADGES.get(obj.status, ""))

    @display(description="Ref", ordering="ref")
    def order_ref(self, obj):
        return nowrap(obj.ref)

    @display(description="Table / handle", ordering="handle_ref")
    def handle(self, obj):
        return _handle(obj)

    @display(description="Created", ordering="created_at")
    def created(self, obj):
        return when(obj.created_at)

    @display(description="Customer")
    def customer(self, obj):
        return _customer((obj.snapshot or {}).get("data"))

    @display(description="Items")
    def items_count(self, obj):
        return len((obj.snapshot or {}).get("items") or [])

    @display(description="Total", ordering="total_q")
    def total(self, obj):
        return nowrap(format_money(obj.total_q, obj.currency))

    @display(description="Session")
    def session(self, obj):
        if not obj.session_key:
            return "—"
        pk = Session.objects.filter(session_key=obj.session_key).values_list("pk", flat=True).first()
        return admin_link("session", pk, obj.session_key)

    @display(description="Snapshot")
    def snapshot_view(self, obj):
        return pretty_json(obj.snapshot)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            flow, roles = obj.flow, roles_of(request.user)
            context["review"] = {
                "status": obj.status,
                "status_badge": badge(obj.channel.term(obj.status), STATUS_BADGES.get(obj.status, "")),
                "terminal": obj.is_terminal,
                "next": [
                    {"status": s, "label": obj.channel.term(s), "danger": s == flow.cancel_status}
                    for s in obj.get_allowed_transitions()
                    if flow.may_transition(roles, obj.status, s)
                ],
                "can_manage": self.has_manage_permission(request, obj),
                "note_max_length": NOTE_MAX_LENGTH,
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def transition_view(self, request, object_id):
        order = self.get_review_object(request, object_id)
        new_status = request.POST.get("status", "")
        expected = request.POST.get("expected_status", "")
        reason = request.POST.get("reason", "").strip()
        if not new_status or not expected:
            messages.error(request, "The form was incomplete: nothing was changed. Reload the page and try again.")
            return self.back_to(order)
        try:
            OrderService.transition(
                order.ref, new_status, actor=actor_of(request.user), expected_status=expected, reason=reason, roles=roles_of(request.user)
            )
        except InvalidTransition as exc:
            if exc.code == "forbidden_transition":
                messages.error(request, f"Your role may not move order {order.ref} to {order.channel.term(new_status)!r}. Nothing was changed.")
            elif exc.code == "stale_status":
                current = exc.context.get("current_status")
                messages.error(
                    request,
                    f"Order {order.ref} changed meanwhile: it is now {order.channel.term(current)!r}, "
                    f"not {order.channel.term(expected)!r}. Nothing was changed; check it and choose again.",
                )
            else:
                messages.error(request, f"Order {order.ref} cannot move to {new_status!r} from where it is. Nothing was changed.")
            return self.back_to(order)
        except OmnimanError as exc:
            messages.error(request, f"Nothing was changed: {exc.message or exc.code}")
            return self.back_to(order)
        messages.success(request, f"Order {order.ref}: {order.channel.term(expected)} → {order.channel.term(new_status)}.")
        return self.back_to(order)

    def note_view(self, request, object_id):
        order = self.get_review_object(request, object_id)
        text = request.POST.get("text", "").strip()
        if not text:
            messages.error(request, "A note needs some text.")
        elif len(text) > NOTE_MAX_LENGTH:
            messages.error(request, f"A note has at most {NOTE_MAX_LENGTH} characters; nothing was saved.")
        else:
            events.note_added(order, actor=actor_of(request.user), text=text)
            messages.success(request, f"Note added to order {order.ref}.")
        return self.back_to(order)


# -- sessions ----------------------------------------------------------------------


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
    search_help_text = "Session key, table/handle, customer name or phone."
    list_select_related = ("channel",)
    actions = ("abandon_selected",)
    fieldsets = (
        (None, {"fields": ("session_key", "channel", "handle", "state_view", "rev", "pricing_policy", "edit_policy", "order", "opened_at", "updated_at", "committed_at")}),
        ("Items", {"fields": ("items_table", "total")}),
        ("Checks and issues", {"fields": ("checks_table", "issues_table")}),
        ("Other data", {"fields": ("data_view",), "classes": ("collapse",)}),
    )
    readonly_fields = (
        "session_key", "channel", "handle", "state_view", "rev", "pricing_policy", "edit_policy", "order",
        "opened_at", "updated_at", "committed_at", "items_table", "total", "checks_table", "issues_table", "data_view",
    )
    change_form_outer_before_template = "admin/omniman/session/review_panel.html"
    review_actions = ("abandon",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel")

    @display(description="State", ordering="state", label=SESSION_BADGES)
    def state_badge(self, obj):
        return obj.state, obj.get_state_display()

    @display(description="State")
    def state_view(self, obj):
        return badge(obj.get_state_display(), SESSION_BADGES.get(obj.state, ""))

    @display(description="Table / handle", ordering="handle_ref")
    def handle(self, obj):
        return _handle(obj)

    @display(description="Items")
    def items_count(self, obj):
        return obj.items_count

    @display(description="Total", ordering="total_q")
    def total(self, obj):
        return nowrap(format_money(obj.total_q, obj.channel.currency))

    @display(description="Updated", ordering="updated_at")
    def updated(self, obj):
        return when(obj.updated_at)

    @display(description="Checks")
    def checks_badges(self, obj):
        return badges([(f"{code} {state}", CHECK_BADGES.get(state, "")) for code, _label, state, _c in check_rows(obj)])

    @display(description="Issues")
    def issues_badge(self, obj):
        issues = obj.issues
        if not issues:
            return "—"
        blocking = sum(1 for issue in issues if issue.get("severity") == "blocking")
        others = len(issues) - blocking
        parts = [f"{blocking} blocking"] if blocking else []
        if others:
            parts.append(f"{others} warning{'s' if others > 1 else ''}")
        return badge(", ".join(parts), "danger" if blocking else "warning")

    @display(description="Order")
    def order(self, obj):
        if obj.state != Session.State.COMMITTED:
            return "—"
        row = Order.objects.filter(session_key=obj.session_key).values_list("pk", "ref").first()
        return admin_link("order", row[0], row[1]) if row else "—"

    @display(description="Items")
    def items_table(self, obj):
        currency = obj.channel.currency
        rows = []
        for item in obj.items:
            meta = item.get("meta") or {}
            notes = [str(meta["note"])] if meta.get("note") else []
            if meta.get("price_override"):
                override = meta["price_override"]
                notes.append(f"price overridden {override.get('from')} → {override.get('to')} ({override.get('reason', '')})")
            rows.append([
                item.get("line_id"), item.get("sku"), item.get("name") or "", qty_text(item.get("qty")),
                format_money(item.get("unit_price_q") or 0, currency), format_money(item.get("line_total_q") or 0, currency),
                "; ".join(notes) or "—",
            ])
        return table(["Line", "SKU", "Name", "Qty", "Unit price", "Line total", "Notes"], rows)

    @display(description="Checks")
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
        return table(["Check", "State", "For rev", "Checked at", "Result"], rows)

    @display(description="Issues")
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
        return table(["Severity", "Source", "Code", "Message", "Line", "Resolutions"], rows)

    @display(description="Data")
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
            messages.error(request, f"Session {session.session_key} was not abandoned: {exc.message or exc.code}")
            return False
        self.log_change(request, session, "Abandoned through SessionService.abandon_session.")
        return True

    def abandon_view(self, request, object_id):
        session = self.get_review_object(request, object_id)
        if self._abandon(request, session):
            messages.success(request, f"Session {session.session_key} abandoned.")
        return self.back_to(session)

    @admin.action(description="Abandon selected open sessions", permissions=["manage"])
    def abandon_selected(self, request, queryset):
        sessions = list(queryset)
        done = sum(1 for session in sessions if session.is_open and self._abandon(request, session))
        skipped = sum(1 for session in sessions if not session.is_open)
        text = f"{done} session(s) abandoned."
        if skipped:
            text += f" {skipped} were not open and were left as they are."
        messages.info(request, text)


# -- directives --------------------------------------------------------------------


def _payload_pk(model, field: str, key: str):
    return Subquery(model.objects.filter(**{field: KeyTextTransform(key, OuterRef("payload"))}).values("pk")[:1])


@admin.register(Directive)
class DirectiveAdmin(ServiceActionsMixin, ReadOnlyAdmin):
    list_display = ("id", "topic", "status_badge", "runs", "concerns", "due", "error_line")
    list_filter = (("status", admin.ChoicesFieldListFilter), DirectiveTopicFilter)
    search_fields = ("topic", "dedupe_key", "payload__order_ref", "payload__session_key")
    search_help_text = "Topic, dedupe key, order ref or session key in the payload."
    ordering = ("-id",)
    actions = ("run_selected", "retry_selected")
    fieldsets = (
        (None, {"fields": ("id", "topic", "status_view", "attempts", "concerns", "dedupe_key", "available_at", "started_at", "created_at", "updated_at")}),
        ("Payload", {"fields": ("payload_view",)}),
        ("Last error", {"fields": ("error_view",)}),
    )
    readonly_fields = ("id", "topic", "status_view", "attempts", "concerns", "dedupe_key", "available_at", "started_at", "created_at", "updated_at", "payload_view", "error_view")
    change_form_outer_before_template = "admin/omniman/directive/review_panel.html"
    review_actions = ("run", "retry")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            order_pk=_payload_pk(Order, "ref", "order_ref"),
            session_pk=_payload_pk(Session, "session_key", "session_key"),
        )

    @display(description="Status", ordering="status", label=DIRECTIVE_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Status")
    def status_view(self, obj):
        return badge(obj.get_status_display(), DIRECTIVE_BADGES.get(obj.status, ""))

    @display(description="Concerns")
    def concerns(self, obj):
        payload = obj.payload or {}
        if payload.get("order_ref"):
            return nowrap(admin_link("order", obj.order_pk, f"Order {payload['order_ref']}"))
        if payload.get("session_key"):
            return nowrap(admin_link("session", obj.session_pk, f"Session {payload['session_key']}"))
        return "—"

    @display(description="Runs", ordering="attempts")
    def runs(self, obj):
        return obj.attempts

    @display(description="Due", ordering="available_at")
    def due(self, obj):
        return when(obj.available_at)

    @display(description="Last error")
    def error_line(self, obj):
        first = (obj.last_error or "").strip().splitlines()[:1]
        if not first:
            return "—"
        return nowrap(first[0] if len(first[0]) <= 60 else first[0][:59] + "…", title=first[0])

    @display(description="Payload")
    def payload_view(self, obj):
        return pretty_json(obj.payload)

    @display(description="Last error")
    def error_view(self, obj):
        if not obj.last_error:
            return "—"
        return format_html('<pre style="{}">{}</pre>', PRE_STYLE, obj.last_error)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["review"] = {
                "status_badge": badge(obj.get_status_display(), DIRECTIVE_BADGES.get(obj.status, "")),
                "can_run": obj.status == Directive.Status.QUEUED,
                "can_retry": obj.status == Directive.Status.FAILED,
                "has_handler": registry.get_directive_handler(obj.topic) is not None,
                "can_manage": self.has_manage_permission(request, obj),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _report(self, request, report: admin_actions.RunReport, what: str) -> None:
        counts = report.counts
        level = messages.SUCCESS if report.outcomes and set(counts) == {"done"} else messages.WARNING
        if not report.outcomes and not report.requeued:
            level = messages.WARNING
        messages.add_message(request, level, f"{what}: {report.summary()}.")

    def _log(self, request, ids, message: str) -> None:
        for directive in Directive.objects.filter(pk__in=list(ids)).only("id", "topic", "status"):
            self.log_change(request, directive, message)

    def run_view(self, request, object_id):
        directive = self.get_review_object(request, object_id)
        if registry.get_directive_handler(directive.topic) is None:
            messages.error(request, f"Directive #{directive.pk} was not run: no handler is registered for {directive.topic!r}.")
            return self.back_to(directive)
        report = admin_actions.run_now([directive.pk])
        self._log(request, report.outcomes, "Run now.")
        self._report(request, report, f"Directive #{directive.pk}")
        return self.back_to(directive)

    def retry_view(self, request, object_id):
        directive = self.get_review_object(request, object_id)
        report = admin_actions.retry_failed([directive.pk])
        self._log(request, report.outcomes, "Retried.")
        self._report(request, report, f"Directive #{directive.pk}")
        return self.back_to(directive)

    @admin.action(description="Run selected now (queued ones)", permissions=["manage"])
    def run_selected(self, request, queryset):
        report = admin_actions.run_now(queryset.values_list("pk", flat=True))
        self._log(request, report.outcomes, "Run now.")
        self._report(request, report, "Run now")

    @admin.action(description="Retry selected failed directives", permissions=["manage"])
    def retry_selected(self, request, queryset):
        report = admin_actions.retry_failed(queryset.values_list("pk", flat=True))
        self._log(request, report.outcomes, "Retried.")
        self._report(request, report, "Retry")


# -- channels ----------------------------------------------------------------------


def _topic_problem(where: str, topic: Any) -> str | None:
    if not isinstance(topic, str) or not topic:
        return f"{where}: {topic!r} is not a directive topic"
    if registry.get_directive_handler(topic) is None:
        return f"{where}: no handler is registered for the directive topic {topic!r}"
    return None


def channel_config_problems(config: Any) -> list[str]:
    """What is wrong with a channel's ``config``, as sentences that name the culprit (empty when valid).

    The order flow's own rules (``validate_order_flow``), plus: every status a
    transition leads to must be defined (a key of ``transitions`` or a terminal
    status), and every directive topic the channel enqueues — its required
    checks, ``post_commit_directives``, ``on_abandon``, ``order_flow.on_enter``
    — must have a registered handler.
    """
    if not isinstance(config, dict):
        return ["config must be a JSON object"]
    flow_config = config.get("order_flow")
    problems = validate_order_flow(flow_config)
    if not problems and isinstance(flow_config, dict) and flow_config:
        flow = build_order_flow(flow_config)
        defined = set(flow.transitions) | set(flow.terminal_statuses)
        for source, targets in flow.transitions.items():
            for target in targets:
                if target not in defined:
                    problems.append(
                        f"order_flow.transitions.{source}: unknown status {target!r} "
                        "(it is neither a key of transitions nor a terminal status)"
                    )
        if flow.initial_status not in defined:
            problems.append(f"order_flow.initial_status: unknown status {flow.initial_status!r}")
        for status, topics in flow.on_enter.items():
            problems.extend(p for t in topics if (p := _topic_problem(f"order_flow.on_enter.{status}", t)))

    checks = config.get("checks") or {}
    if not isinstance(checks, dict):
        problems.append("checks must be an object of check code → {directive_topic, label}")
        checks = {}
    for code, spec in checks.items():
        if not isinstance(spec, dict):
            problems.append(f"checks.{code} must be an object")
        elif "directive_topic" in spec and (not isinstance(spec["directive_topic"], str) or not spec["directive_topic"]):
            problems.append(f"checks.{code}.directive_topic must be a directive topic")
    required = config.get("required_checks_on_commit") or []
    if not isinstance(required, list):
        problems.append("required_checks_on_commit must be a list of check codes")
        required = []
    for code in required:
        if not isinstance(code, str) or not code:
            problems.append(f"required_checks_on_commit: {code!r} is not a check code")
            continue
        spec = checks.get(code) if isinstance(checks.get(code), dict) else {}
        topic = spec.get("directive_topic") or f"check.{code}"
        if isinstance(topic, str) and registry.get_directive_handler(topic) is None:
            problems.append(f"required check {code!r}: no handler is registered for its directive topic {topic!r}")

    for key in ("post_commit_directives", "on_abandon"):
        topics = config.get(key) or []
        if not isinstance(topics, list):
            problems.append(f"{key} must be a list of directive topics")
            continue
        problems.extend(p for t in topics if (p := _topic_problem(key, t)))

    if "terminology" in config and not isinstance(config["terminology"], dict):
        problems.append("terminology must be an object")
    if "currency" in config and (not isinstance(config["currency"], str) or not config["currency"]):
        problems.append("currency must be a currency code such as 'BRL'")
    problems.extend(_ingestion_problems(config.get("ingestion"), flow_config))
    return problems


def _ingestion_problems(ingestion: Any, flow_config: Any) -> list[str]:
    """``ingestion``: the external-order settings (docs/integrations/marketplace.rst)."""
    if ingestion is None:
        return []
    if not isinstance(ingestion, dict):
        return ["ingestion must be an object with signature_secret and/or status_map"]
    problems = [f"ingestion: unknown key {key!r}" for key in ingestion if key not in ("signature_secret", "status_map")]
    secret = ingestion.get("signature_secret")
    if secret is not None and not isinstance(secret, str):
        problems.append("ingestion.signature_secret must be text")
    status_map = ingestion.get("status_map")
    if status_map is None:
        return problems
    if not isinstance(status_map, dict):
        return [*problems, "ingestion.status_map must be an object of platform status → channel status"]
    known = set(build_order_flow(flow_config if isinstance(flow_config, dict) else None).statuses)
    for platform, status in status_map.items():
        if status not in known:
            problems.append(f"ingestion.status_map.{platform}: unknown status {status!r}")
    return problems


class PrettyJSONField(forms.JSONField):
    """Shows the JSON indented, so a manager can read and edit it."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class ChannelForm(forms.ModelForm):
    config = PrettyJSONField(
        required=False,
        widget=UnfoldAdminTextareaWidget(attrs={"rows": 18, "spellcheck": "false", "style": "font-family: ui-monospace, monospace; font-size: 13px"}),
        help_text=(
            "JSON: required_checks_on_commit, checks, post_commit_directives, on_abandon, order_flow "
            "(initial_status, transitions, terminal_statuses, auto_transitions, on_enter), terminology, currency. "
            "Checked before saving; it applies at once to open sessions and existing orders."
        ),
    )

    class Meta:
        model = Channel
        fields = "__all__"

    def clean_config(self):
        config = self.cleaned_data.get("config")
        if config in (None, ""):
            config = {}
        problems = channel_config_problems(config)
        if problems:
            raise forms.ValidationError(problems)
        return config


@admin.register(Channel)
class ChannelAdmin(ManagerAdmin):
    form = ChannelForm
    list_display = ("code", "name", "pricing_policy", "edit_policy", "active_badge", "currency", "required_checks", "display_order")
    list_filter = ("is_active", "pricing_policy", "edit_policy")
    search_fields = ("code", "name")
    fieldsets = (
        (None, {"fields": ("code", "name", "pricing_policy", "edit_policy", "is_active", "display_order")}),
        ("Configuration", {"fields": ("config",)}),
    )

    def has_delete_permission(self, request, obj=None):
        return False  # orders and sessions point at it: deactivate instead

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()  # orders and sessions are addressed by it

    @display(description="Active", label={"yes": "success", "no": ""}, ordering="is_active")
    def active_badge(self, obj):
        return ("yes", "Active") if obj.is_active else ("no", "Inactive")

    @display(description="Currency")
    def currency(self, obj):
        return obj.currency

    @display(description="Required checks")
    def required_checks(self, obj):
        return ", ".join(obj.required_checks) or "—"


# -- idempotency keys --------------------------------------------------------------


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("scope", "key", "status_badge", "response_code", "fingerprint", "expires_at", "created_at")
    list_filter = (("status", admin.ChoicesFieldListFilter),)
    search_fields = ("scope", "key", "fingerprint")
    fields = ("scope", "key", "fingerprint", "status_view", "response_code", "response_view", "expires_at", "created_at", "updated_at")
    readonly_fields = fields

    @display(description="Status", ordering="status", label=IDEMPOTENCY_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description="Status")
    def status_view(self, obj):
        return badge(obj.get_status_display(), IDEMPOTENCY_BADGES.get(obj.status, ""))

    @display(description="Response body")
    def response_view(self, obj):
        return pretty_json(obj.response_body) if obj.response_body is not None else "—"
