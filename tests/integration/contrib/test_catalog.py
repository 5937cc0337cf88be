"""The catalog app: the model-backed ``CatalogBackend`` (search ranking, visibility, lookups, speed)."""

from __future__ import annotations

import statistics
import time

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog.backends import ModelCatalogBackend
from omniman.contrib.catalog.models import Category, Product
from omniman.contrib.catalog.protocols import CatalogBackend, CatalogCategory, CatalogItem

pytestmark = pytest.mark.django_db


def skus(items) -> list[str]:
    return [item.sku for item in items]


@pytest.fixture
def menu():
    drinks = Category.objects.create(code="drinks", name="Drinks", sort_order=1)
    food = Category.objects.create(code="food", name="Food", sort_order=2)
    retired = Category.objects.create(code="retired", name="Retired", sort_order=0, is_active=False)
    products = {
        "CAKE": Product.objects.create(sku="CAKE", name="House special", category=food, price_q=1500, station="pastry"),
        "CAKEPOP": Product.objects.create(sku="CAKEPOP", name="Cake pop", category=food, price_q=600, station="pastry", sort_order=2),
        "CAKE-SLICE": Product.objects.create(sku="CAKE-SLICE", name="Cake slice", category=food, price_q=900, station="pastry", sort_order=1),
        "CARROT": Product.objects.create(sku="CARROT", name="Carrot cake", category=food, price_q=1100, station="pastry"),
        "COKE": Product.objects.create(
            sku="COKE", name="Coca-Cola 350ml", category=drinks, price_q=600, station="bar", barcode="7894900011517"
        ),
        "COKE-ZERO": Product.objects.create(sku="COKE-ZERO", name="Coke Zero", category=drinks, price_q=600, station="bar"),
        "OLD-CAKE": Product.objects.create(sku="OLD-CAKE", name="Cake of the past", category=food, price_q=700, is_active=False),
        "RETIRED-CAKE": Product.objects.create(sku="RETIRED-CAKE", name="Cake retired", category=retired, price_q=700),
        "WATER": Product.objects.create(sku="WATER", name="Water", price_q=300, station="bar"),  # uncategorised
        "MARKET": Product.objects.create(sku="MARKET", name="Market price fish", category=food, price_q=None),
    }
    products["CAKE"].alternatives.add(products["OLD-CAKE"], products["CAKE-SLICE"], products["CARROT"], products["RETIRED-CAKE"])
    return products


def test_the_default_backend_is_the_model_backend_and_follows_the_protocol():
    catalog = get_catalog()
    assert isinstance(catalog, ModelCatalogBackend)
    assert isinstance(catalog, CatalogBackend)


def test_the_backend_is_swappable_by_setting(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "CATALOG_BACKEND": "tests.integration.contrib.test_catalog.StaticCatalog"}
    assert isinstance(get_catalog(), StaticCatalog)
    assert get_catalog().get("TEA").price_q == 500


class StaticCatalog:
    ITEMS = {"TEA": CatalogItem(sku="TEA", name="Tea", category="", price_q=500)}

    def search(self, query="", *, category=None, limit=24):
        return [item for item in self.ITEMS.values() if query.lower() in item.name.lower()][:limit]

    def get(self, sku):
        return self.ITEMS.get(sku)

    def get_many(self, skus):
        return {sku: self.ITEMS[sku] for sku in skus if sku in self.ITEMS}

    def list_categories(self):
        return []

    def alternatives(self, sku):
        return []


def test_search_ranks_exact_sku_then_name_prefix_then_contains(menu):
    # "CAKE" is an exact SKU (whatever its name), then names starting with "cake"
    # (by sort order, then name), then names or SKUs containing it.
    assert skus(get_catalog().search("cake")) == ["CAKE", "CAKE-SLICE", "CAKEPOP", "CARROT"]


def test_search_exact_sku_is_case_insensitive_and_trimmed(menu):
    assert skus(get_catalog().search("  coke-zero "))[0] == "COKE-ZERO"
    assert skus(get_catalog().search("coke")) == ["COKE", "COKE-ZERO"]  # exact SKU first, then the name "Coke Zero"


def test_search_by_barcode_is_exact(menu):
    assert skus(get_catalog().search("7894900011517")) == ["COKE"]
    assert get_catalog().search("789490001151") == []  # a partial barcode is not a match


def test_search_matches_sku_fragments(menu):
    assert skus(get_catalog().search("slice")) == ["CAKE-SLICE"]
    assert skus(get_catalog().search("ZERO")) == ["COKE-ZERO"]


