"""Modifiers and forced options: catalog option groups, checked and priced on the line, lines kept apart."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog.models import Category, Option, OptionGroup, Product
from omniman.contrib.catalog.services import CatalogOrderingService
from omniman.exceptions import ValidationError
from omniman.models import Order, Session
from omniman.services import ModifyService, SessionService
from tests.factories import DbState, commit, make_channel

pytestmark = pytest.mark.django_db

PRICED = {"pricing": {}}


@pytest.fixture
def menu():
    food = Category.objects.create(code="food", name="Food")
    burger = Product.objects.create(sku="BURG", name="Burger", category=food, price_q=3200, station="kitchen")
    coffee = Product.objects.create(sku="CAP", name="Cappuccino", category=food, price_q=950, station="bar")
    Product.objects.create(sku="ESP", name="Espresso", category=food, price_q=600, station="bar")
    doneness = OptionGroup.objects.create(code="doneness", name="Doneness", min_choices=1, max_choices=1, sort_order=1)
    for i, (code, name) in enumerate([("rare", "Rare"), ("medium", "Medium"), ("well", "Well done")]):
        Option.objects.create(group=doneness, code=code, name=name, sort_order=i)
    extras = OptionGroup.objects.create(code="extras", name="Extras", min_choices=0, max_choices=2, sort_order=2)
    Option.objects.create(group=extras, code="bacon", name="Bacon", price_q=500, sku="BACON", sort_order=1)
    Option.objects.create(group=extras, code="cheese", name="Cheese", price_q=300, sort_order=2)
    Option.objects.create(group=extras, code="egg", name="Egg", price_q=400, sort_order=3)
    without = OptionGroup.objects.create(code="without", name="Without", min_choices=0, max_choices=3, sort_order=3)
    Option.objects.create(group=without, code="no-onions", name="No onions")
    milk = OptionGroup.objects.create(code="milk", name="Milk", min_choices=0, max_choices=1)
    Option.objects.create(group=milk, code="oat", name="Oat milk", price_q=200)
    Option.objects.create(group=milk, code="old", name="Goat milk", price_q=300, is_active=False)
    burger.option_groups.set([doneness, extras, without])
    coffee.option_groups.set([milk])
    return {"channel": make_channel("pos", config=PRICED)}


def add(session, sku, modifiers=None, qty="1"):
    return CatalogOrderingService.add_product(
        session.session_key, session.channel.code, sku=sku, qty=qty, modifiers=modifiers, expected_rev=session.rev
    )


def opened(menu) -> Session:
    return SessionService.open_session(menu["channel"].code)


def test_the_catalog_says_which_products_have_options_and_which_are_forced(menu):
    items = {item.sku: item for item in get_catalog().search("")}
    assert (items["BURG"].has_options, items["BURG"].forced) == (True, True)
    assert (items["CAP"].has_options, items["CAP"].forced) == (True, False)
    assert (items["ESP"].has_options, items["ESP"].forced) == (False, False)
    groups = get_catalog().option_groups_many(["BURG", "CAP", "ESP"])
    assert [g.code for g in groups["BURG"]] == ["doneness", "extras", "without"]
    assert [o.code for o in groups["CAP"][0].options] == ["oat"]  # the inactive goat milk is not offered
    assert "ESP" not in groups


def test_option_groups_of_many_products_in_two_queries(menu):
    with CaptureQueriesContext(connection) as queries:
        get_catalog().option_groups_many(["BURG", "CAP", "ESP"])
    assert len(queries) == 2


def test_modifiers_are_priced_and_written_from_the_catalog(menu):
    session = add(opened(menu), "BURG", ["doneness:medium", {"group": "extras", "option": "bacon", "price_q": 1}])
    [line] = session.lines
    assert line["meta"]["modifiers"] == [
        {"group": "doneness", "group_name": "Doneness", "option": "medium", "name": "Medium", "price_q": 0},
        {"group": "extras", "group_name": "Extras", "option": "bacon", "name": "Bacon", "price_q": 500, "sku": "BACON"},
    ]
    assert line["unit_price_q"] == 3700 and line["meta"]["options_q"] == 500
    assert session.total_q == 3700
    session = add(session, "CAP", [{"group": "milk", "option": "oat"}], qty="2")
    assert session.lines[1]["unit_price_q"] == 1150 and session.total_q == 3700 + 2300


def test_same_modifiers_merge_and_different_ones_make_a_new_line(menu):
    session = add(opened(menu), "BURG", ["doneness:medium", "without:no-onions"])
    session = add(session, "BURG", ["without:no-onions", "doneness:medium"])  # same choices, any order
    assert [(line["sku"], line["qty"]) for line in session.lines] == [("BURG", "2")]
    session = add(session, "BURG", ["doneness:rare"])
    session = add(session, "ESP")
    session = add(session, "ESP")
    assert [(line["sku"], line["qty"], len(line["meta"].get("modifiers", []))) for line in session.lines] == [
        ("BURG", "2", 2),
        ("BURG", "1", 1),
        ("ESP", "2", 0),
    ]
    assert session.total_q == 3 * 3200 + 2 * 600


def test_a_held_or_noted_line_is_not_merged_into(menu):
    session = add(opened(menu), "ESP")
    line_id = session.lines[0]["line_id"]
    session = ModifyService.modify_session(
        session.session_key, "pos", [{"op": "set_line_meta", "line_id": line_id, "path": "hold", "value": True}]
    )
    session = add(session, "ESP")
    assert [line["qty"] for line in session.lines] == ["1", "1"]


@pytest.mark.parametrize(
    "modifiers,code,context",
    [
        (None, "options_required", {"group": "doneness", "min": 1}),
        (["extras:bacon"], "options_required", {"group": "doneness", "min": 1}),
        (["doneness:medium", "doneness:rare"], "too_many_options", {"group": "doneness", "max": 1}),
        (["doneness:medium", "extras:bacon", "extras:cheese", "extras:egg"], "too_many_options", {"group": "extras"}),
        (["doneness:blue"], "unknown_option", {"group": "doneness", "option": "blue"}),
        (["milk:oat", "doneness:medium"], "unknown_option", {"group": "milk", "option": "oat"}),
        (["doneness"], "invalid_field", {"field": "meta.modifiers"}),
        ("doneness:medium", "invalid_field", {"field": "meta.modifiers"}),
        (["doneness:medium", "doneness:medium"], "invalid_field", {"field": "meta.modifiers"}),
    ],
)
def test_refused_choices_answer_a_code_and_change_nothing(menu, modifiers, code, context):
    session = add(opened(menu), "ESP")
    state = DbState(session)
    with pytest.raises(ValidationError) as caught:
        add(session, "BURG", modifiers)
    assert caught.value.code == code
    assert context.items() <= caught.value.context.items()
    state.assert_unchanged()


def test_an_inactive_option_is_unknown(menu):
    session = opened(menu)
    with pytest.raises(ValidationError) as caught:
        add(session, "CAP", ["milk:old"])
    assert caught.value.code == "unknown_option"


@pytest.mark.parametrize(
    "meta,code",
    [
        ({}, "options_required"),
        ({"modifiers": [{"group": "doneness", "option": "blue"}]}, "unknown_option"),
        ({"modifiers": [{"group": "doneness"}]}, "invalid_field"),
        ({"modifiers": "doneness:medium"}, "invalid_field"),
    ],
)
def test_the_session_ops_check_modifiers_too(menu, meta, code):
    """A client adding lines through the ops (the REST API) gets the same checks from the pricing modifier."""
    session = opened(menu)
    state = DbState(session)
    with pytest.raises(ValidationError) as caught:
        ModifyService.modify_session(
            session.session_key, "pos", [{"op": "add_line", "sku": "BURG", "qty": 1, "meta": meta}], expected_rev=session.rev
        )
    assert caught.value.code == code
    state.assert_unchanged()


def test_ops_with_modifiers_are_priced_and_a_removed_option_is_refused_until_the_line_goes(menu):
    session = opened(menu)
    session = ModifyService.modify_session(
        session.session_key,
        "pos",
        [{"op": "add_line", "sku": "BURG", "qty": 2, "meta": {"modifiers": ["doneness:well", "extras:cheese"]}}],
    )
    [line] = session.lines
    assert line["unit_price_q"] == 3500 and session.total_q == 7000
    assert [m["name"] for m in line["meta"]["modifiers"]] == ["Well done", "Cheese"]
    Option.objects.filter(code="cheese").update(is_active=False)
    with pytest.raises(ValidationError) as caught:
        ModifyService.modify_session(session.session_key, "pos", [{"op": "set_data", "path": "x", "value": 1}])
    assert caught.value.code == "unknown_option" and caught.value.context["line_id"] == line["line_id"]
    session = ModifyService.modify_session(session.session_key, "pos", [{"op": "remove_line", "line_id": line["line_id"]}])
    assert session.lines == []


def test_modifiers_reach_the_order_items(menu):
    session = add(opened(menu), "BURG", ["doneness:rare", "without:no-onions"])
    result = commit(session)
    item = Order.objects.get(ref=result["order_ref"]).items.get()
    assert [m["name"] for m in item.meta["modifiers"]] == ["Rare", "No onions"]
    assert item.unit_price_q == 3200
