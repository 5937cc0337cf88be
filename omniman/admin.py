"""Manager review in the admin: everything read-only except channels.

No admin form can bypass a service: rev, items, snapshot, status and totals
are never editable here. (The full review screens land with the unfold admin.)
"""

from __future__ import annotations

from django import forms
from django.contrib import admin

from omniman.flow import validate_order_flow
from omniman.models import Channel, Directive, IdempotencyKey, Order, OrderEvent, OrderItem, Session
from omniman.monetary import format_money


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = "__all__"

    def clean_config(self):
        config = self.cleaned_data.get("config") or {}
        if not isinstance(config, dict):
            raise forms.ValidationError("config must be a JSON object.")
        problems = validate_order_flow(config.get("order_flow"))
        checks = config.get("checks") or {}
        for code in config.get("required_checks_on_commit") or []:
            if not isinstance(code, str) or not code:
                problems.append(f"required_checks_on_commit: {code!r} is not a check code")
        if not isinstance(checks, dict):
            problems.append("checks must be an object")
        if problems:
            raise forms.ValidationError(problems)
        return config


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ("code", "name", "pricing_policy", "edit_policy", "is_active", "display_order")
    list_filter = ("is_active", "pricing_policy", "edit_policy")
    search_fields = ("code", "name")

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = ("session_key", "channel", "handle_type", "handle_ref", "state", "rev", "items_count", "total", "opened_at")
    list_filter = ("state", "channel")
    search_fields = ("session_key", "handle_ref")
    list_select_related = ("channel",)

    @admin.display(description="Total")
    def total(self, obj):
        return format_money(obj.total_q, obj.channel.currency)


class OrderItemInline(admin.TabularInline):
    model = OrderItem
    fields = ("line_id", "sku", "name", "qty", "unit_price_q", "line_total_q", "meta")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fields = ("created_at", "type", "actor", "payload")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("ref", "channel", "status", "handle_ref", "total", "created_at")
    list_filter = ("status", "channel", "created_at")
    search_fields = ("ref", "handle_ref", "external_ref", "session_key")
    list_select_related = ("channel",)
    date_hierarchy = "created_at"
    inlines = (OrderItemInline, OrderEventInline)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    @admin.display(description="Total")
    def total(self, obj):
        return format_money(obj.total_q, obj.currency)


@admin.register(Directive)
class DirectiveAdmin(ReadOnlyAdmin):
    list_display = ("id", "topic", "status", "attempts", "available_at", "updated_at")
    list_filter = ("status", "topic")
    search_fields = ("topic", "dedupe_key")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("scope", "key", "status", "response_code", "expires_at")
    list_filter = ("status",)
    search_fields = ("scope", "key")