def test_search_treats_like_wildcards_literally(menu):
    Product.objects.create(sku="PROMO", name="50% off brownie", price_q=500)
    assert skus(get_catalog().search("%")) == ["PROMO"]
    assert get_catalog().search("_") == []


def test_search_hides_inactive_products_and_products_of_inactive_categories(menu):
    found = skus(get_catalog().search("cake", limit=100))
    assert "OLD-CAKE" not in found and "RETIRED-CAKE" not in found
    assert get_catalog().search("OLD-CAKE") == [] and get_catalog().search("Cake retired") == []


def test_search_by_category_and_limit(menu):
    assert skus(get_catalog().search(category="drinks")) == ["COKE", "COKE-ZERO"]
    assert skus(get_catalog().search("cake", category="drinks")) == []
    assert get_catalog().search(category="retired") == []
    assert len(get_catalog().search("cake", limit=2)) == 2
    assert get_catalog().search("cake", limit=0) == []


def test_an_empty_search_is_the_product_grid(menu):
    # Category order, then each product's sort order and name; uncategorised last on both databases.
    assert skus(get_catalog().search()) == [
        "COKE", "COKE-ZERO", "CARROT", "CAKE", "MARKET", "CAKE-SLICE", "CAKEPOP", "WATER",
    ]


def test_get_returns_a_frozen_catalog_item(menu):
    item = get_catalog().get("COKE")
    assert item == CatalogItem(
        sku="COKE", name="Coca-Cola 350ml", category="drinks", price_q=600, station="bar", barcode="7894900011517", is_active=True
    )
    with pytest.raises(AttributeError):
        item.price_q = 1  # type: ignore[misc]
    assert get_catalog().get("WATER").category == ""
    assert get_catalog().get("MARKET").price_q is None


def test_get_hides_unknown_and_inactive(menu):
    assert get_catalog().get("NOPE") is None
    assert get_catalog().get("OLD-CAKE") is None
    assert get_catalog().get("RETIRED-CAKE") is None


def test_get_many_is_one_query_and_skips_what_it_cannot_sell(menu):
    with CaptureQueriesContext(connection) as queries:
        found = get_catalog().get_many(["COKE", "WATER", "OLD-CAKE", "RETIRED-CAKE", "NOPE", "COKE"])
    assert len(queries.captured_queries) == 1
    assert sorted(found) == ["COKE", "WATER"]
    assert found["COKE"].price_q == 600
    assert get_catalog().get_many([]) == {}


def test_get_many_answers_as_the_orm_query_it_replaces(menu):
    """``get_many``'s SQL is written by hand (it runs on every modify and commit): the ORM's answer, field for field."""
    from omniman.contrib.catalog.backends import FIELDS, _item
    from omniman.contrib.catalog.models import OptionGroup

    required = OptionGroup.objects.create(code="doneness", name="Doneness", min_choices=1)
    optional = OptionGroup.objects.create(code="extras", name="Extras", min_choices=0)
    retired = OptionGroup.objects.create(code="retired", name="Retired", min_choices=1, is_active=False)
    menu["CAKE"].option_groups.add(required, optional)
    menu["CARROT"].option_groups.add(optional, retired)
    menu["COKE"].option_groups.add(retired)
    catalog = ModelCatalogBackend()
    every = sorted(menu) + ["NOPE"]
    orm = {row["sku"]: _item(row) for row in catalog._active().filter(sku__in=every).values(*FIELDS)}
    assert catalog.get_many(every) == orm
    assert (orm["CAKE"].has_options, orm["CAKE"].forced) == (True, True)
    assert (orm["CARROT"].has_options, orm["CARROT"].forced) == (True, False)
    assert (orm["COKE"].has_options, orm["COKE"].forced) == (False, False)
    assert orm["MARKET"].price_q is None and orm["WATER"].category == ""
    for size in range(1, len(every) + 1):  # one statement per number of SKUs: each one right
        assert catalog.get_many(every[:size]) == {sku: orm[sku] for sku in every[:size] if sku in orm}


def test_alternatives_are_active_and_in_display_order(menu):
    assert skus(get_catalog().alternatives("CAKE")) == ["CARROT", "CAKE-SLICE"]
    assert get_catalog().alternatives("COKE") == []
    assert get_catalog().alternatives("NOPE") == []


def test_list_categories_shows_active_ones_in_order(menu):
    assert get_catalog().list_categories() == [
        CatalogCategory(code="drinks", name="Drinks", sort_order=1),
        CatalogCategory(code="food", name="Food", sort_order=2),
    ]


# -- speed ---------------------------------------------------------------------

WORDS = ["Chicken", "Beef", "Salad", "Burger", "Pizza", "Coffee", "Tea", "Juice", "Cake", "Soup"]
SEARCH_BUDGET_MS = 50


