"""The pricing modifiers' one read (``CatalogPricingBackend.read_for_lines``) and the commit's station read.

Each answers what the separate reads it stands for answer (``get_prices``,
``get_many``, ``option_groups_many``; ``get_many``'s stations), sees a catalog
or price list change at once (only SQL text is kept, never rows), and steps
aside for a backend or catalog of someone else's.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog.backends import ModelCatalogBackend
from omniman.contrib.catalog.models import Category, Option, OptionGroup, Product
from omniman.contrib.catalog.services import CatalogStationSource
from omniman.contrib.pricing import get_pricing_backend
from omniman.contrib.pricing.backends import CatalogPricingBackend
from omniman.contrib.pricing.models import PriceList, PriceListItem
from omniman.contrib.pricing.modifiers import PreparedPrices, prepare_prices
from omniman.exceptions import ValidationError
from omniman.models import KitchenItem, Order, SoldOut
from omniman.services import KitchenService, ModifyService, SessionService, sold_out_skus
from tests.factories import DbState, commit, make_channel

pytestmark = pytest.mark.django_db

PRICED = {"pricing": {}}


@pytest.fixture
def menu():
    food = Category.objects.create(code="food", name="Food")
    retired = Category.objects.create(code="retired", name="Retired", is_active=False)
    make = Product.objects.create
    products = {
        "BURGER": make(sku="BURGER", name="Burger", category=food, price_q=2500, station="kitchen"),
        "FRIES": make(sku="FRIES", name="Fries", category=food, price_q=1000, station="kitchen"),
        "CHEESE": make(sku="CHEESE", name="Extra cheese", category=food, price_q=300),
        "FISH": make(sku="FISH", name="Fish of the day", category=food, price_q=None, station="kitchen"),
        "WATER": make(sku="WATER", name="Water", price_q=300, station="bar"),  # uncategorised
        "COD": make(sku="COD", name="Cod", category=food, price_q=4100, station="kitchen", is_active=False),
        "OLD-PIE": make(sku="OLD-PIE", name="Old pie", category=retired, price_q=800, station="pastry"),
    }
    doneness = OptionGroup.objects.create(code="doneness", name="Doneness", min_choices=1, sort_order=1)
    Option.objects.create(group=doneness, code="rare", name="Rare")
    Option.objects.create(group=doneness, code="well", name="Well done", price_q=100)
    extras = OptionGroup.objects.create(code="extras", name="Extras", max_choices=2, sort_order=2)
    Option.objects.create(group=extras, code="bacon", name="Bacon", price_q=500, sku="BACON")
    gone = OptionGroup.objects.create(code="gone", name="Gone", min_choices=1, is_active=False)
    Option.objects.create(group=gone, code="x", name="X")
    products["BURGER"].option_groups.set([doneness, extras])
    products["OLD-PIE"].option_groups.set([extras])  # an inactive category: get_many hides it, its groups stay
    products["COD"].option_groups.set([extras])  # an inactive product: no groups
    products["FRIES"].option_groups.set([gone])  # an inactive group only: no groups
    return products


def price_list(code, channels, prices, *, priority=0, is_active=True) -> PriceList:
    plist = PriceList.objects.create(code=code, name=code.title(), priority=priority, is_active=is_active)
    plist.channels.set(channels)
    PriceListItem.objects.bulk_create([PriceListItem(price_list=plist, sku=sku, price_q=q) for sku, q in prices.items()])
    return plist


EVERY = ["BURGER", "CHEESE", "COD", "COMBO", "FISH", "FRIES", "NOPE", "OLD-PIE", "WATER"]


def separate_reads(skus, channel):
    catalog = get_catalog()
    prices = {sku: price for sku, price in get_pricing_backend().get_prices(skus, channel).items()}
    return prices, catalog.get_many(skus), frozenset(catalog.option_groups_many(skus))


# -- read_for_lines --------------------------------------------------------------------


def test_the_one_read_answers_as_the_separate_reads(menu):
    delivery, web, pos = make_channel("delivery"), make_channel("web"), make_channel("pos")
    price_list("delivery", [delivery, web], {"BURGER": 2900, "FISH": 4800, "COMBO": 3500, "COD": 10})
    price_list("delivery-promo", [delivery], {"BURGER": 2700}, priority=5)
    price_list("delivery-b", [delivery], {"FRIES": 1200}, priority=1)
    price_list("delivery-a", [delivery], {"FRIES": 1100}, priority=1)  # equal priority: the lowest code wins
    price_list("retired", [delivery], {"WATER": 1}, is_active=False)
    backend, catalog = get_pricing_backend(), get_catalog()
    for channel in (delivery, web, pos, None):
        for size in range(1, len(EVERY) + 1):  # one statement per number of SKUs: each one right
            skus = EVERY[:size]
            with CaptureQueriesContext(connection) as queries:
                read = backend.read_for_lines(skus, channel, catalog=catalog)
            assert len(queries.captured_queries) == 1
            assert (read.prices, read.items, read.optioned) == separate_reads(skus, channel), (channel, size)
    read = backend.read_for_lines(EVERY, delivery, catalog=catalog)
    assert read.prices == {"BURGER": 2700, "FRIES": 1100, "CHEESE": 300, "FISH": 4800, "COMBO": 3500, "COD": 10, "WATER": 300}
    assert sorted(read.items) == ["BURGER", "CHEESE", "FISH", "FRIES", "WATER"]  # not COD (inactive), OLD-PIE (category)
    assert read.optioned == {"BURGER", "OLD-PIE"}
    assert read.items["WATER"].category == "" and read.items["FISH"].price_q is None
    assert backend.read_for_lines([], delivery, catalog=catalog).prices == {}


def test_the_one_read_sees_a_change_at_once(menu):
    delivery = make_channel("delivery")
    backend, catalog = get_pricing_backend(), get_catalog()
    assert backend.read_for_lines(["BURGER", "WATER"], delivery, catalog=catalog).prices == {"BURGER": 2500, "WATER": 300}
    Product.objects.filter(sku="WATER").update(is_active=False)
    plist = price_list("delivery", [delivery], {"BURGER": 2900})
    read = backend.read_for_lines(["BURGER", "WATER"], delivery, catalog=catalog)
    assert read.prices == {"BURGER": 2900} and sorted(read.items) == ["BURGER"]
    plist.is_active = False
    plist.save()
    menu["BURGER"].option_groups.clear()
    read = backend.read_for_lines(["BURGER", "WATER"], delivery, catalog=catalog)
    assert read.prices == {"BURGER": 2500} and read.optioned == frozenset()


class OverriddenPrices(CatalogPricingBackend):
    def get_prices(self, skus, channel, *, items=None):
        return {sku: 42 for sku in skus}


class OverriddenCatalog(ModelCatalogBackend):
    def get_many(self, skus):
        return {sku: item for sku, item in super().get_many(skus).items() if sku != "BURGER"}


class ListedPrices:
    """A third-party backend: only the protocol's two methods."""

    def get_price(self, sku, channel):
        return self.get_prices([sku], channel).get(sku)

    def get_prices(self, skus, channel):
        return {sku: 77 for sku in skus if sku != "FRIES"}


