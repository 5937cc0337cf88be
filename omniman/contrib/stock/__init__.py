"""Stock levels and holds: the ``stock.hold`` check, ``stock.commit`` and ``stock.release``."""

from __future__ import annotations

from omniman import conf

DEFAULT_BACKEND = "omniman.contrib.stock.backends.DatabaseStockBackend"


def get_stock_backend():
    """The configured ``StockBackend`` (``OMNIMAN["STOCK_BACKEND"]``, a dotted path)."""
    return conf.import_backend("STOCK_BACKEND", DEFAULT_BACKEND)