@pytest.fixture
def big_catalog():
    categories = Category.objects.bulk_create(
        [Category(code=f"cat-{i}", name=f"Category {i}", sort_order=i) for i in range(20)]
    )
    Product.objects.bulk_create(
        [
            Product(
                sku=f"SKU-{i:05d}",
                name=f"{WORDS[i % 10]} {WORDS[(i // 10) % 10]} No. {i}",
                category=categories[i % 20],
                price_q=100 + i,
                barcode=f"789{i:010d}",
                sort_order=i % 7,
                is_active=i % 50 != 0,  # 100 inactive products
            )
            for i in range(5000)
        ],
        batch_size=1000,
    )
    assert Product.objects.count() == 5000


def _median_ms(call, runs: int = 15) -> float:
    call()  # warm up
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def test_search_over_5000_products_is_correct_and_fast(big_catalog):
    catalog = get_catalog()
    cases = {
        "sku-04321": lambda found: skus(found) == ["SKU-04321"],
        "7890000004321": lambda found: skus(found) == ["SKU-04321"],  # barcode
        "No. 4321": lambda found: skus(found) == ["SKU-04321"],  # name contains
        "SKU-04300": lambda found: found == [],  # inactive
        "burger": lambda found: len(found) == 24 and all(item.name.startswith("Burger") for item in found),
        "pizza tea": lambda found: len(found) == 24 and all("Pizza Tea" in item.name for item in found),
        "zzz": lambda found: found == [],
        "": lambda found: len(found) == 24,
    }
    medians = {}
    for query, expected in cases.items():
        found = catalog.search(query)
        assert expected(found), (query, skus(found))
        medians[query] = _median_ms(lambda: catalog.search(query))
    slow = {query: round(ms, 1) for query, ms in medians.items() if ms >= SEARCH_BUDGET_MS}
    assert not slow, f"search medians over {SEARCH_BUDGET_MS} ms on {connection.vendor}: {slow}"


def test_a_name_prefix_outranks_a_name_containing_the_text_at_scale(big_catalog):
    # "Cake ..." names start with "cake"; "... Cake No. n" names only contain it.
    found = get_catalog().search("cake", limit=2000)
    assert len(found) == 950  # 500 "Cake …" + 500 "… Cake …", 50 of them "Cake Cake …"
    starts = [item.name.lower().startswith("cake") for item in found]
    assert starts == sorted(starts, reverse=True) and any(starts) and not all(starts)


# -- prices are never negative ----------------------------------------------------------


@pytest.mark.parametrize("price_q", [-5, -1, 10**10 + 1])
def test_a_product_refuses_a_price_out_of_bounds_on_save(price_q):
    with pytest.raises(ValidationError) as caught:
        Product.objects.create(sku="NEG", name="Negative", price_q=price_q)
    assert [e.code for e in caught.value.error_dict["price_q"]] == ["invalid_price"]
    assert not Product.objects.filter(sku="NEG").exists()
    with pytest.raises(ValidationError) as caught:
        Product(sku="NEG", name="Negative", price_q=price_q).full_clean()
    assert [e.code for e in caught.value.error_dict["price_q"]] == ["invalid_price"]


def test_zero_and_no_price_are_prices():
    Product.objects.create(sku="FREE", name="Free water", price_q=0).full_clean()
    Product.objects.create(sku="ASK", name="Market price", price_q=None).full_clean()


def test_the_database_refuses_a_negative_price_behind_the_model():
    product = Product.objects.create(sku="OK", name="Fine", price_q=500)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(price_q=-5)
    assert Product.objects.get(pk=product.pk).price_q == 500


def _product_form(**fields) -> dict:
    return {"sku": "NEG", "name": "Negative", "price_q": "-5", "station": "", "barcode": "", "sort_order": 0, "is_active": "on", **fields}


def test_the_admin_refuses_a_negative_price_with_a_field_error(admin_client):
    response = admin_client.post("/admin/omniman_catalog/product/add/", _product_form())
    assert response.status_code == 200
    assert [e.code for e in response.context["adminform"].form.errors.as_data()["price_q"]] == ["invalid_price"]
    assert not Product.objects.filter(sku="NEG").exists()
    product = Product.objects.create(sku="OK", name="Fine", price_q=500)
    response = admin_client.post(f"/admin/omniman_catalog/product/{product.pk}/change/", _product_form(sku="OK", name="Renamed"))
    assert response.status_code == 200
    assert [e.code for e in response.context["adminform"].form.errors.as_data()["price_q"]] == ["invalid_price"]
    product.refresh_from_db()
    assert (product.name, product.price_q) == ("Fine", 500)

