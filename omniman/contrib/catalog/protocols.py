"""What the POS, pricing and stock need from a catalog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CatalogItem:
    sku: str
    name: str
    category: str  # category code, "" when uncategorised
    price_q: int | None  # None: no price (the pricing check raises an issue)
    station: str = ""  # kitchen station: "bar", "kitchen", "pastry", …
    barcode: str = ""
    is_active: bool = True
    has_options: bool = False  # some option group is offered with it
    forced: bool = False  # some group is required: the POS asks before adding it


@dataclass(frozen=True)
class CatalogOption:
    code: str
    name: str
    price_q: int = 0  # added to the line's unit price
    sku: str = ""


@dataclass(frozen=True)
class CatalogOptionGroup:
    code: str
    name: str
    min_choices: int = 0
    max_choices: int = 1
    options: tuple[CatalogOption, ...] = ()

    @property
    def required(self) -> bool:
        return self.min_choices > 0


@dataclass(frozen=True)
class CatalogCategory:
    code: str
    name: str
    sort_order: int = 0


@runtime_checkable
class CatalogBackend(Protocol):
    def search(self, query: str = "", *, category: str | None = None, limit: int = 24) -> list[CatalogItem]:
        """Active items matching ``query`` (exact SKU or barcode first, then name/SKU contains)."""

    def get(self, sku: str) -> CatalogItem | None:
        """One active item, or ``None``."""

    def get_many(self, skus: list[str]) -> dict[str, CatalogItem]:
        """Active items by SKU, in one round trip (for modifiers' ``prepare`` and checks)."""

    def list_categories(self) -> list[CatalogCategory]:
        """Active categories in display order."""

    def alternatives(self, sku: str) -> list[CatalogItem]:
        """Active items the shop offers instead of ``sku`` (for "replace with …" actions).

        A backend may also define ``alternatives_many(skus) -> {sku: [CatalogItem, …]}``
        (the alternatives of many SKUs at once, each without itself); stock's
        check uses it when present, else asks ``alternatives()`` once per SKU.

        A backend may also define ``option_groups_many(skus) -> {sku: [CatalogOptionGroup, …]}``
        (each product's active option groups with their active options, in display
        order); without it no product has options.

        A backend may also define ``stations_many(skus) -> {sku: station}`` (the
        kitchen stations of the products ``get_many`` answers, those without one
        left out); the commit's station source uses it when present, else ``get_many``.
        """
