from django.contrib import admin

from omniman.admin.base import ManagerAdmin
from omniman.contrib.catalog.models import Category, Product


@admin.register(Category)
class CategoryAdmin(ManagerAdmin):
    list_display = ("code", "name", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")
    search_fields = ("code", "name")


@admin.register(Product)
class ProductAdmin(ManagerAdmin):
    list_display = ("sku", "name", "category", "price_q", "station", "is_active", "sort_order")
    list_filter = ("is_active", "station", "category")
    search_fields = ("sku", "name", "barcode")
    list_select_related = ("category",)
    filter_horizontal = ("alternatives",)
