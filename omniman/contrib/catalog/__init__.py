"""A small SKU catalog: products by category, price, kitchen station and barcode."""

from __future__ import annotations

from omniman import conf

DEFAULT_BACKEND = "omniman.contrib.catalog.backends.ModelCatalogBackend"


def get_catalog():
    """The configured ``CatalogBackend`` (``OMNIMAN["CATALOG_BACKEND"]``, a dotted path)."""
    return conf.import_backend("CATALOG_BACKEND", DEFAULT_BACKEND)
