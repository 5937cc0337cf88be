from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from omniman.monetary import validate_price_q


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
    price_q = models.BigIntegerField(
        _("price (cents)"),
        null=True,
        blank=True,
        validators=[validate_price_q],
        help_text=_("Price in cents, never negative; empty means not for sale at a set price."),
    )
    station = models.CharField(max_length=32, blank=True, default="", help_text="Kitchen station that prepares it.")
    barcode = models.CharField(max_length=64, blank=True, default="", db_index=True)
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)
    alternatives = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="alternative_for")
    option_groups = models.ManyToManyField(
        "OptionGroup",
        blank=True,
        related_name="products",
        verbose_name=_("option groups"),
        help_text=_("Choices asked with this product (milk type, doneness, extras…)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Explicit: imported while the app is not installed, the model must not join the "omniman" app.
        app_label = "omniman_catalog"
        ordering = ["sort_order", "name"]
        indexes = [models.Index(fields=["is_active", "category", "sort_order"], name="catalog_product_grid")]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_q__isnull=True) | Q(price_q__gte=0),
                name="catalog_product_price_not_negative",
                violation_error_code="invalid_price",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuses a negative (or absurd) price whoever saves: the admin, a script, the demo."""
        if self.price_q is not None:
            try:
                validate_price_q(self.price_q)
            except ValidationError as exc:
                raise ValidationError({"price_q": exc.error_list}) from exc
        super().save(*args, **kwargs)


class OptionGroup(models.Model):
    """A choice offered with some products: milk type, doneness, extras, "without".

    ``min_choices`` ≥ 1 makes it required (a forced choice: the POS asks for it
    before adding the product); ``max_choices`` caps how many options one line
    may carry (1: pick one).
    """

    code = models.SlugField(_("code"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=120)
    min_choices = models.PositiveSmallIntegerField(
        _("minimum choices"), default=0, help_text=_("0: optional; 1 or more: the POS asks for it (a forced choice).")
    )
    max_choices = models.PositiveSmallIntegerField(_("maximum choices"), default=1)
    sort_order = models.IntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        app_label = "omniman_catalog"
        ordering = ["sort_order", "name"]
        verbose_name = _("option group")
        verbose_name_plural = _("option groups")
        constraints = [
            models.CheckConstraint(
                condition=Q(max_choices__gte=1) & Q(max_choices__gte=F("min_choices")),
                name="catalog_optiongroup_choices",
                violation_error_code="invalid_choices",
                violation_error_message=_("The maximum must be at least 1 and at least the minimum."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def required(self) -> bool:
        return self.min_choices > 0


class Option(models.Model):
    """One choice of a group, with what it adds to the line's unit price (cents, ≥ 0) and an optional SKU."""

    group = models.ForeignKey(OptionGroup, on_delete=models.CASCADE, related_name="options", verbose_name=_("group"))
    code = models.SlugField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=120)
    price_q = models.BigIntegerField(
        _("price delta (cents)"), default=0, validators=[validate_price_q], help_text=_("Added to the unit price.")
    )
    sku = models.CharField(_("SKU"), max_length=64, blank=True, default="", help_text=_("Optional, for reports and stock."))
    sort_order = models.IntegerField(_("sort order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        app_label = "omniman_catalog"
        ordering = ["sort_order", "name"]
        verbose_name = _("option")
        verbose_name_plural = _("options")
        constraints = [
            models.UniqueConstraint(fields=["group", "code"], name="catalog_option_code_per_group"),
            models.CheckConstraint(
                condition=Q(price_q__gte=0), name="catalog_option_price_not_negative", violation_error_code="invalid_price"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} — {self.name}"
