"""The floor plan: managers add areas and tables (label, seats, place on the grid); the moves between tables are read-only."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.decorators import display

from omniman.admin.base import ManagerAdmin, ManagerInline, ReadOnlyAdmin
from omniman.models import FloorArea, FloorTable, TableMove


class FloorTableInline(ManagerInline):
    model = FloorTable
    fields = ("label", "seats", "x", "y", "w", "h", "is_active")
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        if obj is not None:
            # The inline's tables are the area's channel's.
            formset.form.base_fields.pop("channel", None)
        return formset


@admin.register(FloorArea)
class FloorAreaAdmin(ManagerAdmin):
    list_display = ("name", "channel", "position", "tables_count", "editor_link")
    list_filter = ("channel",)
    list_select_related = ("channel",)
    ordering = ("channel", "position", "id")
    inlines = [FloorTableInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(table_count=Count("tables"))

    @display(description=_("Tables"), ordering="table_count")
    def tables_count(self, obj):
        return obj.table_count

    @display(description=_("Editor"))
    def editor_link(self, obj):
        return format_html('<a href="{}">{}</a>', reverse("pos:floor_edit", args=[obj.channel.code]), _("Place tables"))

    def save_formset(self, request, form, formset, change):
        for instance in formset.save(commit=False):
            instance.channel_id = form.instance.channel_id
            instance.save()
        for gone in formset.deleted_objects:
            gone.delete()
        formset.save_m2m()


@admin.register(FloorTable)
class FloorTableAdmin(ManagerAdmin):
    list_display = ("label", "channel", "area", "seats", "x", "y", "w", "h", "is_active")
    list_filter = ("channel", "area", "is_active")
    list_select_related = ("channel", "area")
    list_editable = ("seats", "x", "y", "w", "h", "is_active")
    search_fields = ("label",)
    ordering = ("channel", "area__position", "y", "x")
    fields = ("channel", "area", "label", "seats", "x", "y", "w", "h", "is_active")


@admin.register(TableMove)
class TableMoveAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "channel", "kind", "from_table", "to_table", "actor", "order_refs")
    list_filter = ("channel", "kind")
    list_select_related = ("channel",)
    search_fields = ("from_table", "to_table", "from_session_key", "to_session_key", "actor")
    date_hierarchy = "created_at"
