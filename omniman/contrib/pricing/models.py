from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q


class PriceList(models.Model):
    """Channel-specific prices that win over the catalog's ``price_q``.

    A list applies to the channels it is linked to (none: to no channel).
    When several active lists of one channel price the same SKU, the highest
    ``priority`` wins, then the lowest ``code``.
    """

    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    channels = models.ManyToManyField("omniman.Channel", blank=True, related_name="price_lists")
    priority = models.IntegerField(
        default=0, help_text="When several active lists of a channel price a SKU, the highest priority wins."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_pricing"
        ordering = ["-priority", "code"]

    def __str__(self) -> str:
        return self.name or self.code


class PriceListItem(models.Model):
    price_list = models.ForeignKey(PriceList, on_delete=models.CASCADE, related_name="items")
    sku = models.CharField(max_length=64, db_index=True)
    price_q = models.BigIntegerField(validators=[MinValueValidator(0)], help_text="Unit price in cents.")

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_pricing"
        ordering = ["price_list", "sku"]
        constraints = [
            models.UniqueConstraint(fields=["price_list", "sku"], name="pricing_one_price_per_list_and_sku"),
            models.CheckConstraint(condition=Q(price_q__gte=0), name="pricing_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.price_list_id}:{self.sku} = {self.price_q}"
