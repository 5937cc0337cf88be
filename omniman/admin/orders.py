"""Orders: read-only, with the timeline; status changes and notes go through the kernel."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import RelatedDropdownFilter
from unfold.decorators import display

from omniman.admin.base import ReadOnlyAdmin, ReadOnlyInline, ServiceActionsMixin
from omniman.admin.filters import CreatedOnFilter, OrderStatusFilter
from omniman.admin.renderers import (
    STATUS_BADGES,
    admin_link,
    badge,
    customer_text,
    handle_text,
    nowrap,
    pretty_json,
    price_override_text,
    qty_text,
    when,
)
from omniman import formatting
from omniman.exceptions import InvalidTransition, OmnimanError
from omniman.models import Order, OrderEvent, OrderItem, Session
from omniman.monetary import format_money
from omniman.roles import actor_of, roles_of
from omniman.services import OrderService, events

NOTE_MAX_LENGTH = 2000


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    fields = ("line_id", "sku", "name", "quantity", "unit_price", "line_total", "notes")
    readonly_fields = fields
    verbose_name = _("item")
    verbose_name_plural = _("items")

    @display(description=_("Qty"))
    def quantity(self, obj):
        return qty_text(obj.qty)

    @display(description=_("Unit price"))
    def unit_price(self, obj):
        return format_money(obj.unit_price_q, obj.order.currency)

    @display(description=_("Line total"))
    def line_total(self, obj):
        return format_money(obj.line_total_q, obj.order.currency)

    @display(description=_("Notes"))
    def notes(self, obj):
        meta = obj.meta or {}
        parts = []
        if meta.get("note"):
            parts.append(str(meta["note"]))
        override = meta.get("price_override")
        if override:
            parts.append(price_override_text(override))
        return "; ".join(parts) or "—"


def event_summary(event: OrderEvent) -> str:
    payload = event.payload or {}
    if event.type == events.STATUS_CHANGED:
        text = f"{payload.get('from')} → {payload.get('to')}"
        return f"{text} ({payload['reason']})" if payload.get("reason") else text
    if event.type == events.NOTE:
        return str(payload.get("text", ""))
    if event.type == events.CREATED:
        return _("status %(status)s, %(items)s items, rev %(rev)s") % {
            "status": payload.get("status"), "items": payload.get("items_count"), "rev": payload.get("rev"),
        }
    if event.type == events.PRICE_OVERRIDDEN:
        return f"{payload.get('sku')}: {payload.get('from')} → {payload.get('to')} ({payload.get('reason', '')})"
    if event.type == events.ADJUSTMENT_APPLIED:
        amount = payload.get("amount_q")
        text = f"{payload.get('kind')}{' ' + str(payload['percent']) + ' %' if payload.get('percent') else ''}: "
        text += format_money(amount, event.order.currency) if isinstance(amount, int) else str(amount)
        if payload.get("reason"):
            text += f" ({payload['reason']})"
        if payload.get("approved_by"):
            text += " · " + _("approved by %(who)s") % {"who": payload["approved_by"]}
        return text
    return json.dumps(payload, ensure_ascii=False, default=str)


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("at", "type", "actor", "summary")
    readonly_fields = fields
    verbose_name = _("event")
    verbose_name_plural = _("timeline")

    @display(description=_("At"))
    def at(self, obj):
        local = timezone.localtime(obj.created_at)
        return nowrap(formatting.format_datetime(local, format="medium"), title=local.isoformat())

    @display(description=_("What happened"))
    def summary(self, obj):
        return event_summary(obj)


TIMESTAMPS = ("confirmed_at", "processing_at", "ready_at", "dispatched_at", "delivered_at", "completed_at", "cancelled_at")


@admin.register(Order)
class OrderAdmin(ServiceActionsMixin, ReadOnlyAdmin):
    list_display = ("order_ref", "channel", "status_badge", "handle", "customer", "items_count", "total", "created")
    list_display_links = ("order_ref",)
    list_filter = (("channel", RelatedDropdownFilter), OrderStatusFilter, ("created_at", CreatedOnFilter))
    list_filter_submit = True
    search_fields = ("ref", "handle_ref", "external_ref", "session_key", "snapshot__data__customer__phone", "snapshot__data__customer__name")
    search_help_text = _("Ref, table/handle, external ref, session key, customer phone or name.")
    list_select_related = ("channel",)
    date_hierarchy = "created_at"
    inlines = (OrderItemInline, OrderEventInline)
    fieldsets = (
        (None, {"fields": ("ref", "channel", "status_view", "handle", "external_ref", "session", "customer", "total", "created_at", "updated_at")}),
        (_("Status timestamps"), {"fields": TIMESTAMPS, "classes": ("collapse",)}),
        (_("Snapshot (as committed)"), {"fields": ("snapshot_view",), "classes": ("collapse",)}),
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

    @display(description=_("Status"), ordering="status", label=STATUS_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.channel.term(obj.status)

    @display(description=_("Status"))
    def status_view(self, obj):
        return badge(obj.channel.term(obj.status), STATUS_BADGES.get(obj.status, ""))

    @display(description=_("Ref"), ordering="ref")
    def order_ref(self, obj):
        return nowrap(obj.ref)

    @display(description=_("Table / handle"), ordering="handle_ref")
    def handle(self, obj):
        return handle_text(obj)

    @display(description=_("Created"), ordering="created_at")
    def created(self, obj):
        return when(obj.created_at)

    @display(description=_("Customer"))
    def customer(self, obj):
        return customer_text((obj.snapshot or {}).get("data"))

    @display(description=_("Items"))
    def items_count(self, obj):
        return len((obj.snapshot or {}).get("items") or [])

    @display(description=_("Total"), ordering="total_q")
    def total(self, obj):
        return nowrap(format_money(obj.total_q, obj.currency))

    @display(description=_("Session"))
    def session(self, obj):
        if not obj.session_key:
            return "—"
        pk = Session.objects.filter(session_key=obj.session_key).values_list("pk", flat=True).first()
        return admin_link("session", pk, obj.session_key)

    @display(description=_("Snapshot"))
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
            messages.error(request, _("The form was incomplete: nothing was changed. Reload the page and try again."))
            return self.back_to(order)
        try:
            OrderService.transition(
                order.ref, new_status, actor=actor_of(request.user), expected_status=expected, reason=reason, roles=roles_of(request.user)
            )
        except InvalidTransition as exc:
            if exc.code == "forbidden_transition":
                messages.error(
                    request,
                    _("Your role may not move order %(ref)s to %(status)s. Nothing was changed.")
                    % {"ref": order.ref, "status": order.channel.term(new_status)},
                )
            elif exc.code == "stale_status":
                current = exc.context.get("current_status")
                messages.error(
                    request,
                    _(
                        "Order %(ref)s changed meanwhile: it is now “%(current)s”, not “%(expected)s”. "
                        "Nothing was changed; check it and choose again."
                    )
                    % {"ref": order.ref, "current": order.channel.term(current), "expected": order.channel.term(expected)},
                )
            else:
                messages.error(
                    request,
                    _("Order %(ref)s cannot move to “%(status)s” from where it is. Nothing was changed.")
                    % {"ref": order.ref, "status": order.channel.term(new_status)},
                )
            return self.back_to(order)
        except OmnimanError as exc:
            messages.error(request, _("Nothing was changed: %(reason)s") % {"reason": exc.message or exc.code})
            return self.back_to(order)
        messages.success(
            request,
            _("Order %(ref)s: %(from)s → %(to)s.")
            % {"ref": order.ref, "from": order.channel.term(expected), "to": order.channel.term(new_status)},
        )
        return self.back_to(order)

    def note_view(self, request, object_id):
        order = self.get_review_object(request, object_id)
        text = request.POST.get("text", "").strip()
        if not text:
            messages.error(request, _("A note needs some text."))
        elif len(text) > NOTE_MAX_LENGTH:
            messages.error(request, _("A note has at most %(max)s characters; nothing was saved.") % {"max": NOTE_MAX_LENGTH})
        else:
            events.note_added(order, actor=actor_of(request.user), text=text)
            messages.success(request, _("Note added to order %(ref)s.") % {"ref": order.ref})
        return self.back_to(order)
