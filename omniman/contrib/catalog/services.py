"""Ordering from the catalog: add a product to a session by SKU, barcode or name.

The kernel knows nothing of catalogs (layers: kernel ← contrib ← web/api/admin),
so this use case lives here: the catalog finds the product, then the kernel's
``ModifyService`` adds it as an ``add_line`` op (name, catalog price, kitchen
station in ``meta``). The lookup runs before the session's row lock: it reads
only the catalog, and an unknown product is refused whatever the session's rev.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog import modifiers as line_modifiers
from omniman.contrib.catalog.protocols import CatalogItem, CatalogOptionGroup
from omniman.exceptions import ValidationError
from omniman.models import Session
from omniman.services import ModifyService, SessionService

MAX_QUERY = 64


class CatalogOrderingService:
    @staticmethod
    def find_product(*, sku: str = "", query: str = "") -> CatalogItem:
        """The active product with this ``sku``; else, with no ``sku``, the best match for ``query``
        (an exact SKU or barcode — a scan — first, then a name). ``ValidationError("unknown_product")`` otherwise."""
        sku = (sku or "").strip()
        query = (query or "").strip()[:MAX_QUERY]
        catalog = get_catalog()
        item = catalog.get(sku) if sku else None
        if item is None and query and not sku:
            found = catalog.search(query, limit=1)
            item = found[0] if found else None
        if item is None:
            wanted = sku or query
            raise ValidationError(
                "unknown_product",
                _("No product matches “%(query)s”.") % {"query": wanted} if wanted else _("Pick a product."),
                {"sku": wanted, "field": "sku" if sku or not query else "q"},
            )
        return item

    @staticmethod
    def option_groups(item: CatalogItem) -> list[CatalogOptionGroup]:
        """The product's active option groups with their options (none when it has none)."""
        if not item.has_options:
            return []
        many = getattr(get_catalog(), "option_groups_many", None)
        return list((many([item.sku]) if many is not None else {}).get(item.sku, []))

    @staticmethod
    def check_modifiers(item: CatalogItem, modifiers: Any) -> list[dict[str, Any]]:
        """The canonical ``meta["modifiers"]`` for ``item`` with these choices (see ``catalog.modifiers.resolve``).

        ``modifiers`` is a list of ``{"group", "option"}`` objects or ``"group:option"`` texts.
        Errors: ``invalid_field``, ``unknown_option``, ``options_required``, ``too_many_options``.
        """
        pairs = line_modifiers.requested(None, modifiers)
        groups = CatalogOrderingService.option_groups(item) if (pairs or item.has_options) else []
        return line_modifiers.resolve(line_id=None, sku=item.sku, name=item.name, pairs=pairs, groups=groups)

    @staticmethod
    def add_product(
        session_key: str,
        channel_code: str,
        *,
        sku: str = "",
        query: str = "",
        qty: Any = "1",
        modifiers: Any = None,
        expected_rev: Any = None,
        ctx: dict[str, Any] | None = None,
    ) -> Session:
        """Add one catalog product to the session (``find_product`` picks it), with its chosen options.

        The line carries the catalog's name and price (``unit_price_q``, when the
        catalog has one), ``meta.station`` (the kitchen station) and
        ``meta.modifiers`` (``check_modifiers``; the pricing modifier adds their
        price deltas). The same product with the same modifiers (and no note,
        hold or price override) adds to the line already there; different ones
        make a new line. Errors: ``unknown_product``, ``options_required`` (a
        product with a forced choice added without it: the POS asks for it),
        ``unknown_option``, ``too_many_options``, ``invalid_field``, and every
        ``modify_session`` error (``stale_rev``, ``locked``, ``invalid_qty``…);
        nothing is written on any of them.
        """
        item = CatalogOrderingService.find_product(sku=sku, query=query)
        entries = CatalogOrderingService.check_modifiers(item, modifiers)
        return ModifyService.modify_session(
            session_key, channel_code, [add_line_op(item, qty, entries)], ctx=ctx, expected_rev=expected_rev
        )

    @staticmethod
    def open_basket(
        channel_code: str,
        *,
        session_key: str,
        sku: str = "",
        query: str = "",
        qty: Any = "1",
        modifiers: Any = None,
        expected_rev: Any = None,
        actor: str = "system",
    ) -> Session:
        """Add a product (with its chosen options, as ``add_product``) to the basket ``session_key``, opening it
        with that first line if it does not exist yet.

        A basket exists once it has an item, never empty: the screen of a new
        basket mints its key, and its first add opens it (one transaction:
        ``SessionService.open_session(session_key=..., items=[...])``, the new
        session at ``rev == 1``); the adds after it (taps queued behind the
        first) find it open and add to it with their ``expected_rev``. Errors:
        ``unknown_product``, ``channel_not_found``, ``session_key_conflict``
        (another channel's key), ``already_committed``, ``stale_rev``,
        ``invalid_qty``, and ``add_product``'s option codes (``options_required``…); nothing is written on any of them.
        """
        item = CatalogOrderingService.find_product(sku=sku, query=query)
        op = add_line_op(item, qty, CatalogOrderingService.check_modifiers(item, modifiers))
        line = {key: value for key, value in op.items() if key != "op"}
        with transaction.atomic():
            session = SessionService.open_session(channel_code, session_key=session_key, items=[line], actor=actor)
            if session.created:
                return session
            return ModifyService.modify_session(
                session.session_key, channel_code, [op], ctx={"actor": actor}, expected_rev=expected_rev
            )

def add_line_op(item: CatalogItem, qty: Any = "1", modifiers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``add_line`` op of a catalog product (merging into the same line when there is one)."""
    op: dict[str, Any] = {"op": "add_line", "sku": item.sku, "qty": qty, "name": item.name, "merge": True}
    if item.price_q is not None:
        op["unit_price_q"] = item.price_q
    meta: dict[str, Any] = {}
    if item.station:
        meta["station"] = item.station
    if modifiers:
        meta[line_modifiers.MODIFIERS] = [{"group": entry["group"], "option": entry["option"]} for entry in modifiers]
    if meta:
        op["meta"] = meta
    return op


class CatalogStationSource:
    """The kitchen station of each SKU, from the catalog (the registry's ``StationSource``: one query).

    The catalog's ``stations_many(skus) -> {sku: station}`` when it has one (the
    model catalog's: one statement without the option groups' ``EXISTS``, on
    every commit), else the stations of its ``get_many``.
    """

    def stations_for(self, skus: list[str]) -> dict[str, str]:
        from omniman.contrib.catalog import get_catalog

        catalog, wanted = get_catalog(), sorted(set(skus))
        many = getattr(catalog, "stations_many", None)
        if many is not None:
            return {sku: station for sku, station in many(wanted).items() if station}
        return {sku: entry.station for sku, entry in catalog.get_many(wanted).items() if entry.station}


class CatalogCategorySource:
    """The category of each SKU, from the catalog's products, active or not (the registry's ``CategorySource``: one query)."""

    def categories_for(self, skus: list[str]) -> dict[str, str]:
        from omniman.contrib.catalog.models import Product

        rows = Product.objects.filter(sku__in=sorted(set(skus)), category__isnull=False).values_list("sku", "category__name")
        return dict(rows)
