from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from omniman.admin.base import ManagerAdmin, ManagerInline
from omniman.contrib.catalog.models import Category, Option, OptionGroup, Product


@admin.register(Category)
class CategoryAdmin(ManagerAdmin):
    list_display = ("code", "name", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")
    search_fields = ("code", "name")


@admin.register(Product)
class ProductAdmin(ManagerAdmin):
    list_display = ("sku", "name", "category", "price_q", "station", "is_active", "sort_order")
    list_filter = ("is_active", "station", "category", "option_groups")
    search_fields = ("sku", "name", "barcode")
    list_select_related = ("category",)
    filter_horizontal = ("alternatives", "option_groups")


class OptionInline(ManagerInline):
    model = Option
    extra = 1
    fields = ("code", "name", "price_q", "sku", "sort_order", "is_active")


@admin.register(OptionGroup)
class OptionGroupAdmin(ManagerAdmin):
    list_display = ("code", "name", "min_choices", "max_choices", "is_required", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code", "name", "options__name", "products__sku")
    inlines = [OptionInline]

    @admin.display(boolean=True, description=_("required"))
    def is_required(self, obj: OptionGroup) -> bool:
        return obj.required
