"""Channels: managers edit them; the kernel validates the config (``Channel.clean()``) before it is saved."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display
from unfold.widgets import UnfoldAdminTextareaWidget

from omniman.admin.base import ManagerAdmin
from omniman.models import Channel


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
        label=_("Config"),
        help_text=_(
            "JSON: required_checks_on_commit, checks, post_commit_directives, on_abandon, order_flow "
            "(initial_status, transitions, terminal_statuses, auto_transitions, on_enter), terminology, "
            "currency (an ISO 4217 code such as BRL). "
            "Checked before saving; it applies at once to open sessions and existing orders."
        ),
    )

    class Meta:
        model = Channel
        fields = "__all__"

    def clean_config(self):
        """An empty config is ``{}``; the rest is ``Channel.clean()``'s (the kernel's) to judge."""
        config = self.cleaned_data.get("config")
        return {} if config in (None, "") else config


@admin.register(Channel)
class ChannelAdmin(ManagerAdmin):
    form = ChannelForm
    list_display = ("code", "name", "pricing_policy", "edit_policy", "active_badge", "currency", "required_checks", "display_order")
    list_filter = ("is_active", "pricing_policy", "edit_policy")
    search_fields = ("code", "name")
    fieldsets = (
        (None, {"fields": ("code", "name", "pricing_policy", "edit_policy", "is_active", "display_order")}),
        (_("Configuration"), {"fields": ("config",)}),
    )

    def has_delete_permission(self, request, obj=None):
        return False  # orders and sessions point at it: deactivate instead

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()  # orders and sessions are addressed by it

    @display(description=_("Active"), label={"yes": "success", "no": ""}, ordering="is_active")
    def active_badge(self, obj):
        return ("yes", _("Active")) if obj.is_active else ("no", _("Inactive"))

    @display(description=_("Currency"))
    def currency(self, obj):
        return obj.currency

    @display(description=_("Required checks"))
    def required_checks(self, obj):
        return ", ".join(obj.required_checks) or "—"