def test_a_backend_or_catalog_of_someone_elses_gets_the_separate_reads(menu, settings):
    catalog = get_catalog()
    assert OverriddenPrices().read_for_lines(["BURGER"], None, catalog=catalog) is None
    assert CatalogPricingBackend().read_for_lines(["BURGER"], None, catalog=OverriddenCatalog()) is None
    assert CatalogPricingBackend().read_for_lines(["BURGER"], "delivery", catalog=catalog) is None  # a channel code

    channel = make_channel("pos", config=PRICED)
    session = SessionService.open_session("pos")
    ops = [{"op": "add_line", "sku": sku, "qty": 1} for sku in ("BURGER", "FRIES", "NOPE")]
    ops[0]["meta"] = {"modifiers": ["doneness:rare"]}

    settings.OMNIMAN = {**settings.OMNIMAN, "PRICING_BACKEND": f"{__name__}.ListedPrices"}
    priced = ModifyService.modify_session(session.session_key, channel.code, ops)
    assert [(line["name"], line["unit_price_q"], bool(line["meta"].get("price_missing"))) for line in priced.lines] == [
        ("Burger", 77, False),
        ("Fries", 0, True),
        ("NOPE", 77, False),
    ]
    assert priced.lines[0]["meta"]["modifiers"][0]["option"] == "rare"  # the options are still checked

    settings.OMNIMAN = {**settings.OMNIMAN, "PRICING_BACKEND": f"{__name__}.OverriddenPrices"}
    priced = ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_data", "path": "x", "value": 1}])
    assert [line["unit_price_q"] for line in priced.lines] == [42, 42, 42]

    settings.OMNIMAN = {
        **settings.OMNIMAN,
        "PRICING_BACKEND": "omniman.contrib.pricing.backends.CatalogPricingBackend",
        "CATALOG_BACKEND": f"{__name__}.OverriddenCatalog",
    }
    priced = ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_data", "path": "x", "value": 2}])
    assert [(line["unit_price_q"], bool(line["meta"].get("price_missing"))) for line in priced.lines] == [
        (0, True),  # the overridden get_many hides the burger: no catalog price
        (1000, False),
        (0, True),
    ]


