"""The default price source: the channel's active price lists, else the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from omniman.contrib.catalog import get_catalog
from omniman.contrib.pricing.models import PriceListItem


def _channel_filter(channel: Any) -> dict[str, Any] | None:
    if channel is None:
        return None
    if isinstance(channel, str):
        return {"price_list__channels__code": channel}
    return {"price_list__channels": channel}


class CatalogPricingBackend:
    """A channel's active price list price wins; else the catalog product's ``price_q``; else ``None``.

    ``get_prices`` costs one query for the price lists and, for the SKUs no
    list prices, one ``get_catalog().get_many`` call (none when given the
    catalog's ``items``).
    """

    # get_prices takes the catalog's answer as ``items=`` (the pricing modifiers pass it when they read it anyway).
    takes_catalog_items = True

    def get_price(self, sku: str, channel: Any) -> int | None:
        return self.get_prices([sku], channel).get(sku)

    def get_prices(
        self, skus: Iterable[str], channel: Any, *, items: dict[str, Any] | None = None
    ) -> dict[str, int]:
        """Each SKU's price; ``items``, the catalog's ``get_many`` answer for all of ``skus`` when the caller has
        read it already, stands in for the catalog read."""
        wanted = {sku for sku in skus if isinstance(sku, str) and sku}
        if not wanted:
            return {}
        prices: dict[str, int] = {}
        scope = _channel_filter(channel)
        if scope is not None:
            rows = (
                PriceListItem.objects.filter(sku__in=wanted, price_list__is_active=True, **scope)
                .order_by("sku", "-price_list__priority", "price_list__code")
                .values_list("sku", "price_q")
            )
            for sku, price_q in rows:
                prices.setdefault(sku, price_q)
        missing = wanted - prices.keys()
        if missing:
            found = items if items is not None else get_catalog().get_many(sorted(missing))
            for sku, item in found.items():
                if sku not in missing:
                    continue
                if item.price_q is not None:
                    prices[sku] = item.price_q
        return prices
