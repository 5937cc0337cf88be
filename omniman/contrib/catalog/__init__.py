"""A small SKU catalog: products by category, price, kitchen station and barcode."""

from __future__ import annotations

from django.apps import apps as django_apps  # (this package has an apps.py submodule)

from omniman import conf

DEFAULT_BACKEND = "omniman.contrib.catalog.backends.ModelCatalogBackend"


class EmptyCatalog:
    """The catalog when there is none: no item, no category (a ``CatalogBackend``).

    What ``get_catalog()`` answers when ``OMNIMAN["CATALOG_BACKEND"]`` is not set
    and this app is not in ``INSTALLED_APPS``: the POS shows an empty grid and
    refuses an unknown product (``unknown_product``), the kitchen shows no
    station, pricing reports the price missing, stock offers no alternative.
    """

    def search(self, query: str = "", *, category: str | None = None, limit: int = 24) -> list:
        return []

    def get(self, sku: str) -> None:
        return None

    def get_many(self, skus: list[str]) -> dict:
        return {}

    def list_categories(self) -> list:
        return []

    def alternatives(self, sku: str) -> list:
        return []

    def alternatives_many(self, skus: list[str]) -> dict[str, list]:
        return {sku: [] for sku in skus}

    def option_groups_many(self, skus: list[str]) -> dict[str, list]:
        return {}


def get_catalog():
    """The configured ``CatalogBackend``: ``OMNIMAN["CATALOG_BACKEND"]`` (a dotted path), else the
    model catalog when this app is installed, else an ``EmptyCatalog``."""
    if conf.get("CATALOG_BACKEND", None) is None and not django_apps.is_installed("omniman.contrib.catalog"):
        return EmptyCatalog()
    return conf.import_backend("CATALOG_BACKEND", DEFAULT_BACKEND)