# -- the modifiers' prepare --------------------------------------------------------------


def _prepare(channel, lines, *, combined: bool, monkeypatch) -> tuple[PreparedPrices, int]:
    session = SessionService.open_session(channel.code)
    session.lines = [
        {"line_id": f"L{i}", "sku": sku, "name": name, "qty": "1", "unit_price_q": 0, "line_total_q": 0, "meta": meta}
        for i, (sku, name, meta) in enumerate(lines)
    ]
    with monkeypatch.context() as patch:
        if not combined:
            patch.setattr(CatalogPricingBackend, "read_for_lines", lambda *args, **kwargs: None)
        with CaptureQueriesContext(connection) as queries:
            prepared = prepare_prices(channel=channel, session=session, ctx={})
    return prepared, len(queries.captured_queries)


def test_prepare_loads_the_same_prices_names_and_groups_in_fewer_statements(menu, monkeypatch):
    channel = make_channel("delivery", config=PRICED)
    price_list("delivery", [channel], {"BURGER": 2900, "COMBO": 3500})
    sessions = [
        # (lines, statements with the one read: the option groups' two only when a product has some)
        ([("WATER", "WATER", {}), ("FISH", "Fish", {}), ("COMBO", "COMBO", {}), ("NOPE", "NOPE", {})], 1),
        ([("BURGER", "BURGER", {"options": ["CHEESE", "COD"]}), ("OLD-PIE", "Pie", {}), ("COD", "COD", {})], 3),
        ([("FRIES", "Fries", {"options": [{"sku": "BACON", "qty": 2}]})], 1),
    ]
    for lines, statements in sessions:
        combined, count = _prepare(channel, lines, combined=True, monkeypatch=monkeypatch)
        separate, separate_count = _prepare(channel, lines, combined=False, monkeypatch=monkeypatch)
        assert combined == separate
        assert count == statements and count < separate_count
    burger, _ = _prepare(channel, sessions[1][0], combined=True, monkeypatch=monkeypatch)
    assert burger.prices == {"BURGER": 2900, "CHEESE": 300}  # not COD (inactive) nor OLD-PIE (its category is)
    assert sorted(burger.groups) == ["BURGER", "OLD-PIE"] and burger.names == {"BURGER": "Burger"}


def test_a_catalog_change_between_modifications_is_seen_at_once(menu):
    channel = make_channel("delivery", config=PRICED)
    session = SessionService.open_session(channel.code)
    session = ModifyService.modify_session(
        session.session_key, channel.code, [{"op": "add_line", "sku": "WATER", "qty": 2}, {"op": "add_line", "sku": "FISH", "qty": 1}]
    )
    assert [(line["name"], line["unit_price_q"]) for line in session.lines] == [("Water", 300), ("Fish of the day", 0)]
    Product.objects.filter(sku="WATER").update(price_q=350)
    price_list("delivery", [channel], {"FISH": 4800})
    session = ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_data", "path": "x", "value": 1}])
    assert [line["unit_price_q"] for line in session.lines] == [350, 4800]
    assert session.total_q == 2 * 350 + 4800

    # A required group given to a product on the session: its next modification is refused, nothing written.
    doneness = OptionGroup.objects.get(code="doneness")
    menu["WATER"].option_groups.add(doneness)
    state = DbState(session)
    with pytest.raises(ValidationError) as caught:
        ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_data", "path": "x", "value": 2}])
    assert caught.value.code == "options_required"
    state.assert_unchanged()


# -- the commit's stations ------------------------------------------------------------------


