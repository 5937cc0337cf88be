"""Bills: read-only, with their payments, refunds, adjustments and audit trail (issue #15).

Payments, refunds, discounts, voids and write-offs are made through the services
(the POS and the API), never here: a manager reads what happened, and who did it.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import RelatedDropdownFilter
from unfold.decorators import display

from omniman.admin.base import ReadOnlyAdmin, ReadOnlyInline
from omniman.admin.filters import CreatedOnFilter
from omniman.admin.renderers import admin_link, badge, handle_text, nowrap, table, when
from omniman.models import Bill, BillEvent, Order, Payment, Refund
from omniman.monetary import format_money

BILL_BADGES = {"open": "warning", "settled": "success", "written_off": "danger"}


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("at", "method", "amount", "tip", "tendered", "change", "reference", "brand", "part", "actor")
    readonly_fields = fields
    verbose_name = _("payment")
    verbose_name_plural = _("payments")

    @display(description=_("At"))
    def at(self, obj):
        return when(obj.created_at)

    @display(description=_("Amount"))
    def amount(self, obj):
        return format_money(obj.amount_q, obj.currency)

    @display(description=_("Tip"))
    def tip(self, obj):
        return format_money(obj.tip_q, obj.currency)

    @display(description=_("Tendered"))
    def tendered(self, obj):
        return format_money(obj.tendered_q, obj.currency)

    @display(description=_("Change"))
    def change(self, obj):
        return format_money(obj.change_q, obj.currency)


class BillEventInline(ReadOnlyInline):
    model = BillEvent
    fields = ("at", "type", "actor", "summary")
    readonly_fields = fields
    verbose_name = _("event")
    verbose_name_plural = _("timeline")

    @display(description=_("At"))
    def at(self, obj):
        return when(obj.created_at)

    @display(description=_("What happened"))
    def summary(self, obj):
        payload = obj.payload or {}
        before, after = payload.get("before") or {}, payload.get("after") or {}
        parts = []
        adjustment = payload.get("adjustment") or {}
        if adjustment:
            parts.append(f"{adjustment.get('label', '')} {adjustment.get('amount_q', '')} ({adjustment.get('reason', '')})")
        if "amount_q" in payload and not adjustment:
            parts.append(_("amount %(amount)s") % {"amount": payload["amount_q"]})
        if before and after and before.get("total_q") != after.get("total_q"):
            parts.append(_("total %(before)s → %(after)s") % {"before": before.get("total_q"), "after": after.get("total_q")})
        if after:
            parts.append(_("due %(due)s") % {"due": after.get("due_q")})
        return "; ".join(str(p) for p in parts) or "—"


@admin.register(Bill)
class BillAdmin(ReadOnlyAdmin):
    list_display = ("bill_ref", "channel", "status_badge", "handle", "total", "paid", "due", "opened", "settled")
    list_display_links = ("bill_ref",)
    list_filter = (("channel", RelatedDropdownFilter), "status", ("opened_at", CreatedOnFilter))
    list_filter_submit = True
    search_fields = ("ref", "handle_ref", "orders__ref")
    search_help_text = _("Bill ref, table/handle or an order's ref.")
    list_select_related = ("channel",)
    date_hierarchy = "opened_at"
    inlines = (PaymentInline, BillEventInline)
    fieldsets = (
        (None, {"fields": ("ref", "channel", "status_view", "handle", "rev", "total", "paid", "due", "opened_at", "settled_at", "closed_by", "note")}),
        (_("Orders"), {"fields": ("orders_view",)}),
        (_("Adjustments"), {"fields": ("adjustments_view",)}),
        (_("Split"), {"fields": ("splits_view",)}),
        (_("Refunds"), {"fields": ("refunds_view",)}),
    )
    readonly_fields = (
        "ref", "channel", "status_view", "handle", "rev", "total", "paid", "due", "opened_at", "settled_at", "closed_by",
        "note", "orders_view", "adjustments_view", "splits_view", "refunds_view",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("channel")

    @display(description=_("Ref"), ordering="ref")
    def bill_ref(self, obj):
        return nowrap(obj.ref)

    @display(description=_("Status"), ordering="status", label=BILL_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("Status"))
    def status_view(self, obj):
        return badge(obj.get_status_display(), BILL_BADGES.get(obj.status, ""))

    @display(description=_("Table / handle"), ordering="handle_ref")
    def handle(self, obj):
        return handle_text(obj)

    @display(description=_("Total"), ordering="total_q")
    def total(self, obj):
        return nowrap(format_money(obj.total_q, obj.currency))

    @display(description=_("Paid"), ordering="paid_q")
    def paid(self, obj):
        return nowrap(format_money(obj.paid_q, obj.currency))

    @display(description=_("Due"))
    def due(self, obj):
        return nowrap(format_money(obj.due_q, obj.currency))

    @display(description=_("Opened"), ordering="opened_at")
    def opened(self, obj):
        return when(obj.opened_at)

    @display(description=_("Settled"), ordering="settled_at")
    def settled(self, obj):
        return when(obj.settled_at)

    @display(description=_("Orders"))
    def orders_view(self, obj):
        rows = [
            [admin_link("order", order.pk, order.ref), order.status, format_money(order.charged_q, order.currency)]
            for order in Order.objects.filter(bill=obj).order_by("created_at", "id").only("pk", "ref", "status", "currency", "total_q", "snapshot")
        ]
        return table([_("Order"), _("Status"), _("Total")], rows)

    @display(description=_("Adjustments"))
    def adjustments_view(self, obj):
        rows = [
            [a.get("kind", ""), a.get("label", ""), a.get("line_id", "") or _("whole bill"), a.get("percent") or "—",
             format_money(int(a.get("amount_q") or 0), obj.currency), a.get("reason", ""), a.get("actor", ""),
             a.get("approved_by", "") or "—"]
            for a in obj.adjustments or []
        ]
        return table([_("Kind"), _("Label"), _("Line"), _("Percent"), _("Amount"), _("Reason"), _("By"), _("Approved by")], rows)

    @display(description=_("Split"))
    def splits_view(self, obj):
        rows = [
            [p.get("label", ""), format_money(int(p.get("amount_q") or 0), obj.currency), format_money(int(p.get("paid_q") or 0), obj.currency)]
            for p in obj.splits or []
        ]
        return table([_("Part"), _("Amount"), _("Paid")], rows)

    @display(description=_("Refunds"))
    def refunds_view(self, obj):
        rows = [
            [when(r.created_at), r.payment_id, format_money(r.amount_q, obj.currency), r.reason, r.actor, r.reference or "—"]
            for r in Refund.objects.filter(payment__bill=obj).order_by("created_at", "id")
        ]
        return table([_("At"), _("Payment"), _("Amount"), _("Reason"), _("By"), _("Reference")], rows)
