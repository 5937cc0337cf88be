"""Ordering from the catalog (``omniman.contrib.catalog.services``): add a product by SKU, barcode or name."""

from __future__ import annotations

import pytest

from omniman.contrib.catalog.models import Product
from omniman.contrib.catalog.services import CatalogOrderingService
from omniman.exceptions import OmnimanError
from tests.factories import DbState, create_session_at, make_channel

pytestmark = [pytest.mark.django_db, pytest.mark.contrib("omniman.contrib.catalog")]


@pytest.fixture
def tables():
    return make_channel("tables")


# -- CatalogOrderingService.add_product -----------------------------------------------------------


@pytest.fixture
def catalog(db):
    Product.objects.create(sku="CAP", name="Cappuccino", price_q=950, station="bar", barcode="789001")
    Product.objects.create(sku="FREE", name="Water jug", price_q=None)
    Product.objects.create(sku="OLD", name="Old thing", price_q=100, is_active=False)


@pytest.mark.parametrize("how", [{"sku": "CAP"}, {"query": "789001"}, {"query": "cappu"}, {"query": "cap"}])
def test_add_product_by_sku_barcode_or_name(tables, catalog, how):
    session = create_session_at(tables, lines=0)
    after = CatalogOrderingService.add_product(session.session_key, "tables", qty="2", expected_rev=session.rev, **how)
    (line,) = after.lines
    assert (line["sku"], line["name"], line["qty"], line["unit_price_q"]) == ("CAP", "Cappuccino", "2", 950)
    assert line["meta"] == {"station": "bar"} and after.rev == session.rev + 1


def test_add_product_without_a_catalog_price_or_station(tables, catalog):
    session = create_session_at(tables, lines=0)
    (line,) = CatalogOrderingService.add_product(session.session_key, "tables", sku="FREE").lines
    assert line["unit_price_q"] == 0 and line["meta"] == {}


@pytest.mark.parametrize(
    ("how", "code"),
    [
        ({"sku": "NOPE"}, "unknown_product"),
        ({"sku": "OLD"}, "unknown_product"),
        ({"query": "zzz"}, "unknown_product"),
        ({}, "unknown_product"),
        ({"sku": "CAP", "qty": "abc"}, "invalid_qty"),
        ({"sku": "CAP", "expected_rev": 99}, "stale_rev"),
    ],
)
def test_add_product_errors_write_nothing(tables, catalog, how, code):
    session = create_session_at(tables, lines=1)
    before = DbState(session)
    with pytest.raises(OmnimanError) as caught:
        CatalogOrderingService.add_product(session.session_key, "tables", **how)
    assert caught.value.code == code
    before.assert_unchanged()
