from __future__ import annotations

from django.db import models


class Category(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    sort_order = models.IntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_catalog"
        ordering = ["sort_order", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    class Station(models.TextChoices):
        BAR = "bar", "Bar"
        KITCHEN = "kitchen", "Kitchen"
        PASTRY = "pastry", "Pastry"

    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=255)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="products")
    price_q = models.BigIntegerField(null=True, blank=True, help_text="Price in cents; empty means not for sale at a set price.")
    station = models.CharField(max_length=32, blank=True, default="", help_text="Kitchen station that prepares it.")
    barcode = models.CharField(max_length=64, blank=True, default="", db_index=True)
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)
    alternatives = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="alternative_for")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_catalog"
        ordering = ["sort_order", "name"]
        indexes = [models.Index(fields=["is_active", "category", "sort_order"], name="catalog_product_grid")]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"
