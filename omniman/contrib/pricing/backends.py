"""The default price source: the channel's active price lists, else the catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connections, router

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog.backends import FIELDS, ModelCatalogBackend, _item, products_sql
from omniman.contrib.catalog.models import Product
from omniman.contrib.catalog.protocols import CatalogItem
from omniman.contrib.pricing.models import PriceList, PriceListItem
from omniman.models import Channel, kept_per_connection


def _channel_filter(channel: Any) -> dict[str, Any] | None:
    if channel is None:
        return None
    if isinstance(channel, str):
        return {"price_list__channels__code": channel}
    return {"price_list__channels": channel}


@dataclass(frozen=True)
class LinesRead:
    """``read_for_lines``' answer: what ``get_prices``, ``get_many`` and ``option_groups_many`` would say."""

    prices: dict[str, int]  # get_prices(skus, channel)
    items: dict[str, CatalogItem]  # the catalog's get_many(skus)
    optioned: frozenset[str]  # the SKUs option_groups_many(skus) answers (an active product with an active group)


def _lines_sql(connection, count: int, listed: bool) -> str:
    """One statement: the catalog's active products among the SKUs (``products_sql(listed_only=False)``,
    kind 0) and, when ``listed``, the price list prices of the same SKUs on one channel (kind 1), ordered as
    ``get_prices`` reads them (SKU, highest priority, lowest list code). Kept per connection and count."""

    def build() -> str:
        qn = connection.ops.quote_name
        products = f"SELECT 0, x.*, NULL, NULL FROM ({products_sql(connection, count, listed_only=False)}) x"
        if not listed:
            return products
        item, plist = PriceListItem._meta, PriceList._meta
        link = PriceList.channels.through._meta
        pk = f"pl.{qn(plist.pk.column)}"
        # kind, sku, then NULL for every product column but the price, then the list's priority and code.
        columns = ["1", f"i.{qn(item.get_field('sku').column)}", "NULL", "NULL", f"i.{qn(item.get_field('price_q').column)}"]
        columns += ["NULL"] * (len(FIELDS) + 1 - 4)  # station … listed
        columns += [f"pl.{qn(plist.get_field('priority').column)}", f"pl.{qn(plist.get_field('code').column)}"]
        lists = (
            f"SELECT {', '.join(columns)} FROM {qn(item.db_table)} i "
            f"INNER JOIN {qn(plist.db_table)} pl ON i.{qn(item.get_field('price_list').column)} = {pk} "
            f"INNER JOIN {qn(link.db_table)} lc ON lc.{qn(link.get_field('pricelist').column)} = {pk} "
            f"WHERE lc.{qn(link.get_field('channel').column)} = %s AND pl.{qn(plist.get_field('is_active').column)} "
            f"AND i.{qn(item.get_field('sku').column)} IN ({', '.join(['%s'] * count)})"
        )
        last = len(columns)
        return f"{products} UNION ALL {lists} ORDER BY 1, 2, {last - 1} DESC, {last}"

    return kept_per_connection(connection, ("pricing.lines", count, listed), build) if count <= 64 else build()


class CatalogPricingBackend:
    """A channel's active price list price wins; else the catalog product's ``price_q``; else ``None``.

    ``get_prices`` costs one query for the price lists and, for the SKUs no
    list prices, one ``get_catalog().get_many`` call (none when given the
    catalog's ``items``).
    """

    # get_prices takes the catalog's answer as ``items=`` (the pricing modifiers pass it when they read it anyway).
    takes_catalog_items = True

    def read_for_lines(self, skus: Iterable[str], channel: Any, *, catalog: Any) -> LinesRead | None:
        """``get_prices(skus, channel)``, ``catalog.get_many(skus)`` and which SKUs ``catalog.option_groups_many``
        would answer, in one statement, when this backend and ``catalog`` are the model ones (neither's reads
        overridden, both on one database) and ``channel`` is a ``Channel`` or ``None``; else ``None`` (the caller
        asks them one by one). The pricing modifiers' ``prepare`` reads a session's lines with it."""
        if (
            type(self).get_prices is not CatalogPricingBackend.get_prices
            or not isinstance(catalog, ModelCatalogBackend)
            or type(catalog).get_many is not ModelCatalogBackend.get_many
            or type(catalog).option_groups_many is not ModelCatalogBackend.option_groups_many
            or not (channel is None or isinstance(channel, Channel))
            or router.db_for_read(Product) != router.db_for_read(PriceListItem)
        ):
            return None
        wanted = sorted({sku for sku in skus if isinstance(sku, str) and sku})
        if not wanted:
            return LinesRead(prices={}, items={}, optioned=frozenset())
        listed = channel is not None
        connection = connections[router.db_for_read(Product)]
        with connection.cursor() as cursor:
            cursor.execute(_lines_sql(connection, len(wanted), listed), [*wanted, channel.pk, *wanted] if listed else wanted)
            rows = cursor.fetchall()
        prices: dict[str, int] = {}
        items: dict[str, CatalogItem] = {}
        optioned = set()
        for row in rows:
            if row[0]:  # a price list's price: the first of a SKU wins
                prices.setdefault(row[1], row[4])
                continue
            if row[8]:
                optioned.add(row[1])
            if row[10]:
                items[row[1]] = _item(dict(zip(FIELDS, row[1:])))
        for sku, item in items.items():
            if sku not in prices and item.price_q is not None:
                prices[sku] = item.price_q
        return LinesRead(prices=prices, items=items, optioned=frozenset(optioned))

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
