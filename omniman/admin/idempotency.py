"""Idempotency keys: read-only."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from omniman.admin.base import ReadOnlyAdmin
from omniman.admin.renderers import IDEMPOTENCY_BADGES, badge, pretty_json
from omniman.models import IdempotencyKey


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("scope", "key", "status_badge", "response_code", "fingerprint", "expires_at", "created_at")
    list_filter = (("status", admin.ChoicesFieldListFilter),)
    search_fields = ("scope", "key", "fingerprint")
    fields = ("scope", "key", "fingerprint", "status_view", "response_code", "response_view", "expires_at", "created_at", "updated_at")
    readonly_fields = fields

    @display(description=_("Status"), ordering="status", label=IDEMPOTENCY_BADGES)
    def status_badge(self, obj):
        return obj.status, obj.get_status_display()

    @display(description=_("Status"))
    def status_view(self, obj):
        return badge(obj.get_status_display(), IDEMPOTENCY_BADGES.get(obj.status, ""))

    @display(description=_("Response body"))
    def response_view(self, obj):
        return pretty_json(obj.response_body) if obj.response_body is not None else "—"
