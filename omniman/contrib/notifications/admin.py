from django.contrib import admin

from omniman.admin.base import ReadOnlyAdmin
from omniman.contrib.notifications.models import NotificationDelivery


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("delivered_at", "order_ref", "event", "backend", "backend_index", "directive_id")
    list_filter = ("event", "backend")
    search_fields = ("order_ref", "occurrence")
    date_hierarchy = "delivered_at"
