"""The pricing app: price sources, the pricing modifiers, the price check and the commit gate."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman import engine, registry
from omniman.contrib.catalog.models import Category, Product
from omniman.contrib.pricing import get_pricing_backend
from omniman.contrib.pricing.backends import CatalogPricingBackend
from omniman.contrib.pricing.handlers import PricingCheckHandler
from omniman.contrib.pricing.models import PriceList, PriceListItem
from omniman.contrib.pricing.modifiers import ItemPricingModifier, LineOptionsModifier
from omniman.contrib.pricing.protocols import PricingBackend
from omniman.exceptions import CommitError, DirectiveError, OmnimanError, ValidationError
from omniman.models import Directive, Order, Session
from omniman.services import ModifyService, ResolveService, SessionService
from tests.factories import DbState, commit, make_channel

pytestmark = pytest.mark.django_db

PRICED = {"pricing": {}}
CHECKED = {
    "pricing": {},
    "required_checks_on_commit": ["pricing"],
    "checks": {"pricing": {"directive_topic": "pricing.check"}},
}


@pytest.fixture
def menu():
    food = Category.objects.create(code="food", name="Food")
    products = {
        "BURGER": Product.objects.create(sku="BURGER", name="Burger", category=food, price_q=2500),
        "FRIES": Product.objects.create(sku="FRIES", name="Fries", category=food, price_q=1000),
        "CHEESE": Product.objects.create(sku="CHEESE", name="Extra cheese", category=food, price_q=300),
        "BACON": Product.objects.create(sku="BACON", name="Bacon", category=food, price_q=450),
        "FISH": Product.objects.create(sku="FISH", name="Fish of the day", category=food, price_q=None),
        "SALMON": Product.objects.create(sku="SALMON", name="Salmon", category=food, price_q=5200),
        "TUNA": Product.objects.create(sku="TUNA", name="Tuna", category=food, price_q=None),
        "COD": Product.objects.create(sku="COD", name="Cod", category=food, price_q=4100, is_active=False),
    }
    products["FISH"].alternatives.add(products["TUNA"], products["SALMON"], products["COD"])
    return products


def open_with(channel, *items, **kwargs) -> Session:
    session = SessionService.open_session(channel.code, **kwargs)
    if items:
        session = ModifyService.modify_session(
            session.session_key, channel.code, [{"op": "add_line", "qty": 1, **item} for item in items]
        )
    return session


def modify(session, *ops) -> Session:
    return ModifyService.modify_session(session.session_key, session.channel.code, list(ops), expected_rev=session.rev)


def touch(session) -> Session:
    return modify(session, {"op": "set_data", "path": "touch", "value": session.rev})


def line(session, sku) -> dict:
    return next(item for item in session.lines if item["sku"] == sku)


def price_list(code, channels, prices, *, priority=0, is_active=True) -> PriceList:
    plist = PriceList.objects.create(code=code, name=code.title(), priority=priority, is_active=is_active)
    plist.channels.set(channels)
    PriceListItem.objects.bulk_create([PriceListItem(price_list=plist, sku=sku, price_q=q) for sku, q in prices.items()])
    return plist


# -- the backend ----------------------------------------------------------------


def test_the_default_backend_prices_from_the_catalog(menu):
    backend = get_pricing_backend()
    assert isinstance(backend, CatalogPricingBackend) and isinstance(backend, PricingBackend)
    pos = make_channel("pos")
    assert backend.get_price("BURGER", pos) == 2500
    assert backend.get_price("FISH", pos) is None  # in the catalog, without a price
    assert backend.get_price("COD", pos) is None  # inactive
    assert backend.get_price("NOPE", pos) is None
    assert backend.get_prices(["BURGER", "FRIES", "FISH", "NOPE"], pos) == {"BURGER": 2500, "FRIES": 1000}
    assert backend.get_prices([], pos) == {}


def test_a_channels_active_price_list_wins_over_the_catalog(menu):
    pos, delivery, web = make_channel("pos"), make_channel("delivery"), make_channel("web")
    price_list("delivery", [delivery, web], {"BURGER": 2900, "FISH": 4800, "COMBO": 3500})
    price_list("delivery-promo", [delivery], {"BURGER": 2700}, priority=5)
    price_list("delivery-low", [delivery], {"BURGER": 1}, priority=-1)
    price_list("retired", [delivery], {"FRIES": 1}, is_active=False)
    backend = get_pricing_backend()

    assert backend.get_prices(["BURGER", "FRIES", "FISH", "COMBO"], delivery) == {
        "BURGER": 2700,  # the highest priority list
        "FRIES": 1000,  # no active list prices it: the catalog
        "FISH": 4800,  # a list prices what the catalog does not
        "COMBO": 3500,  # and SKUs the catalog does not know
    }
    assert backend.get_prices(["BURGER", "FISH"], web) == {"BURGER": 2900, "FISH": 4800}
    assert backend.get_prices(["BURGER", "FISH"], pos) == {"BURGER": 2500}  # no list of its own
    assert backend.get_price("BURGER", "delivery") == 2700  # a channel code works too
    assert backend.get_price("BURGER", None) == 2500


def test_equal_priorities_are_broken_by_the_list_code(menu):
    delivery = make_channel("delivery")
    price_list("b-list", [delivery], {"BURGER": 2200})
    price_list("a-list", [delivery], {"BURGER": 2100})
    assert get_pricing_backend().get_price("BURGER", delivery) == 2100


def test_get_prices_costs_two_queries_whatever_the_number_of_skus(menu):
    delivery = make_channel("delivery")
    price_list("delivery", [delivery], {"BURGER": 2900})
    with CaptureQueriesContext(connection) as queries:
        prices = get_pricing_backend().get_prices(["BURGER", "FRIES", "CHEESE", "BACON", "NOPE"], delivery)
    assert prices == {"BURGER": 2900, "FRIES": 1000, "CHEESE": 300, "BACON": 450}
    assert len(queries.captured_queries) == 2


def test_a_price_list_item_is_unique_per_list_and_never_negative(menu):
    from django.db import IntegrityError, transaction

    plist = price_list("delivery", [], {"BURGER": 2900})
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceListItem.objects.create(price_list=plist, sku="BURGER", price_q=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        PriceListItem.objects.create(price_list=plist, sku="FRIES", price_q=-1)


# -- ItemPricingModifier ---------------------------------------------------------


def test_internal_sessions_are_priced_by_the_hub(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "BURGER", "qty": 2}, {"sku": "FRIES", "name": "Big fries", "unit_price_q": 1})
    assert line(session, "BURGER")["unit_price_q"] == 2500
    assert line(session, "BURGER")["name"] == "Burger"  # named from the catalog
    assert line(session, "FRIES")["unit_price_q"] == 1000  # a client's price is not the hub's
    assert line(session, "FRIES")["name"] == "Big fries"  # a name of its own is kept
    assert session.total_q == 2 * 2500 + 1000
    assert Session.objects.get(pk=session.pk).total_q == 6000


def test_channel_price_lists_apply_to_sessions(menu):
    delivery = make_channel("delivery", config=PRICED)
    price_list("delivery", [delivery], {"BURGER": 2900})
    session = open_with(delivery, {"sku": "BURGER"}, {"sku": "FRIES"})
    assert [item["unit_price_q"] for item in session.lines] == [2900, 1000]


def test_a_price_change_reaches_the_session_on_its_next_modification(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "BURGER"})
    Product.objects.filter(sku="BURGER").update(price_q=2600)
    assert line(session, "BURGER")["unit_price_q"] == 2500
    session = touch(session)
    assert line(session, "BURGER")["unit_price_q"] == 2600


def test_external_sessions_are_never_repriced(menu):
    marketplace = make_channel("marketplace", config=PRICED, pricing_policy="external")
    session = open_with(marketplace, {"sku": "BURGER", "unit_price_q": 1990}, {"sku": "NOPE", "unit_price_q": 500})
    session = touch(session)
    assert [(item["unit_price_q"], item["meta"]) for item in session.lines] == [(1990, {}), (500, {})]
    assert session.total_q == 2490


def test_channels_without_pricing_config_keep_the_kernels_behaviour(menu):
    plain = make_channel("plain")
    session = open_with(plain, {"sku": "BURGER", "unit_price_q": 1234}, {"sku": "NOPE"})
    assert [(item["unit_price_q"], item["meta"]) for item in session.lines] == [(1234, {}), (0, {})]
    assert "totals" not in session.data
    commit(session)  # nothing here refuses the commit


def test_price_overrides_are_respected(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "BURGER"}, {"sku": "FISH"})
    burger, fish = line(session, "BURGER")["line_id"], line(session, "FISH")["line_id"]
    session = modify(
        session,
        {"op": "override_price", "line_id": burger, "unit_price_q": 2000, "reason": "regular", "actor": "ana"},
        {"op": "override_price", "line_id": fish, "unit_price_q": 4500, "reason": "market price", "actor": "ana"},
    )
    session = touch(session)
    assert line(session, "BURGER")["unit_price_q"] == 2000
    assert line(session, "FISH")["unit_price_q"] == 4500
    assert "price_missing" not in line(session, "FISH")["meta"]  # priced by the operator, on the record
    result = commit(session)
    order = Order.objects.get(ref=result["order_ref"])
    assert order.total_q == 6500
    assert order.events.filter(type="price.overridden").count() == 2


def test_a_line_without_a_price_is_flagged_not_a_crash(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "FISH", "unit_price_q": 999}, {"sku": "GHOST"}, {"sku": "BURGER"})
    fish, ghost = line(session, "FISH"), line(session, "GHOST")
    assert (fish["unit_price_q"], fish["line_total_q"], fish["meta"]) == (0, 0, {"price_missing": True})
    assert (ghost["unit_price_q"], ghost["name"], ghost["meta"]) == (0, "GHOST", {"price_missing": True})
    assert "price_missing" not in line(session, "BURGER")["meta"]
    assert session.total_q == 2500

    # The flag goes once the line is priced.
    Product.objects.filter(sku="FISH").update(price_q=4700)
    session = touch(session)
    assert (line(session, "FISH")["unit_price_q"], line(session, "FISH")["meta"]) == (4700, {})


def test_flags_do_not_outlive_the_channels_pricing(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "FISH"})
    assert line(session, "FISH")["meta"] == {"price_missing": True}
    pos.config = {}
    pos.save()
    session = touch(Session.objects.get(pk=session.pk))
    assert line(session, "FISH")["meta"] == {}
    commit(session)


# -- LineOptionsModifier ----------------------------------------------------------


def test_priced_options_add_to_the_unit_price(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(
        pos,
        {"sku": "BURGER", "qty": 2, "meta": {"options": ["CHEESE", {"sku": "BACON", "qty": 2}, {"name": "well done"}]}},
    )
    burger = line(session, "BURGER")
    assert burger["unit_price_q"] == 2500 + 300 + 2 * 450
    assert burger["meta"]["options_q"] == 1200
    assert session.total_q == 2 * 3700

    session = modify(session, {"op": "set_line_meta", "line_id": burger["line_id"], "path": "options", "value": []})
    assert line(session, "BURGER")["unit_price_q"] == 2500
    assert "options_q" not in line(session, "BURGER")["meta"]


def test_an_unpriced_option_leaves_the_line_unpriced(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "BURGER", "meta": {"options": ["CHEESE", "TUNA"]}})
    burger = line(session, "BURGER")
    assert burger["unit_price_q"] == 0
    assert burger["meta"]["price_missing"] is True and burger["meta"]["missing_options"] == ["TUNA"]


def test_malformed_options_are_refused_and_nothing_changes(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "BURGER"})
    state = DbState(session)
    for bad in ("CHEESE", [1], [{"sku": ""}], [{"sku": "CHEESE", "qty": 0}]):
        with pytest.raises(ValidationError) as caught:
            modify(session, {"op": "set_line_meta", "line_id": session.lines[0]["line_id"], "path": "options", "value": bad})
        assert caught.value.code == "invalid_field" and caught.value.context["field"] == "meta.options"
    state.assert_unchanged()


# -- the totals: the kernel's (omniman.adjustments), not a modifier's ----------------


def test_totals_summarise_items_and_the_service_charge(menu):
    tables = make_channel("tables", config={"pricing": {"service_charge_percent": "12.5"}, "currency": "EUR"})
    session = open_with(tables, {"sku": "BURGER", "qty": "1.5"}, {"sku": "FRIES", "qty": 3})
    fries = line(session, "FRIES")["line_id"]
    session = modify(session, {"op": "override_price", "line_id": fries, "unit_price_q": 850, "reason": "combo"})
    items_q = 3750 + 3 * 850
    assert session.total_q == items_q + 788  # 12.5 % of 6300 = 787.5, half up: part of the total (SPEC §10)
    totals = session.totals
    assert {key: totals[key] for key in ("items_q", "discount_q", "service_percent", "service_q", "total_q", "currency")} == {
        "items_q": items_q,
        "discount_q": 0,  # a price override changes the price, it is not a discount
        "service_percent": "12.5",
        "service_q": 788,
        "total_q": items_q + 788,
        "currency": "EUR",
    }
    assert "totals" not in session.data


def test_the_service_charge_applies_to_external_sessions_too(menu):
    marketplace = make_channel("marketplace", config={"pricing": {"service_charge_percent": 10}}, pricing_policy="external")
    session = open_with(marketplace, {"sku": "X", "unit_price_q": 1001})
    assert session.totals["service_q"] == 100 and session.total_q == 1101


@pytest.mark.parametrize("percent", [-1, 101, "ten", "1.005", True, None])
def test_an_invalid_service_charge_is_refused_with_the_channel(menu, percent):
    tables = make_channel("tables", config={"pricing": {}})
    tables.config = {"pricing": {"service_charge_percent": percent}}
    with pytest.raises(DjangoValidationError) as caught:
        tables.save()
    assert [error.code for error in caught.value.error_dict["config"]] == ["invalid_service_charge"]


# -- determinism and cost ---------------------------------------------------------


def _run_pipeline_by_hand(session, channel):
    modifiers = [ItemPricingModifier(), LineOptionsModifier()]
    ctx: dict = {}
    for modifier in modifiers:
        if hasattr(modifier, "prepare"):
            modifier.prepare(channel=channel, session=session, ctx=ctx)
    for modifier in modifiers:
        modifier.apply(channel=channel, session=session, ctx=ctx)
    return ctx


def test_the_modifiers_are_deterministic(menu):
    tables = make_channel("tables", config={"pricing": {"service_charge_percent": 10}})
    session = open_with(
        tables,
        {"sku": "BURGER", "qty": 2, "meta": {"options": ["CHEESE"]}},
        {"sku": "FISH"},
        {"sku": "BURGER", "meta": {"options": ["TUNA"]}},
    )
    def dump(target):
        return json.dumps({"lines": target.lines, "data": target.data}, sort_keys=True)

    # The whole pipeline again, twice, on what it produced: the same session.
    again = copy.deepcopy(session)
    _run_pipeline_by_hand(again, tables)
    _run_pipeline_by_hand(again, tables)
    assert dump(again) == dump(session)

    # Each modifier applied twice in a row is the same as once.
    for modifier in [m for m in registry.get_modifiers() if m.code.startswith("pricing.")]:
        once, twice = copy.deepcopy(session), copy.deepcopy(session)
        ctx = _run_pipeline_by_hand(copy.deepcopy(session), tables)
        modifier.apply(channel=tables, session=once, ctx=ctx)
        modifier.apply(channel=tables, session=twice, ctx=ctx)
        modifier.apply(channel=tables, session=twice, ctx=ctx)
        assert dump(once) == dump(twice), modifier.code

    # And a modification that touches no line gives the same lines and totals.
    touched = touch(session)
    assert touched.lines == session.lines
    assert touched.totals == session.totals


def test_the_modifiers_read_only_what_prepare_loaded(menu):
    pos = make_channel("pos", config=PRICED)
    session = open_with(pos, {"sku": "BURGER"})
    with pytest.raises(OmnimanError) as caught:
        ItemPricingModifier().apply(channel=pos, session=session, ctx={})
    assert caught.value.code == "pipeline_violation"


def _modify_queries(lines: int) -> int:
    prefix = f"P{lines}-"
    Product.objects.bulk_create([Product(sku=f"{prefix}{i}", name=f"Product {i}", price_q=100 + i) for i in range(lines)])
    channel = make_channel(config={"pricing": {"service_charge_percent": 10}})
    price_list(f"list-{lines}", [channel], {f"COMBO-{lines}": 3000})  # a SKU only the list prices
    session = open_with(
        channel, *({"sku": f"{prefix}{i}", "meta": {"options": [f"{prefix}{(i + 1) % lines}"]}} for i in range(lines))
    )
    assert all(item["unit_price_q"] > 0 for item in session.lines)
    ops = [
        {"op": "add_line", "sku": f"{prefix}0", "qty": 1},  # no name: the catalog names it
        {"op": "add_line", "sku": f"COMBO-{lines}", "qty": 1, "name": "Combo"},
        {"op": "set_qty", "line_id": session.lines[-1]["line_id"], "qty": 3},
    ]
    with CaptureQueriesContext(connection) as queries:
        session = ModifyService.modify_session(session.session_key, channel.code, ops, expected_rev=session.rev)
    assert [(item["name"], item["unit_price_q"]) for item in session.lines[-2:]] == [("Product 0", 100), ("Combo", 3000)]
    return len(queries.captured_queries)


def test_the_cost_of_modify_session_does_not_grow_with_the_lines(menu):
    assert registry.get_modifiers() and {"pricing.item", "pricing.line"} <= {
        m.code for m in registry.get_modifiers()
    }
    one, hundred = _modify_queries(1), _modify_queries(100)
    assert one == hundred
    assert one <= 5 + 4  # the kernel's modify, plus the price lists, the catalog prices and names, the products' option groups (modifiers) and the 86 list (h-kitchen)


# -- the commit gate --------------------------------------------------------------


def test_an_unpriced_session_cannot_be_committed(menu):
    pos = make_channel("pos", config=PRICED)  # no required check: the validator still guards
    session = open_with(pos, {"sku": "BURGER"}, {"sku": "FISH"})
    state = DbState(session)
    with pytest.raises(CommitError) as caught:
        commit(session, "k-1")
    assert caught.value.code == "validation_failed"
    validation = caught.value.context["validation"]
    assert validation["code"] == "price_missing"
    assert validation["context"] == {"line_ids": [line(session, "FISH")["line_id"]], "skus": ["FISH"]}
    state.assert_unchanged()

    session = modify(session, {"op": "remove_line", "line_id": line(session, "FISH")["line_id"]})
    assert commit(session, "k-2")["total_q"] == 2500


def test_the_validator_ignores_external_sessions():
    marketplace = make_channel("marketplace", pricing_policy="external")
    session = open_with(marketplace, {"sku": "X", "unit_price_q": 100, "meta": {"price_missing": True}})
    commit(session)


# -- the pricing.check handler ----------------------------------------------------


def run_checks() -> list[str]:
    return [outcome for _, outcome in engine.process(topics=["pricing.check"]).outcomes]


@pytest.mark.django_db(transaction=True)
def test_the_check_reports_each_unpriced_line_with_actions(menu):
    pos = make_channel("pos", config=CHECKED)
    session = open_with(pos, {"sku": "BURGER"}, {"sku": "FISH", "qty": 2}, {"sku": "BURGER", "meta": {"options": ["TUNA"]}})
    fish = line(session, "FISH")["line_id"]
    optioned = [item for item in session.lines if item["meta"].get("options")][0]["line_id"]
    directive = Directive.objects.get(topic="pricing.check")
    assert directive.payload == {"session_key": session.session_key, "channel_code": "pos", "rev": session.rev, "check_code": "pricing"}

    assert run_checks() == ["done"]
    session = Session.objects.get(pk=session.pk)
    check = session.data["checks"]["pricing"]
    assert (check["rev"], check["status"], check["result"]) == (session.rev, "issues", {"lines": 3, "unpriced": [fish, optioned]})
    fish_issue, option_issue = session.data["issues"]
    assert fish_issue == {
        "id": f"pricing:price_missing:{fish}",
        "source": "pricing",
        "code": "price_missing",
        "severity": "blocking",
        "line_id": fish,
        "sku": "FISH",
        "message": "Fish of the day has no price.",
        # The English text's id and parameters, for screens in other languages (omniman.texts).
        "message_id": "%(name)s has no price.",
        "params": {"name": "Fish of the day"},
        "context": {"name": "Fish of the day", "missing_options": []},
        "actions": [
            {
                "id": "remove",
                "label": "Remove Fish of the day",
                "label_id": "Remove %(name)s",
                "params": {"name": "Fish of the day"},
                "ops": [{"op": "remove_line", "line_id": fish}],
            },
            # Only priced, active alternatives: not TUNA (no price), not COD (inactive).
            {
                "id": "replace:SALMON",
                "label": "Replace with Salmon",
                "label_id": "Replace with %(name)s",
                "params": {"name": "Salmon"},
                "ops": [{"op": "replace_sku", "line_id": fish, "sku": "SALMON", "name": "Salmon"}],
            },
        ],
    }
    assert option_issue["code"] == "price_missing" and option_issue["context"]["missing_options"] == ["TUNA"]
    assert [a["id"] for a in option_issue["actions"]] == ["remove", "remove_option:TUNA"]
    assert option_issue["actions"][1]["label"] == "Remove option Tuna"

    with pytest.raises(CommitError) as caught:
        commit(session)
    assert caught.value.code == "blocking_issues"


@pytest.mark.django_db(transaction=True)
def test_resolving_remove_then_committing(menu):
    pos = make_channel("pos", config=CHECKED)
    session = open_with(pos, {"sku": "BURGER"}, {"sku": "FISH"})
    with pytest.raises(CommitError) as caught:
        commit(session)
    assert caught.value.code == "missing_check"
    run_checks()
    session = Session.objects.get(pk=session.pk)
    fish = line(session, "FISH")["line_id"]

    session = ResolveService.resolve(session.session_key, "pos", issue_id=f"pricing:price_missing:{fish}", action_id="remove")
    assert [item["sku"] for item in session.lines] == ["BURGER"]
    assert session.data["issues"] == [] and session.data["checks"] == {}
    assert run_checks() == ["done"]
    session = Session.objects.get(pk=session.pk)
    assert session.data["checks"]["pricing"]["status"] == "ok" and session.data["issues"] == []
    result = commit(session)
    assert result["total_q"] == 2500 and Order.objects.get(ref=result["order_ref"]).items.count() == 1


@pytest.mark.django_db(transaction=True)
def test_resolving_replace_and_remove_option(menu):
    pos = make_channel("pos", config=CHECKED)
    session = open_with(pos, {"sku": "FISH", "qty": 2}, {"sku": "BURGER", "meta": {"options": ["CHEESE", "TUNA"]}})
    run_checks()
    session = Session.objects.get(pk=session.pk)
    fish, burger = line(session, "FISH")["line_id"], line(session, "BURGER")["line_id"]

    session = ResolveService.resolve(session.session_key, "pos", issue_id=f"pricing:price_missing:{fish}", action_id="replace:SALMON")
    salmon = line(session, "SALMON")
    assert (salmon["line_id"], salmon["qty"], salmon["unit_price_q"], salmon["meta"]) == (fish, "2", 5200, {})
    run_checks()
    session = Session.objects.get(pk=session.pk)
    session = ResolveService.resolve(
        session.session_key, "pos", issue_id=f"pricing:price_missing:{burger}", action_id="remove_option:TUNA"
    )
    assert line(session, "BURGER")["unit_price_q"] == 2800 and line(session, "BURGER")["meta"]["options"] == ["CHEESE"]
    run_checks()
    assert commit(Session.objects.get(pk=session.pk))["total_q"] == 2 * 5200 + 2800


@pytest.mark.django_db(transaction=True)
def test_the_check_is_idempotent(menu):
    pos = make_channel("pos", config=CHECKED)
    session = open_with(pos, {"sku": "FISH"}, {"sku": "GHOST"})
    directive = Directive.objects.get(topic="pricing.check")
    handler = registry.get_directive_handler("pricing.check")
    assert isinstance(handler, PricingCheckHandler)

    handler.handle(message=directive, ctx={"attempt": 1})
    first = Session.objects.get(pk=session.pk)
    handler.handle(message=directive, ctx={"attempt": 2})
    second = Session.objects.get(pk=session.pk)
    assert list(second.data["checks"]) == ["pricing"]
    assert len(second.data["issues"]) == 2
    assert second.data["issues"] == first.data["issues"]
    assert second.rev == first.rev == session.rev
    assert {k: v for k, v in second.data["checks"]["pricing"].items() if k != "checked_at"} == {
        k: v for k, v in first.data["checks"]["pricing"].items() if k != "checked_at"
    }


@pytest.mark.django_db(transaction=True)
def test_a_check_for_an_older_rev_writes_nothing(menu):
    pos = make_channel("pos", config=CHECKED)
    session = open_with(pos, {"sku": "FISH"})
    old = Directive.objects.get(topic="pricing.check")
    session = touch(session)
    state = DbState(session)
    registry.get_directive_handler("pricing.check").handle(message=old, ctx={"attempt": 1})
    state.assert_unchanged()
    assert run_checks() == ["done", "done"]  # the old one (a no-op) and the new one
    assert Session.objects.get(pk=session.pk).data["checks"]["pricing"]["rev"] == session.rev


@pytest.mark.django_db(transaction=True)
def test_a_check_for_a_committed_session_writes_nothing(menu):
    pos = make_channel("pos", config={**PRICED, "checks": {"pricing": {"directive_topic": "pricing.check"}}})
    session = open_with(pos, {"sku": "BURGER"})
    directive = Directive.objects.enqueue(
        "pricing.check", {"session_key": session.session_key, "channel_code": "pos", "rev": session.rev, "check_code": "pricing"}
    )
    commit(session)
    state = DbState(Session.objects.get(pk=session.pk))
    registry.get_directive_handler("pricing.check").handle(message=directive, ctx={"attempt": 1})
    state.assert_unchanged()


@pytest.mark.django_db(transaction=True)
def test_a_malformed_check_directive_fails_loudly(menu):
    directive = Directive.objects.enqueue("pricing.check", {"session_key": "SESS-X", "rev": 1})
    with pytest.raises(DirectiveError) as caught:
        registry.get_directive_handler("pricing.check").handle(message=directive, ctx={"attempt": 1})
    assert caught.value.code == "invalid_payload" and caught.value.context["fields"] == ["channel_code", "check_code"]
    bad_rev = Directive.objects.enqueue(
        "pricing.check", {"session_key": "SESS-X", "channel_code": "pos", "rev": "one", "check_code": "pricing"}
    )
    with pytest.raises(DirectiveError) as caught:
        registry.get_directive_handler("pricing.check").handle(message=bad_rev, ctx={"attempt": 1})
    assert caught.value.context["fields"] == ["rev"]
    assert run_checks() == ["retried", "retried"]


def test_the_app_registers_its_extensions():
    assert registry.get_directive_handler("pricing.check") is not None
    assert [v.code for v in registry.get_validators("commit") if v.code == "pricing.priced"] == ["pricing.priced"]
    orders = {m.code: m.order for m in registry.get_modifiers() if m.code.startswith("pricing.")}
    assert orders == {"pricing.item": 10, "pricing.line": 20}


def test_the_admin_refuses_a_negative_price_list_price_with_a_field_error(admin_client):
    form = {
        "code": "happy", "name": "Happy hour", "priority": 0, "is_active": "on",
        "items-TOTAL_FORMS": 1, "items-INITIAL_FORMS": 0, "items-MIN_NUM_FORMS": 0, "items-MAX_NUM_FORMS": 1000,
        "items-0-sku": "ESP", "items-0-price_q": "-5",
    }
    response = admin_client.post("/admin/omniman_pricing/pricelist/add/", form)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert [e.code for e in formset.forms[0].errors.as_data()["price_q"]] == ["min_value"]
    assert not PriceList.objects.exists() and not PriceListItem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_check_run_in_the_modifys_transaction_takes_the_session_it_holds(menu, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DISPATCH_ON_COMMIT": ["pricing.check"]}
    pos = make_channel("pos", config=CHECKED)
    session = open_with(pos, {"sku": "BURGER"})
    with CaptureQueriesContext(connection) as queries:
        changed = modify(session, {"op": "add_line", "sku": "FISH", "qty": 1})
    # The answer carries the check, written on the object the modify holds locked: no second read of the session.
    check = changed.data["checks"]["pricing"]
    fish = line(changed, "FISH")["line_id"]
    assert (check["rev"], check["status"], check["result"]) == (changed.rev, "issues", {"lines": 2, "unpriced": [fish]})
    assert Session.objects.get(pk=session.pk).data == changed.data
    assert Directive.objects.get(topic="pricing.check", payload__rev=changed.rev).status == "done"
    session_table = Session._meta.db_table
    sql = [query["sql"] for query in queries.captured_queries]
    assert sum(q.startswith("SELECT") and f'FROM "{session_table}"' in q for q in sql) == 1, sql  # the modify's lock