def test_stations_many_answers_as_get_many_in_one_cheap_statement(menu):
    catalog = get_catalog()
    for size in range(1, len(EVERY) + 1):
        skus = EVERY[:size]
        with CaptureQueriesContext(connection) as queries:
            stations = catalog.stations_many(skus)
        assert stations == {sku: item.station for sku, item in catalog.get_many(skus).items() if item.station}
        [query] = queries.captured_queries
        assert "EXISTS" not in query["sql"].upper()
    assert catalog.stations_many(EVERY) == {"BURGER": "kitchen", "FRIES": "kitchen", "FISH": "kitchen", "WATER": "bar"}
    assert catalog.stations_many([]) == {}
    Product.objects.filter(sku="WATER").update(station="pastry")
    assert catalog.stations_many(["WATER"]) == {"WATER": "pastry"}  # seen at once
    assert OverriddenCatalog().stations_many(["BURGER", "WATER"]) == {"WATER": "pastry"}  # through its get_many


class StationlessCatalog(OverriddenCatalog):
    stations_many = None  # a catalog without the method


def test_the_station_source_works_with_any_catalog(menu, settings):
    assert CatalogStationSource().stations_for(["BURGER", "WATER", "CHEESE", "COD"]) == {"BURGER": "kitchen", "WATER": "bar"}
    settings.OMNIMAN = {**settings.OMNIMAN, "CATALOG_BACKEND": f"{__name__}.StationlessCatalog"}
    assert CatalogStationSource().stations_for(["BURGER", "WATER", "CHEESE"]) == {"WATER": "bar"}


def test_a_commit_gives_kitchen_items_the_catalogs_stations(menu, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "KITCHEN_DEFAULT_STATION": "expo"}
    channel = make_channel("pos")
    session = SessionService.open_session(channel.code)
    ops = [{"op": "add_line", "sku": sku, "qty": 1, "unit_price_q": 100} for sku in ("WATER", "FRIES", "CHEESE", "OLD-PIE")]
    ops.append({"op": "add_line", "sku": "FISH", "qty": 1, "unit_price_q": 100, "meta": {"station": "grill"}})
    session = ModifyService.modify_session(session.session_key, channel.code, ops)
    Product.objects.filter(sku="WATER").update(station="juice")  # after the modify: the commit reads it then
    with CaptureQueriesContext(connection) as queries:
        order = Order.objects.get(ref=commit(session)["order_ref"])
    stations = {item.item.sku: item.station for item in KitchenItem.objects.filter(order=order).select_related("item")}
    assert stations == {"WATER": "juice", "FRIES": "kitchen", "CHEESE": "expo", "OLD-PIE": "expo", "FISH": "grill"}
    catalog_reads = [q["sql"] for q in queries.captured_queries if "omniman_catalog_product" in q["sql"]]
    assert len(catalog_reads) == 1 and "EXISTS" not in catalog_reads[0].upper()


# -- the 86 list ----------------------------------------------------------------------------


def test_the_sold_out_list_is_read_fresh_for_every_modification(menu):
    channel = make_channel("pos", config=PRICED)
    session = SessionService.open_session(channel.code)
    KitchenService.set_sold_out("FRIES", True, actor="k")
    SoldOut.objects.create(sku="WATER", sold_out=False)
    assert sold_out_skus() == {"FRIES"} == set(SoldOut.objects.filter(sold_out=True).values_list("sku", flat=True))
    state = DbState(session)
    with pytest.raises(ValidationError) as caught:
        ModifyService.modify_session(session.session_key, channel.code, [{"op": "add_line", "sku": "FRIES", "qty": 1}])
    assert caught.value.code == "sold_out"
    state.assert_unchanged()
    KitchenService.set_sold_out("FRIES", False, actor="k")
    KitchenService.set_sold_out("WATER", True, actor="k")
    assert sold_out_skus() == {"WATER"}
    session = ModifyService.modify_session(session.session_key, channel.code, [{"op": "add_line", "sku": "FRIES", "qty": 1}])
    assert [line["sku"] for line in session.lines] == ["FRIES"]
    with pytest.raises(ValidationError) as caught:
        ModifyService.modify_session(session.session_key, channel.code, [{"op": "add_line", "sku": "WATER", "qty": 1}])
    assert caught.value.code == "sold_out"
