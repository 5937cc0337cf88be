"""Directive workers' heartbeats: read-only (each ``process_directives`` writes its own row)."""

from __future__ import annotations

from django.contrib import admin

from omniman.admin.base import ReadOnlyAdmin
from omniman.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ("name", "host", "pid", "last_seen_at", "started_at", "processed")
    search_fields = ("name", "host")
    fields = ("name", "host", "pid", "started_at", "last_seen_at", "processed")
    readonly_fields = fields

