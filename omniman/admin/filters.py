"""List filters of the manager review."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.validators import EMPTY_VALUES
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from unfold.contrib.filters.admin import DropdownFilter, RangeDateFilter
from unfold.utils import parse_date_str

from omniman.models import Directive, Order


class CreatedOnFilter(RangeDateFilter):
    """Days (in the project's time zone), both ends included."""

    def queryset(self, request, queryset):
        filters = {}
        for suffix, lookup in (("_from", "gte"), ("_to", "lt")):
            value = self.used_parameters.get(self.parameter_name + suffix)
            if value in EMPTY_VALUES:
                continue
            day = parse_date_str(value) if isinstance(value, str) else None
            if day is None:
                return queryset.none()
            if lookup == "lt":
                day += timedelta(days=1)
            filters[f"{self.field_path}__{lookup}"] = timezone.make_aware(datetime.combine(day, time.min))
        return queryset.filter(**filters)


class OrderStatusFilter(DropdownFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        statuses = Order.objects.order_by("status").values_list("status", flat=True).distinct()
        return [(status, status.replace("_", " ").capitalize()) for status in statuses]

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


class DirectiveTopicFilter(DropdownFilter):
    title = _("topic")
    parameter_name = "topic"

    def lookups(self, request, model_admin):
        topics = Directive.objects.order_by("topic").values_list("topic", flat=True).distinct()
        return [(topic, topic) for topic in topics]

    def queryset(self, request, queryset):
        return queryset.filter(topic=self.value()) if self.value() else queryset
