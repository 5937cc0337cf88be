"""Stock in the admin: levels are edited (each change recorded as a movement); holds and movements are read-only."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from omniman.admin.base import ManagerAdmin, ReadOnlyAdmin
from omniman.contrib.stock.models import StockHold, StockLevel, StockMovement
from omniman.contrib.stock.services import StockService


def _live_holds():
    return (
        StockHold.objects.filter(sku=OuterRef("sku"), status=StockHold.Status.ACTIVE, expires_at__gt=timezone.now())
        .order_by()
        .values("sku")
        .annotate(total=Sum("qty"))
        .values("total")
    )


@admin.register(StockLevel)
class StockLevelAdmin(ManagerAdmin):
    list_display = ("sku", "on_hand", "held", "available", "track", "updated_at")
    list_editable = ("on_hand", "track")
    list_filter = ("track",)
    search_fields = ("sku",)

    def get_queryset(self, request):
        decimal = DecimalField(max_digits=12, decimal_places=3)
        return super().get_queryset(request).annotate(
            held_qty=Coalesce(Subquery(_live_holds(), output_field=decimal), Value(0), output_field=decimal)
        )

    def get_readonly_fields(self, request, obj=None):
        return ("sku",) if obj is not None else ()

    @admin.display(description=_("Held"), ordering="held_qty")
    def held(self, obj):
        return getattr(obj, "held_qty", 0)

    @admin.display(description=_("Available"))
    def available(self, obj):
        if not obj.track:
            return _("unlimited")
        return max(obj.on_hand - getattr(obj, "held_qty", 0), 0)

    def save_model(self, request, obj, form, change):
        # Through the service, so each change of on_hand leaves an "adjust" movement.
        level = StockService.set_on_hand(obj.sku, obj.on_hand, track=obj.track, actor=request.user.get_username())
        obj.pk, obj.updated_at = level.pk, level.updated_at


@admin.register(StockHold)
class StockHoldAdmin(ReadOnlyAdmin):
    list_display = ("id", "sku", "qty", "reference", "line_id", "status", "expires_at", "created_at")
    list_filter = ("status",)
    search_fields = ("sku", "reference")
    date_hierarchy = "created_at"


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "sku", "delta", "reason", "reference", "actor")
    list_filter = ("reason",)
    search_fields = ("sku", "reference")
    date_hierarchy = "created_at"
