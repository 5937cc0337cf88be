"""The pricing modifiers: list prices and priced options (the totals are the kernel's: omniman.adjustments).

Both are pure and deterministic: what they write depends only on the
session, the channel's config and the prices ``prepare()`` loaded, never on
what an earlier run wrote, so running them twice gives the same session.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog import modifiers as line_modifiers
from omniman.contrib.pricing import get_pricing_backend, pricing_config
from omniman.exceptions import OmnimanError, ValidationError
from omniman.models import Channel
from omniman.monetary import monetary_mult, parse_price_q, parse_qty

CTX_KEY = "omniman.pricing"

# Line meta keys this app writes (and owns).
PRICE_MISSING = "price_missing"
MISSING_OPTIONS = "missing_options"
OPTIONS_Q = "options_q"


@dataclass(frozen=True)
class PreparedPrices:
    """What ``prepare()`` loaded for one session, passed to ``apply()`` through ``ctx``."""

    channel_id: int
    skus: frozenset[str]
    prices: dict[str, int]
    names: dict[str, str]
    named_skus: frozenset[str]
    groups: dict[str, list] = None  # sku → its CatalogOptionGroups (products without any are absent)


def is_priced(channel: Channel, session: Any) -> bool:
    """The app prices this session: an internal session of a channel with ``config["pricing"]``."""
    return session.pricing_policy == Channel.PricingPolicy.INTERNAL and pricing_config(channel) is not None


def line_options(line: dict[str, Any]) -> list[tuple[str, Decimal]]:
    """The priced options of a line: ``meta["options"]`` entries that name a SKU, as (sku, qty per unit).

    An entry is a SKU (``"EXTRA-CHEESE"``) or an object ``{"sku", "qty"?, "name"?}``;
    an object without ``sku`` is a free, descriptive option (``{"name": "well done"}``).
    """
    raw = (line.get("meta") or {}).get("options")
    if raw is None or raw == []:
        return []

    def bad(why: str) -> ValidationError:
        return ValidationError(
            "invalid_field",
            f"meta.options of line {line.get('line_id')!r}: {why}.",
            {"field": "meta.options", "line_id": line.get("line_id")},
        )

    if not isinstance(raw, list):
        raise bad("must be a list of SKUs or {sku, qty} objects")
    options: list[tuple[str, Decimal]] = []
    for entry in raw:
        if isinstance(entry, str) and entry.strip():
            options.append((entry.strip(), Decimal(1)))
        elif isinstance(entry, dict):
            sku = entry.get("sku")
            if sku is None:
                continue  # descriptive only
            if not isinstance(sku, str) or not sku.strip():
                raise bad("an option's sku must be text")
            qty = parse_qty(entry.get("qty", 1))
            if qty is None:
                raise bad("an option's qty must be a positive number with at most 3 decimal places")
            options.append((sku.strip(), qty))
        else:
            raise bad("each option is a SKU or an object")
    return options


def prepare_prices(*, channel: Channel, session: Any, ctx: dict[str, Any]) -> PreparedPrices | None:
    """Load, in bulk, the prices of every SKU the session's lines and options name (and missing names).

    One ``PricingBackend.get_prices`` call (two queries with the default
    backend) plus one catalog ``get_many`` when some line has no name of its
    own — with the default backend that one read also stands for the
    backend's (two queries in all) — and the products' option groups
    (``option_groups_many``); shared by the pricing modifiers through ``ctx``.

    A backend with ``read_for_lines(skus, channel, *, catalog)`` (the default
    one, on the model catalog) answers the prices, the catalog's rows and
    which products have option groups in one statement: the option groups are
    then read only for those products (no statement when none has any). When
    it answers ``None`` (another catalog, an overridden read), the reads above.
    """
    if not is_priced(channel, session):
        return None
    skus = {line["sku"] for line in session.lines}
    for line in session.lines:
        skus.update(sku for sku, _ in line_options(line))
    unnamed = {line["sku"] for line in session.lines if line.get("name") == line["sku"]}
    loaded = ctx.get(CTX_KEY)
    if (
        isinstance(loaded, PreparedPrices)
        and loaded.channel_id == channel.pk
        and skus <= loaded.skus
        and unnamed <= loaded.named_skus
    ):
        return loaded
    prices: dict[str, int] = {}
    catalog = get_catalog()
    backend = get_pricing_backend()
    line_skus = sorted({line["sku"] for line in session.lines})
    option_groups = getattr(catalog, "option_groups_many", None)
    read_for_lines = getattr(backend, "read_for_lines", None)
    # The backend may read the prices, the catalog's rows and which products have options in one statement.
    read = read_for_lines(sorted(skus), channel, catalog=catalog) if read_for_lines is not None and skus else None
    items = read.items if read is not None else None
    if read is None and unnamed and skus and getattr(backend, "takes_catalog_items", False):
        # The names and the prices no list gives come from the same catalog rows: read them once.
        items = catalog.get_many(sorted(skus))
    if skus:
        if read is not None:
            found = read.prices
        else:
            found = backend.get_prices(sorted(skus), channel, **({"items": items} if items is not None else {}))
        for sku, price in found.items():
            # A price the kernel would refuse (negative, a float, too large) is no price.
            if sku in skus and isinstance(price, int) and parse_price_q(price) is not None:
                prices[sku] = price
    names = {}
    if unnamed:
        named = items if items is not None else catalog.get_many(sorted(unnamed))
        names = {sku: item.name for sku, item in named.items() if sku in unnamed and item.name}
    if read is not None:
        line_skus = [sku for sku in line_skus if sku in read.optioned]  # the others have no option group
    groups = dict(option_groups(line_skus)) if option_groups is not None and line_skus else {}
    prepared = PreparedPrices(
        channel_id=channel.pk,
        skus=frozenset(skus),
        prices=prices,
        names=names,
        named_skus=frozenset(unnamed),
        groups=groups,
    )
    ctx[CTX_KEY] = prepared
    return prepared


def _prepared(ctx: dict[str, Any], code: str) -> PreparedPrices:
    prepared = ctx.get(CTX_KEY)
    if not isinstance(prepared, PreparedPrices):
        raise OmnimanError(
            "pipeline_violation",
            f"modifier {code!r} ran without its prepare() hook.",
            {"modifier": code},
        )
    return prepared


class ItemPricingModifier:
    """Sets each line's ``unit_price_q`` from the ``PricingBackend`` (internal sessions only).

    Lines with ``meta["price_override"]`` keep their price. A line without a
    price gets ``unit_price_q = 0`` and ``meta["price_missing"] = True`` (the
    flag goes once it is priced). A line whose name is its SKU gets the
    catalog's name.
    """

    code = "pricing.item"
    order = 10

    def prepare(self, *, channel: Channel, session: Any, ctx: dict[str, Any]) -> None:
        prepare_prices(channel=channel, session=session, ctx=ctx)

    def apply(self, *, channel: Channel, session: Any, ctx: dict[str, Any]) -> None:
        if session.pricing_policy != Channel.PricingPolicy.INTERNAL:
            return  # external sessions are priced by their channel, never here
        if not is_priced(channel, session):
            # The channel stopped using this app: its flags must not outlive it.
            for line in session.lines:
                line["meta"].pop(PRICE_MISSING, None)
                line["meta"].pop(MISSING_OPTIONS, None)
            return
        prepared = _prepared(ctx, self.code)
        for line in session.lines:
            meta = line["meta"]
            meta.pop(MISSING_OPTIONS, None)
            if line.get("name") == line["sku"] and line["sku"] in prepared.names:
                line["name"] = prepared.names[line["sku"]]
            if "price_override" in meta:
                meta.pop(PRICE_MISSING, None)  # the operator priced it, on the record
                continue
            price = prepared.prices.get(line["sku"])
            if price is None:
                line["unit_price_q"] = 0
                meta[PRICE_MISSING] = True
            else:
                line["unit_price_q"] = price
                meta.pop(PRICE_MISSING, None)


class LineOptionsModifier:
    """Adds the price of a line's priced options and modifiers to its unit price (internal sessions only).

    ``meta["options"]`` lists option SKUs (``["EXTRA-CHEESE"]`` or
    ``[{"sku": "EXTRA-CHEESE", "qty": 2}]``), each priced per unit of the line
    by the same ``PricingBackend``. ``meta["modifiers"]`` lists the catalog
    options chosen for the product (``{"group", "option"}``, see
    ``omniman.contrib.catalog.modifiers``): each is checked against the
    product's option groups (``unknown_option``, ``options_required``,
    ``too_many_options``: the change is refused) and rewritten from the
    catalog with its name and price delta; a product with a required group
    cannot be on a line without its choice. ``unit_price_q = price(sku) +
    Σ qty × price(option) + Σ modifier deltas``, the options' and modifiers'
    share kept in ``meta["options_q"]``. An unpriced option makes the whole
    line unpriced (``price_missing``, with the option SKUs in
    ``meta["missing_options"]``). Overridden lines keep their price (an
    override is the whole unit price) but their modifiers are still checked.
    """

    code = "pricing.line"
    order = 20

    def prepare(self, *, channel: Channel, session: Any, ctx: dict[str, Any]) -> None:
        prepare_prices(channel=channel, session=session, ctx=ctx)

    def apply(self, *, channel: Channel, session: Any, ctx: dict[str, Any]) -> None:
        if not is_priced(channel, session):
            return
        prepared = _prepared(ctx, self.code)
        for line in session.lines:
            meta = line["meta"]
            pairs = line_modifiers.requested(line.get("line_id"), meta.get(line_modifiers.MODIFIERS))
            groups = (prepared.groups or {}).get(line["sku"], [])
            modifiers_q = 0
            if pairs or groups:
                entries = line_modifiers.resolve(
                    line_id=line.get("line_id"), sku=line["sku"], name=str(line.get("name") or line["sku"]),
                    pairs=pairs, groups=groups,
                )
                if entries:
                    meta[line_modifiers.MODIFIERS] = entries
                else:
                    meta.pop(line_modifiers.MODIFIERS, None)
                modifiers_q = sum(entry["price_q"] for entry in entries)
            options = line_options(line)
            if (not options and not modifiers_q) or "price_override" in meta or line["sku"] not in prepared.prices:
                meta.pop(OPTIONS_Q, None)
                continue
            missing = sorted({sku for sku, _ in options if sku not in prepared.prices})
            if missing:
                line["unit_price_q"] = 0
                meta[PRICE_MISSING] = True
                meta[MISSING_OPTIONS] = missing
                meta.pop(OPTIONS_Q, None)
                continue
            options_q = sum(monetary_mult(qty, prepared.prices[sku]) for sku, qty in options) + modifiers_q
            line["unit_price_q"] = prepared.prices[line["sku"]] + options_q
            meta[OPTIONS_Q] = options_q
            meta.pop(PRICE_MISSING, None)
            meta.pop(MISSING_OPTIONS, None)
