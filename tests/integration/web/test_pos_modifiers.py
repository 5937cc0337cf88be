"""The POS's options step: a product with a forced choice asks for it in one step; modifiers show on the cart."""

from __future__ import annotations

import pytest

from omniman.contrib.catalog.models import Option, OptionGroup, Product
from omniman.contrib.demo.menu import OPTION_GROUPS
from tests.factories import DbState
from tests.integration.web.helpers import CAFE, HX, act, assert_changes, basket, fresh, text, url

pytestmark = [pytest.mark.django_db, CAFE]


@pytest.fixture
def options(cafe):
    """The demo's option groups: milk for coffees, doneness (forced), extras and "without" for burgers."""
    for position, (code, name, min_choices, max_choices, entries, skus) in enumerate(OPTION_GROUPS):
        group = OptionGroup.objects.create(
            code=code, name=name, min_choices=min_choices, max_choices=max_choices, sort_order=position
        )
        Option.objects.bulk_create(
            Option(group=group, code=c, name=n, price_q=p, sku=s, sort_order=i) for i, (c, n, p, s) in enumerate(entries)
        )
        group.products.set(Product.objects.filter(sku__in=skus))


def test_tapping_a_forced_product_asks_for_its_options_and_changes_nothing(pos, options):
    session = basket("counter", "ESP")
    state = DbState(session)
    response = act(pos, "add", session, {"sku": "BURG"})
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#picker" and response["HX-Reswap"] == "outerHTML"
    body = text(response)
    assert 'role="dialog"' in body and "Doneness" in body and "required" in body
    assert 'name="modifier-doneness" value="doneness:medium"' in body
    assert 'name="modifier-extras" value="extras:bacon"' in body and 'type="checkbox"' in body
    assert "+R$6.00" in body  # bacon's price delta
    assert 'class="field-error"' not in body  # a question, not a mistake
    state.assert_unchanged()


def test_the_options_step_adds_the_line_with_its_modifiers(pos, options):
    session = basket("counter", "ESP")
    response = act(
        pos,
        "add",
        session,
        {"sku": "BURG", "options": "1", "modifier-doneness": "doneness:rare", "modifier-extras": ["extras:bacon", "extras:egg"],
         "modifier-without": "without:no-onions"},
    )
    body = assert_changes(response)
    burger = fresh(session).lines[1]
    assert [m["option"] for m in burger["meta"]["modifiers"]] == ["rare", "bacon", "egg", "no-onions"]
    assert burger["unit_price_q"] == 3200 + 600 + 500
    assert "Rare · Bacon (+R$6.00) · Fried egg (+R$5.00) · No onions" in body
    assert "pos:added" in response["HX-Trigger"]


def test_the_same_choices_add_to_the_line_and_other_choices_make_a_new_one(pos, options):
    session = basket("counter")
    chosen = {"sku": "BURG", "options": "1", "modifier-doneness": "doneness:medium"}
    act(pos, "add", session, chosen)
    act(pos, "add", fresh(session), chosen)
    act(pos, "add", fresh(session), {**chosen, "modifier-doneness": "doneness:well-done"})
    act(pos, "add", fresh(session), {"sku": "ESP"})
    act(pos, "add", fresh(session), {"sku": "ESP"})
    assert [(line["sku"], line["qty"]) for line in fresh(session).lines] == [
        ("BURG", "2"), ("BURG", "1"), ("ESP", "2")
    ]


def test_a_refused_choice_keeps_the_step_open_with_the_reason(pos, options):
    session = basket("counter")
    state = DbState(session)
    response = act(pos, "add", session, {"sku": "BURG", "options": "1", "modifier-extras": "extras:bacon"})
    assert response.status_code == 422
    body = text(response)
    assert "Choose Doneness for Burger." in body and 'class="field-error"' in body
    assert 'value="extras:bacon" checked' in body  # what was chosen stays chosen
    state.assert_unchanged()
    response = act(pos, "add", session, {"sku": "BURG", "options": "1", "modifier": ["doneness:rare", "doneness:medium"]})
    assert response.status_code == 422 and "at most 1 of Doneness" in text(response)
    response = act(pos, "add", session, {"sku": "BURG", "options": "1", "modifier": "doneness:blue"})
    assert response.status_code == 422 and "Burger has no option" in text(response)
    state.assert_unchanged()


def test_a_scan_of_a_forced_product_asks_the_same(pos, options):
    session = basket("counter")
    response = act(pos, "add", session, {"q": "7890000000233"})  # the burger's barcode
    assert response.status_code == 200 and response["HX-Retarget"] == "#picker"
    assert 'name="q" value="7890000000233"' in text(response)  # so the search box is cleared once it is added
    assert fresh(session).lines == []


def test_without_javascript_the_page_comes_back_with_the_step_open(pos, options):
    session = basket("counter")
    response = act(pos, "add", session, {"sku": "BURG"}, htmx=False)
    assert response.status_code == 200
    body = text(response)
    assert 'id="picker"' in body and 'role="dialog"' in body and 'id="cart"' in body
    response = act(pos, "add", session, {"sku": "BURG", "modifier-doneness": "doneness:rare"}, htmx=False)
    assert response.status_code == 302
    assert fresh(session).lines[0]["meta"]["modifiers"][0]["name"] == "Rare"


