"""Per-station kitchen items: created with the order, bumped per station, the order following; undo, voids, holds, 86."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone

from omniman.exceptions import OmnimanError
from omniman.flow import DEFAULT_ORDER_FLOW
from omniman.models import KitchenItem, Order, OrderEvent, SoldOut
from omniman.services import KitchenService, ModifyService, OrderService, SessionService, sold_out_skus
from tests.factories import commit, make_channel

pytestmark = pytest.mark.django_db
KITCHEN = ["kitchen"]


def order_with(channel=None, lines=(("BURGER", "kitchen"), ("LEMONADE", "bar")), *, hold=(), table="31"):
    channel = channel or make_channel()
    session = SessionService.open_session(channel.code, handle_type="table", handle_ref=table)
    ops = []
    for sku, station in lines:
        meta = {"station": station} if station else {}
        if sku in hold:
            meta["hold"] = True
        ops.append({"op": "add_line", "sku": sku, "qty": "1", "unit_price_q": 500, "name": sku.title(), "meta": meta})
    session = ModifyService.modify_session(session.session_key, channel.code, ops)
    return Order.objects.get(ref=commit(session)["order_ref"])


def items_of(order):
    return {item.item.sku: item for item in KitchenItem.objects.filter(order=order).select_related("item")}


def code_of(call):
    with pytest.raises(OmnimanError) as info:
        call()
    return info.value.code


def test_each_line_gets_a_kitchen_item_at_its_station_with_the_order():
    order = order_with(lines=(("BURGER", "kitchen"), ("LEMONADE", "bar"), ("CAKE", "pastry")), hold=("CAKE",))
    items = items_of(order)
    assert {sku: (i.station, i.status, i.held) for sku, i in items.items()} == {
        "BURGER": ("kitchen", "queued", False),
        "LEMONADE": ("bar", "queued", False),
        "CAKE": ("pastry", "queued", True),
    }


def test_a_station_bumps_only_its_items_and_the_order_follows_when_every_station_is_done():
    order = order_with()
    bar = KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued", actor="user:bar", roles=KITCHEN)
    assert [i.item.sku for i in bar.items] == ["LEMONADE"]
    items = items_of(order)
    assert items["LEMONADE"].status == "cooking" and items["BURGER"].status == "queued"
    assert Order.objects.get(pk=order.pk).status == "new"  # the burger is not started: nothing follows
    KitchenService.bump(order_ref=order.ref, station="bar", expected_status="cooking", actor="user:bar", roles=KITCHEN)
    assert items_of(order)["LEMONADE"].status == "ready" and items_of(order)["BURGER"].status == "queued"
    assert Order.objects.get(pk=order.pk).status == "new"
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="queued", actor="user:k", roles=KITCHEN)
    assert Order.objects.get(pk=order.pk).status == "processing"  # least advanced item cooking: new → confirmed → processing
    result = KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="cooking", actor="user:k", roles=KITCHEN)
    assert result.order.status == "ready" and Order.objects.get(pk=order.pk).status == "ready"
    # The stations' work ends at ready: the expo hands out (ready → served), the order goes to its done status.
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="ready", roles=KITCHEN)) == "invalid_transition"
    served = KitchenService.bump(order_ref=order.ref, expected_status="ready", actor="user:expo", roles=KITCHEN)
    assert {i.status for i in served.items} == {"served"} and served.order.status == "completed"
    types = list(OrderEvent.objects.filter(order=order).values_list("type", flat=True))
    assert types.count("kitchen.bumped") == 5
    moves = [e.payload for e in OrderEvent.objects.filter(order=order, type="status_changed")]
    assert [(m["from"], m["to"]) for m in moves] == [("new", "confirmed"), ("confirmed", "processing"), ("processing", "ready"), ("ready", "completed")]


def test_a_late_bump_is_stale_and_changes_nothing():
    order = order_with()
    KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued", roles=KITCHEN)
    before = {i.pk: (i.status, i.rev) for i in KitchenItem.objects.filter(order=order)}
    events = OrderEvent.objects.filter(order=order).count()
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued", roles=KITCHEN)) == "stale_status"
    lemonade = items_of(order)["LEMONADE"]
    assert code_of(lambda: KitchenService.bump(item_ids=[lemonade.pk], station="bar", expected_status="queued", roles=KITCHEN)) == "stale_status"
    assert {i.pk: (i.status, i.rev) for i in KitchenItem.objects.filter(order=order)} == before
    assert OrderEvent.objects.filter(order=order).count() == events


def test_handing_out_before_every_station_is_done_is_refused():
    order = order_with()
    KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued")
    KitchenService.bump(order_ref=order.ref, station="bar", expected_status="cooking")
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, expected_status="ready")) == "not_ready"
    assert items_of(order)["LEMONADE"].status == "ready"


def test_channel_policy_keeps_unpaid_orders_off_the_kitchen():
    web = make_channel(config={"kitchen_flow": {"admit_statuses": ["confirmed", "processing", "ready"]}})
    order = order_with(web)
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued")) == "not_in_kitchen"
    assert items_of(order)["LEMONADE"].status == "queued"
    OrderService.transition(order.ref, "confirmed")
    KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued")
    assert items_of(order)["LEMONADE"].status == "cooking"


def test_a_bump_whose_order_move_the_role_may_not_make_is_forbidden_and_changes_nothing():
    channel = make_channel(config={"order_flow": {"permissions": {"kitchen": [{"from": ["new"], "to": ["confirmed"]}]}}})
    order = order_with(channel, lines=(("BURGER", "kitchen"),))
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="queued", roles=KITCHEN)) == "forbidden_transition"
    assert items_of(order)["BURGER"].status == "queued" and Order.objects.get(pk=order.pk).status == "new"


def test_undo_restores_the_previous_status_stale_safe_and_in_time():
    channel = make_channel(config={"order_flow": {"transitions": {**DEFAULT_ORDER_FLOW["transitions"], "ready": ["processing", "completed"]}}})
    order = order_with(channel, lines=(("BURGER", "kitchen"),))
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="queued")
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="cooking")
    assert Order.objects.get(pk=order.pk).status == "ready"
    assert code_of(lambda: KitchenService.undo(order_ref=order.ref, station="kitchen", expected_status="cooking")) == "stale_status"
    result = KitchenService.undo(order_ref=order.ref, station="kitchen", expected_status="ready", actor="user:k")
    assert result.items[0].status == "cooking" and result.order.status == "processing"  # the flow allows going back
    # One level: the undone item has no bump left to undo.
    assert code_of(lambda: KitchenService.undo(order_ref=order.ref, station="kitchen", expected_status="cooking")) == "undo_expired"
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="cooking")
    KitchenItem.objects.filter(order=order).update(moved_at=timezone.now() - timedelta(minutes=16))
    assert code_of(lambda: KitchenService.undo(order_ref=order.ref, station="kitchen", expected_status="ready")) == "undo_expired"
    assert items_of(order)["BURGER"].status == "ready"
    KitchenService.bump(order_ref=order.ref, expected_status="ready")
    assert code_of(lambda: KitchenService.undo(order_ref=order.ref, expected_status="served")) == "not_in_kitchen"


def test_undo_where_the_flow_cannot_go_back_keeps_the_order_and_gates_the_hand_out():
    order = order_with(lines=(("BURGER", "kitchen"),))
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="queued")
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="cooking")
    result = KitchenService.undo(order_ref=order.ref, station="kitchen", expected_status="ready")
    assert result.items[0].status == "cooking" and result.order.status == "ready"
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, expected_status="ready")) == "stale_status"
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="cooking")
    assert KitchenService.bump(order_ref=order.ref, expected_status="ready").order.status == "completed"


def test_a_held_item_waits_until_fired_and_is_not_bumpable():
    order = order_with(lines=(("BURGER", "kitchen"), ("CAKE", "pastry")), hold=("CAKE",))
    cake = items_of(order)["CAKE"]
    assert code_of(lambda: KitchenService.bump(item_ids=[cake.pk], station="pastry", expected_status="queued")) == "item_held"
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="pastry", expected_status="queued")) == "stale_status"
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="queued")
    KitchenService.bump(order_ref=order.ref, station="kitchen", expected_status="cooking")
    assert Order.objects.get(pk=order.pk).status == "ready"  # the held dessert does not count yet
    fired = KitchenService.fire(order.ref, line_ids=[cake.line_id], actor="user:pos")
    assert [i.held for i in fired.items] == [False]
    assert OrderEvent.objects.filter(order=order, type="kitchen.fired").count() == 1
    KitchenService.bump(order_ref=order.ref, station="pastry", expected_status="queued")
    assert items_of(order)["CAKE"].status == "cooking"
    assert code_of(lambda: KitchenService.fire(order.ref, line_ids=["nope"])) == "not_found"


def test_an_item_voided_event_marks_the_item_until_acknowledged_and_the_order_follows():
    order = order_with()
    KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued")
    KitchenService.bump(order_ref=order.ref, station="bar", expected_status="cooking")
    burger = items_of(order)["BURGER"]
    # What BillService.void_item writes (issue #15): the kitchen reads it from the event.
    Order.objects.get(pk=order.pk).emit_event("item_voided", actor="user:boss", payload={"line_id": burger.line_id, "qty": "1", "reason": "wrong"})
    burger = items_of(order)["BURGER"]
    assert burger.is_voided and burger.void_pending and burger.void_reason == "wrong"
    assert Order.objects.get(pk=order.pk).status == "ready"  # the only live item (lemonade) is ready
    KitchenService.acknowledge_void(item_ids=[burger.pk], actor="user:k")
    assert not items_of(order)["BURGER"].void_pending


def test_a_cancelled_order_voids_its_items():
    order = order_with()
    OrderService.transition(order.ref, "cancelled", reason="customer left")
    assert all(i.is_voided and i.void_pending for i in items_of(order).values())
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued")) == "not_in_kitchen"


def test_eighty_six_refuses_the_sku_and_back_on_allows_it():
    channel = make_channel()
    session = SessionService.open_session(channel.code)
    KitchenService.set_sold_out("CROISSANT", True, actor="user:k")
    assert sold_out_skus() == {"CROISSANT"}
    op = [{"op": "add_line", "sku": "CROISSANT", "qty": "1", "unit_price_q": 300}]
    assert code_of(lambda: ModifyService.modify_session(session.session_key, channel.code, op)) == "sold_out"
    session.refresh_from_db()
    assert session.rev == 0 and session.items == []
    KitchenService.set_sold_out("CROISSANT", False, actor="user:k")
    assert sold_out_skus() == set()
    assert ModifyService.modify_session(session.session_key, channel.code, op).items[0]["sku"] == "CROISSANT"
    assert SoldOut.objects.get().sold_out is False


def test_the_channels_kitchen_flow_is_data_its_own_statuses_drive_the_items_and_the_order():
    """A bar that only pours: queued → poured → collected; poured is the station's end and the order's ready."""
    flow = {
        "statuses": ["queued", "poured", "collected"],
        "station_done": "poured",
        "order_statuses": {"poured": "ready", "collected": "completed"},
    }
    order = order_with(make_channel(config={"kitchen_flow": flow}), lines=(("BEER", "bar"),))
    assert items_of(order)["BEER"].status == "queued"
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="bar", expected_status="cooking")) == "stale_status"
    poured = KitchenService.bump(order_ref=order.ref, station="bar", expected_status="queued", actor="user:bar")
    assert [i.status for i in poured.items] == ["poured"] and poured.order.status == "ready"
    assert code_of(lambda: KitchenService.bump(order_ref=order.ref, station="bar", expected_status="poured")) == "invalid_transition"
    collected = KitchenService.bump(order_ref=order.ref, expected_status="poured", actor="user:expo")
    assert [i.status for i in collected.items] == ["collected"] and collected.order.status == "completed"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_stations_bumping_one_order_at_once_16_times():
    """Burger (kitchen) and lemonade (bar) bumped at the same instant, queued → cooking → ready, 16 orders over."""
    for round_ in range(16):
        order = order_with(table=str(100 + round_))
        for expected in ("queued", "cooking"):
            barrier = threading.Barrier(2)
            errors = []

            def bump(station):
                try:
                    barrier.wait(timeout=10)
                    KitchenService.bump(order_ref=order.ref, station=station, expected_status=expected, actor=f"user:{station}", roles=KITCHEN)
                except Exception as exc:  # noqa: BLE001 - reported below
                    errors.append(repr(exc))
                finally:
                    connections.close_all()

            threads = [threading.Thread(target=bump, args=(s,)) for s in ("kitchen", "bar")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            assert not errors, errors
            expected_order = "processing" if expected == "queued" else "ready"
            assert Order.objects.get(pk=order.pk).status == expected_order
        bumps = OrderEvent.objects.filter(order=order, type="kitchen.bumped")
        assert bumps.count() == 4
        per_item = {}
        for event in bumps:
            for pk in event.payload["items"]:
                per_item[pk] = per_item.get(pk, 0) + 1
        assert sorted(per_item.values()) == [2, 2]  # each item moved once per step
        assert {i.status for i in KitchenItem.objects.filter(order=order)} == {"ready"}
        steps = [(e.payload["from"], e.payload["to"]) for e in OrderEvent.objects.filter(order=order, type="status_changed")]
        assert steps == [("new", "confirmed"), ("confirmed", "processing"), ("processing", "ready")]
