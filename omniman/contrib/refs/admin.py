from django.contrib import admin

from omniman.admin.base import ReadOnlyAdmin
from omniman.contrib.refs.models import Ref, TicketSequence


@admin.register(Ref)
class RefAdmin(ReadOnlyAdmin):
    list_display = ("scope", "key", "session_key", "order_ref", "created_at", "released_at")
    list_filter = ("released_at",)
    search_fields = ("scope", "key", "session_key", "order_ref")


@admin.register(TicketSequence)
class TicketSequenceAdmin(ReadOnlyAdmin):
    list_display = ("scope", "day", "last", "updated_at")
    date_hierarchy = "day"