def test_optional_options_one_tap_adds_it_plain_and_the_options_link_opens_the_step(pos, options):
    session = basket("counter")
    page = text(pos.get(url("session", session)))
    assert 'href="/pos/counter/s/%s/options/?sku=CAP"' % session.session_key in page
    act(pos, "add", session, {"sku": "CAP"})
    assert fresh(session).lines[0].get("meta", {}).get("modifiers") is None
    response = pos.get(url("options", session) + "?sku=CAP", **HX)
    assert response.status_code == 200 and "Oat milk" in text(response) and "+R$2.00" in text(response)
    act(pos, "add", fresh(session), {"sku": "CAP", "options": "1", "modifier-milk": "milk:oat"})
    lines = fresh(session).lines
    assert [(line["sku"], line["unit_price_q"]) for line in lines] == [("CAP", 950), ("CAP", 1150)]
    # "None" in an optional group is no choice.
    act(pos, "add", fresh(session), {"sku": "CAP", "options": "1", "modifier-milk": ""})
    assert [line["qty"] for line in fresh(session).lines] == ["2", "1"]


def test_the_options_step_of_an_unknown_product_is_404_and_needs_the_pos_role(pos, options, cafe):
    session = basket("counter")
    response = pos.get(url("options", session) + "?sku=NOPE", **HX)
    assert response.status_code == 422 and "No product matches" in text(response)
    assert pos.get(url("options", session), **HX).status_code == 404
    from django.test import Client

    anonymous = Client().get(url("options", session) + "?sku=CAP")
    assert anonymous.status_code == 302


# -- courses: hold and fire ---------------------------------------------------------------


def _send(pos, tab):
    import uuid

    from tests.integration.web.helpers import settle

    settle()
    tab = fresh(tab)
    response = act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    assert response.status_code == 302, text(response)
    from omniman.models import Order, Session

    return Order.objects.get(session_key=tab.session_key), Session.objects.get(
        channel__code="tables", handle_ref=tab.handle_ref, state="open"
    )


def test_hold_a_line_send_the_round_then_fire_the_course(pos, options):
    from omniman.models import KitchenItem, OrderEvent

    tab = basket("tables", "LEMON", "GELATO", table="9")
    lemonade, gelato = (line["line_id"] for line in tab.lines)
    body = assert_changes(act(pos, "hold", tab, {"hold": "true"}, line=gelato))
    assert "Held: the kitchen gets it when you fire the course." in body and 'aria-pressed="true"' in body
    tab = fresh(tab)
    assert tab.lines[1]["meta"]["hold"] is True and "hold" not in tab.lines[0]["meta"]
    order, nxt = _send(pos, tab)
    held = dict(KitchenItem.objects.filter(order=order).values_list("line_id", "held"))
    assert held == {lemonade: False, gelato: True}
    page = text(pos.get(url("session", nxt)))
    assert "Fire the held item" in page and "course 2" in page

    state = DbState(nxt)
    response = act(pos, "fire", nxt, {"order_ref": order.ref}, htmx=True)
    assert response.status_code == 200 and "Course fired" in text(response)
    assert "Fire the held item" not in text(response)
    assert dict(KitchenItem.objects.filter(order=order).values_list("line_id", "held")) == {lemonade: False, gelato: False}
    assert OrderEvent.objects.filter(order=order, type="kitchen.fired").count() == 1
    state.counts["events"] += 1  # the fire's event; the open session itself is untouched
    state.assert_unchanged()


def test_release_a_held_line_and_fire_refusals(pos, options):
    tab = basket("tables", "GELATO", table="8")
    gelato = tab.lines[0]["line_id"]
    act(pos, "hold", tab, {"hold": "true"}, line=gelato)
    act(pos, "hold", fresh(tab), {"hold": "false"}, line=gelato)
    assert not fresh(tab).lines[0]["meta"].get("hold")
    order, nxt = _send(pos, fresh(tab))
    # Another table's round is not this tab's to fire.
    other = basket("tables", "ESP", table="7")
    state = DbState(other)
    assert act(pos, "fire", other, {"order_ref": order.ref}).status_code == 404
    assert act(pos, "fire", other, {"order_ref": ""}).status_code == 422
    state.assert_unchanged()


def test_the_kitchen_card_shows_the_modifiers(options):
    from tests.integration.web.helpers import logged_in, settle

    from omniman.contrib.catalog.services import CatalogOrderingService
    from tests.factories import commit

    session = basket("counter")
    session = CatalogOrderingService.add_product(
        session.session_key, "counter", sku="BURG", modifiers=["doneness:rare", "extras:bacon", "without:no-onions"]
    )
    settle()
    commit(fresh(session))
    board = text(logged_in("kitchen", "kitchen").get("/kitchen/"))
    assert "+ Rare, Bacon, No onions" in board


def test_managers_edit_option_groups_in_the_admin(options):
    from django.test import Client

    from tests.integration.web.helpers import logged_in, make_user

    boss = make_user("boss", "manager")
    boss.is_staff = True
    boss.save(update_fields=["is_staff"])
    manager = Client()
    manager.force_login(boss)
    listing = manager.get("/admin/omniman_catalog/optiongroup/")
    assert listing.status_code == 200 and "Doneness" in text(listing)
    doneness = OptionGroup.objects.get(code="doneness")
    page = manager.get(f"/admin/omniman_catalog/optiongroup/{doneness.pk}/change/")
    assert page.status_code == 200 and "Well done" in text(page)  # its options inline
    assert manager.get(f"/admin/omniman_catalog/product/{Product.objects.get(sku='BURG').pk}/change/").status_code == 200
    response = manager.post(
        "/admin/omniman_catalog/optiongroup/add/",
        {"code": "sauce", "name": "Sauce", "min_choices": 2, "max_choices": 1, "sort_order": 0, "is_active": "on",
         "options-TOTAL_FORMS": "0", "options-INITIAL_FORMS": "0", "options-MIN_NUM_FORMS": "0", "options-MAX_NUM_FORMS": "1000"},
    )
    assert response.status_code == 200 and not OptionGroup.objects.filter(code="sauce").exists()  # max < min refused
    assert logged_in("cashier", "pos").get("/admin/omniman_catalog/optiongroup/").status_code in (302, 403)
