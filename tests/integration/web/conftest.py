"""Fixtures of the POS view tests: the café (the demo's catalog, stock and channels), a client per role."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.test.signals import template_rendered
from template_partials.templatetags.partials import TemplateProxy

from omniman.contrib.catalog.models import Category, Product
from omniman.contrib.demo.management.commands.seed_demo import CHANNELS
from omniman.contrib.demo.menu import ALTERNATIVES, CATEGORIES, PRODUCTS
from omniman.contrib.stock.models import StockLevel
from omniman.models import Channel
from tests.integration.web.helpers import logged_in


@pytest.fixture
def cafe():
    """Categories, 41 products, stock levels and the four demo channels (no sessions, no orders)."""
    categories = {
        code: Category.objects.create(code=code, name=name, sort_order=order) for code, name, order in CATEGORIES
    }
    Product.objects.bulk_create(
        Product(
            sku=sku,
            name=name,
            category=categories[category],
            price_q=price_q,
            station=station,
            barcode=barcode,
            sort_order=position,
        )
        for position, (sku, name, category, price_q, station, barcode, _on_hand) in enumerate(PRODUCTS)
    )
    StockLevel.objects.bulk_create(
        StockLevel(sku=sku, on_hand=on_hand, track=True)
        for sku, _n, _c, _p, _s, _b, on_hand in PRODUCTS
        if on_hand is not None
    )
    by_sku = {p.sku: p for p in Product.objects.all()}
    for sku, alternatives in ALTERNATIVES.items():
        by_sku[sku].alternatives.set([by_sku[alt] for alt in alternatives])
    for spec in CHANNELS:
        Channel.objects.create(**spec)


@pytest.fixture
def pos(cafe) -> Client:
    return logged_in("pos", "pos")


@pytest.fixture
def manager(cafe) -> Client:
    return logged_in("manager", "manager")


@pytest.fixture
def kitchen(cafe) -> Client:
    return logged_in("kitchen", "kitchen")


@pytest.fixture
def anon(cafe) -> Client:
    return Client()


@pytest.fixture(autouse=True)
def partials_are_recorded(monkeypatch):
    """Let ``response.templates`` list partials too.

    Django's test client learns what was rendered from the ``template_rendered``
    signal, which its instrumented ``Template._render`` sends; the proxies of
    django-template-partials render their nodelist directly, so send it for them.
    """
    original = TemplateProxy._render

    def _render(self, context):
        template_rendered.send(sender=self, template=self, context=context)
        return original(self, context)

    monkeypatch.setattr(TemplateProxy, "_render", _render)


@pytest.fixture
def cafe_demo_client():
    with override_settings(DEBUG=True):
        call_command("seed_demo", "--no-users", stdout=io.StringIO())
    return logged_in("pos", "pos")
