"""Modifiers through the REST session ops, and ``POST /api/orders/{ref}/kitchen/fire/`` (a held course)."""

from __future__ import annotations

import pytest

from omniman.contrib.catalog.models import Category, Option, OptionGroup, Product
from omniman.models import KitchenItem, OrderEvent, Session
from omniman.services import SessionService
from tests.factories import DbState, commit, make_channel
from tests.integration.api.conftest import error_of

pytestmark = [pytest.mark.django_db, pytest.mark.contrib("omniman.contrib.catalog", "omniman.contrib.pricing")]


@pytest.fixture
def shop(db):
    food = Category.objects.create(code="food", name="Food")
    burger = Product.objects.create(sku="BURG", name="Burger", category=food, price_q=3200, station="kitchen")
    Product.objects.create(sku="GELATO", name="Gelato", category=food, price_q=1100, station="pastry")
    doneness = OptionGroup.objects.create(code="doneness", name="Doneness", min_choices=1, max_choices=1)
    Option.objects.create(group=doneness, code="rare", name="Rare")
    extras = OptionGroup.objects.create(code="extras", name="Extras", max_choices=2)
    Option.objects.create(group=extras, code="bacon", name="Bacon", price_q=600)
    burger.option_groups.set([doneness, extras])
    return make_channel("shop", name="Shop", config={"pricing": {}})


def modify(client, session, ops):
    return client.post(
        f"/api/sessions/{session.session_key}/modify/",
        {"channel_code": session.channel.code, "ops": ops, "expected_rev": session.rev},
        format="json",
    )


def test_modifiers_in_the_session_ops_are_checked_priced_and_returned(pos, shop):
    session = SessionService.open_session("shop")
    add = {"op": "add_line", "sku": "BURG", "qty": "2", "meta": {"modifiers": ["doneness:rare", "extras:bacon"]}, "merge": True}
    response = modify(pos, session, [add])
    assert response.status_code == 200, response.json()
    [item] = response.json()["items"]
    assert item["unit_price_q"] == 3800 and item["line_total_q"] == 7600
    assert [(m["group"], m["option"], m["name"], m["price_q"]) for m in item["meta"]["modifiers"]] == [
        ("doneness", "rare", "Rare", 0),
        ("extras", "bacon", "Bacon", 600),
    ]
    session.refresh_from_db()
    response = modify(pos, session, [add])  # the same product and modifiers, merge: one line of 4
    assert [i["qty"] for i in response.json()["items"]] == ["4"]


@pytest.mark.parametrize(
    "meta,code",
    [({}, "options_required"), ({"modifiers": ["doneness:blue"]}, "unknown_option"),
     ({"modifiers": ["doneness:rare", "extras:bacon", "extras:bacon"]}, "invalid_field")],
)
def test_refused_modifiers_are_400_with_their_code_and_change_nothing(pos, shop, meta, code):
    session = SessionService.open_session("shop")
    state = DbState(session)
    response = modify(pos, session, [{"op": "add_line", "sku": "BURG", "qty": 1, "meta": meta}])
    assert response.status_code == 400 and error_of(response) == code
    state.assert_unchanged()


def test_fire_sends_the_held_lines_to_the_kitchen(clients, shop):
    session = SessionService.open_session("shop")
    ops = [
        {"op": "add_line", "sku": "BURG", "qty": 1, "meta": {"modifiers": ["doneness:rare"]}},
        {"op": "add_line", "sku": "GELATO", "qty": 1, "meta": {"hold": True}},
    ]
    assert modify(clients["pos"], session, ops).status_code == 200
    session = Session.objects.get(pk=session.pk)
    ref = commit(session)["order_ref"]
    gelato = session.lines[1]["line_id"]
    assert KitchenItem.objects.get(order__ref=ref, line_id=gelato).held is True

    # Roles: the kitchen and an integration may not fire; unknown order and line are 404.
    for who in ("kitchen", "nobody", "anonymous"):
        assert clients[who].post(f"/api/orders/{ref}/kitchen/fire/", {}, format="json").status_code in (401, 403)
    state = DbState()
    response = clients["pos"].post("/api/orders/NOPE-1/kitchen/fire/", {}, format="json")
    assert response.status_code == 404 and error_of(response) == "not_found"
    response = clients["pos"].post(f"/api/orders/{ref}/kitchen/fire/", {"line_ids": ["L-nope"]}, format="json")
    assert response.status_code == 404 and error_of(response) == "not_found"
    response = clients["pos"].post(f"/api/orders/{ref}/kitchen/fire/", {"line_ids": "L-1"}, format="json")
    assert response.status_code == 400
    state.assert_unchanged()
    assert KitchenItem.objects.get(order__ref=ref, line_id=gelato).held is True

    response = clients["pos"].post(f"/api/orders/{ref}/kitchen/fire/", {}, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["order_ref"] == ref and [(i["line_id"], i["held"]) for i in body["items"]] == [(gelato, False)]
    assert KitchenItem.objects.get(order__ref=ref, line_id=gelato).held is False
    assert OrderEvent.objects.filter(order__ref=ref, type="kitchen.fired").count() == 1
    # Firing again changes nothing.
    response = clients["manager"].post(f"/api/orders/{ref}/kitchen/fire/", {"line_ids": [gelato]}, format="json")
    assert response.status_code == 200 and response.json()["items"] == []
    assert OrderEvent.objects.filter(order__ref=ref, type="kitchen.fired").count() == 1
