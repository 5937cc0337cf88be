from django.contrib import admin

from omniman.admin.base import ManagerAdmin, ManagerInline
from omniman.contrib.pricing.models import PriceList, PriceListItem


class PriceListItemInline(ManagerInline):
    model = PriceListItem
    extra = 1
    fields = ("sku", "price_q")


@admin.register(PriceList)
class PriceListAdmin(ManagerAdmin):
    list_display = ("code", "name", "priority", "is_active")
    list_editable = ("priority", "is_active")
    list_filter = ("is_active", "channels")
    search_fields = ("code", "name", "items__sku")
    filter_horizontal = ("channels",)
    inlines = [PriceListItemInline]
