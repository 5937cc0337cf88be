"""Registers and shifts (issue #18): a manager names registers and sets their drawer rules; shifts are read-only.

A shift is opened, moved and closed through ``ShiftService`` (the POS and the API), never here: a manager
reads its float, cash movements, count, difference and who accepted it, and opens its Z-report.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import RelatedDropdownFilter
from unfold.decorators import display

from omniman.admin.base import ManagerAdmin, ReadOnlyAdmin, ReadOnlyInline
from omniman.admin.filters import CreatedOnFilter
from omniman.admin.renderers import badge, nowrap, when
from omniman.models import CashMovement, Register, Shift, ShiftEvent
from omniman.monetary import format_money

SHIFT_BADGES = {"open": "warning", "closed": "success"}


class RegisterForm(forms.ModelForm):
    class Meta:
        model = Register
        fields = ("code", "name", "is_active", "config")

    def clean_config(self):
        config = self.cleaned_data.get("config") or {}
        if not isinstance(config, dict):
            raise forms.ValidationError(_("The configuration is a JSON object."), code="invalid")
        threshold = config.get("difference_threshold_q")
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0):
            raise forms.ValidationError(_("difference_threshold_q is a whole number of cents, 0 or more."), code="invalid")
        denominations = config.get("denominations")
        if denominations is not None and (
            not isinstance(denominations, list)
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 10**6 for d in denominations)
        ):
            raise forms.ValidationError(_("denominations is a list of notes and coins in cents (whole numbers above 0)."),
                                        code="invalid")
        return config


@admin.register(Register)
class RegisterAdmin(ManagerAdmin):
    form = RegisterForm
    list_display = ("code", "name", "is_active", "threshold")
    search_fields = ("code", "name")

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()

    @display(description=_("Difference threshold"))
    def threshold(self, obj):
        from omniman.conf import get

        value = (obj.config or {}).get("difference_threshold_q")
        return nowrap(format_money(value if isinstance(value, int) else get("SHIFT_DIFFERENCE_THRESHOLD_Q", 500),
                                   get("DEFAULT_CURRENCY")))


class CashMovementInline(ReadOnlyInline):
    model = CashMovement
    fields = ("at", "kind", "amount", "reason", "actor")
    readonly_fields = fields
    verbose_name = _("cash movement")
    verbose_name_plural = _("cash movements")

    @display(description=_("At"))
    def at(self, obj):
        return when(obj.created_at)

    @display(description=_("Amount"))
    def amount(self, obj):
        return format_money(obj.amount_q, obj.shift.currency)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("shift")


class ShiftEventInline(ReadOnlyInline):
    model = ShiftEvent
    fields = ("at", "type", "actor", "reason", "payload")
    readonly_fields = fields
    verbose_name = _("event")
    verbose_name_plural = _("audit trail")

    @display(description=_("At"))
    def at(self, obj):
        return when(obj.created_at)


@admin.register(Shift)
class ShiftAdmin(ReadOnlyAdmin):
    list_display = ("shift_id", "register", "status_badge", "opened", "opened_by", "float", "expected", "counted",
                    "difference", "difference_approved_by", "closed")
    list_display_links = ("shift_id",)
    list_filter = (("register", RelatedDropdownFilter), "status", "auto_opened", ("opened_at", CreatedOnFilter))
    list_filter_submit = True
    search_fields = ("opened_by", "closed_by", "difference_approved_by", "difference_reason", "register__code")
    list_select_related = ("register",)
    date_hierarchy = "opened_at"
    inlines = (CashMovementInline, ShiftEventInline)
    fields = ("register", "status_view", "z_report", "currency", "opened_at", "opened_by", "auto_opened", "opening_float_q",
              "opening_count", "closed_at", "closed_by", "counted_q", "closing_count", "expected_cash_q", "difference_q",
              "difference_approved_by", "difference_reason", "rev")
    readonly_fields = fields

    @display(description=_("Shift"), ordering="id")
    def shift_id(self, obj):
        return f"#{obj.pk}"

    @display(description=_("Status"), ordering="status", label=SHIFT_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("Status"))
    def status_view(self, obj):
        return badge(obj.get_status_display(), SHIFT_BADGES.get(obj.status, ""))

    @display(description=_("Z-report"))
    def z_report(self, obj):
        url = reverse("pos:z_report", args=[obj.pk])
        return format_html('<a href="{}" class="text-primary-600 underline">{}</a> · <a href="{}">PDF</a>', url,
                           _("Z-report") if obj.status == "closed" else _("X-report"), reverse("pos:z_report_pdf", args=[obj.pk]))

    @display(description=_("Opened"), ordering="opened_at")
    def opened(self, obj):
        return when(obj.opened_at)

    @display(description=_("Closed"), ordering="closed_at")
    def closed(self, obj):
        return when(obj.closed_at)

    @display(description=_("Float"), ordering="opening_float_q")
    def float(self, obj):
        return nowrap(format_money(obj.opening_float_q, obj.currency))

    @display(description=_("Expected"), ordering="expected_cash_q")
    def expected(self, obj):
        return "—" if obj.expected_cash_q is None else nowrap(format_money(obj.expected_cash_q, obj.currency))

    @display(description=_("Counted"), ordering="counted_q")
    def counted(self, obj):
        return "—" if obj.counted_q is None else nowrap(format_money(obj.counted_q, obj.currency))

    @display(description=_("Difference"), ordering="difference_q")
    def difference(self, obj):
        return "—" if obj.difference_q is None else nowrap(format_money(obj.difference_q, obj.currency))
