"""Channels: managers edit them; the config is validated before it is saved."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display
from unfold.widgets import UnfoldAdminTextareaWidget

from omniman import registry
from omniman.admin.base import ManagerAdmin
from omniman.flow import build_order_flow, validate_order_flow
from omniman.models import Channel


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
        (_("Configuration"), {"fields": ("config",)}),
    )

    def has_delete_permission(self, request, obj=None):
        return False  # orders and sessions point at it: deactivate instead

    def get_readonly_fields(self, request, obj=None):
        return ("code",) if obj is not None else ()  # orders and sessions are addressed by it

    @display(description=_("Active"), label={"yes": "success", "no": ""}, ordering="is_active")
    def active_badge(self, obj):
        return ("yes", "Active") if obj.is_active else ("no", "Inactive")

    @display(description=_("Currency"))
    def currency(self, obj):
        return obj.currency

    @display(description=_("Required checks"))
    def required_checks(self, obj):
        return ", ".join(obj.required_checks) or "—"
