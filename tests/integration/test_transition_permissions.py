"""Transitions are permissioned by the flow: a role × transition matrix over every channel flow of the demo.

The expected table is written here by hand (the rule in words: a manager and an
integration client make every move; the POS every move but a cancel; the
kitchen only the kitchen's moves — from new/confirmed/processing/ready to
another of them or to completed), and checked against ``OrderFlow.may_transition``
for every seeded channel and every move of its flow, then cell by cell through
``OrderService.transition(roles=…)``: an allowed cell moves the order, a refused
one raises ``forbidden_transition`` and writes nothing.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from omniman.exceptions import InvalidTransition
from omniman.models import Channel, Directive, Order, OrderEvent
from omniman.roles import INTEGRATION, KITCHEN, MANAGER, POS, ROLES
from omniman.services import OrderService
from tests.factories import DbState, create_order_at, make_channel

pytestmark = pytest.mark.django_db

KITCHEN_FROM = {"new", "confirmed", "processing", "ready"}
KITCHEN_TO = {"new", "confirmed", "processing", "ready", "completed"}


def expected(role: str, source: str, target: str) -> bool:
    if role in (MANAGER, INTEGRATION):
        return True
    if role == POS:
        return target != "cancelled"
    if role == KITCHEN:
        return source in KITCHEN_FROM and target in KITCHEN_TO
    return False


def moves(flow):
    return [(source, target) for source in flow.statuses for target in flow.allowed_from(source)]


DEMO = pytest.mark.contrib(
    "omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock",
    "omniman.contrib.payment", "omniman.contrib.refs", "omniman.contrib.notifications",
)


@pytest.fixture
def demo_channels(db):
    call_command("seed_demo", "--no-users", stdout=io.StringIO())
    channels = list(Channel.objects.order_by("display_order"))
    assert [c.code for c in channels] == ["counter", "tables", "web", "marketplace"]
    return channels


@DEMO
def test_the_matrix_over_every_demo_flow(demo_channels):
    cells = 0
    for channel in demo_channels:
        flow = channel.order_flow
        assert len(moves(flow)) == 14  # the default flow's moves
        for source, target in moves(flow):
            for role in ROLES:
                assert flow.may_transition({role}, source, target) == expected(role, source, target), (channel.code, role, source, target)
                cells += 1
            assert flow.may_transition(set(), source, target) is False  # no role, no move
            assert flow.may_transition({"cashier"}, source, target) is False  # an unknown group gives nothing
        assert not flow.may_transition({MANAGER}, "completed", "new")  # the flow's own rules come first
    assert cells == 4 * 14 * 4
    # The cells the issue names.
    web = demo_channels[2].order_flow
    assert not web.may_transition({KITCHEN}, "confirmed", "cancelled") and not web.may_transition({POS}, "new", "cancelled")
    assert web.may_transition({KITCHEN}, "confirmed", "processing") and web.may_transition({KITCHEN}, "processing", "ready")
    assert web.may_transition({KITCHEN}, "ready", "completed") and not web.may_transition({KITCHEN}, "ready", "dispatched")
    assert web.may_transition({POS}, "new", "confirmed") and web.may_transition({POS}, "ready", "completed")
    assert web.may_transition({POS, KITCHEN}, "ready", "dispatched")  # roles add up
    assert web.roles_for("new", "cancelled") == [INTEGRATION, MANAGER]


@DEMO
def test_the_matrix_through_the_service(demo_channels):
    """Each cell on a channel with the demo channel's flow (no checks, so orders are quick to make)."""
    for demo in demo_channels:
        twin = make_channel(f"twin-{demo.code}", config={"order_flow": demo.config["order_flow"]})
        for source, target in moves(twin.order_flow):
            for role in ROLES:
                try:
                    order = create_order_at(source, twin)
                except ValueError:
                    continue  # an order of this flow never rests in `source` (on_create moves it on)
                if expected(role, source, target):
                    moved = OrderService.transition(order.ref, target, actor=f"user:{role}", roles={role})
                    assert moved.status == target
                    continue
                state = DbState()
                with pytest.raises(InvalidTransition) as caught:
                    OrderService.transition(order.ref, target, actor=f"user:{role}", roles={role})
                assert caught.value.code == "forbidden_transition"
                assert caught.value.context["from"] == source and caught.value.context["to"] == target
                assert role not in caught.value.context["allowed_roles"]
                state.assert_unchanged()
                assert Order.objects.get(pk=order.pk).status == source


def test_a_move_the_flow_does_not_allow_is_invalid_before_it_is_forbidden():
    order = create_order_at("ready", make_channel())
    with pytest.raises(InvalidTransition) as caught:
        OrderService.transition(order.ref, "processing", roles={KITCHEN})
    assert caught.value.code == "invalid_transition"
    with pytest.raises(InvalidTransition) as caught:
        OrderService.transition(order.ref, "new", roles=set(), expected_status="confirmed")
    assert caught.value.code == "stale_status"


def test_the_system_is_not_checked_and_a_flow_can_say_otherwise():
    channel = make_channel(
        config={"order_flow": {"permissions": {"kitchen": [{"from": "*", "to": ["cancelled"]}], "pos": []}}}
    )
    order = create_order_at("confirmed", channel)
    assert channel.order_flow.may_transition({KITCHEN}, "confirmed", "cancelled")
    assert not channel.order_flow.may_transition({KITCHEN}, "confirmed", "ready")  # its own rule replaced the default
    assert not channel.order_flow.may_transition({POS}, "confirmed", "ready")  # [] : no move at all
    assert order.may_transition_to("cancelled", {KITCHEN}) and not order.may_transition_to("ready", {POS})
    OrderService.transition(order.ref, "cancelled", roles={KITCHEN})
    system = create_order_at("confirmed", channel)
    assert OrderService.transition(system.ref, "cancelled").status == "cancelled"  # roles=None: the system itself


# -- the API, the kitchen board, the admin ask the same rule -------------------------------


WEB_FLOW = {"on_enter": {"cancelled": ["payment.refund"]}}


@pytest.mark.parametrize(("role", "status"), [("kitchen", 403), ("pos", 403), ("manager", 200)])
def test_only_a_manager_cancels_through_the_api(role, status):
    from tests.integration.api.conftest import error_of, make_user, token_client

    client = token_client(make_user(role, role))
    order = create_order_at("confirmed", make_channel("web", config={"order_flow": WEB_FLOW}))
    state = DbState()
    response = client.post(f"/api/orders/{order.ref}/transition/", {"status": "cancelled"}, format="json")
    assert response.status_code == status
    refunds = Directive.objects.filter(topic="payment.refund", payload__order_ref=order.ref)
    if status == 403:
        assert error_of(response) == "forbidden_transition"
        assert response.json()["error"]["context"]["allowed_roles"] == ["integration", "manager"]
        state.assert_unchanged()
        assert Order.objects.get(pk=order.pk).status == "confirmed" and not refunds.exists()
    else:
        assert Order.objects.get(pk=order.pk).status == "cancelled" and refunds.count() == 1


def test_the_kitchen_makes_the_kitchens_moves_through_the_api():
    from tests.integration.api.conftest import error_of, make_user, token_client

    kitchen = token_client(make_user("cook", KITCHEN))
    order = create_order_at("ready", make_channel())
    refused = kitchen.post(f"/api/orders/{order.ref}/transition/", {"status": "dispatched"}, format="json")
    assert refused.status_code == 403 and error_of(refused) == "forbidden_transition"
    done = kitchen.post(f"/api/orders/{order.ref}/transition/", {"status": "completed"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "completed"


def test_the_board_offers_and_bumps_only_what_the_role_may(client):
    from tests.integration.test_kitchen import user_with

    channel = make_channel(config={"order_flow": {"permissions": {"kitchen": {"from": ["confirmed"], "to": ["processing"]}}}})
    confirmed, ready = create_order_at("confirmed", channel), create_order_at("ready", channel)
    client.force_login(user_with("kitchen"))
    expo = client.get("/kitchen/?station=expo").content.decode()
    assert "Hand out" not in expo  # ready → completed is not the kitchen's here: no button
    station = client.get("/kitchen/?station=kitchen").content.decode()
    assert station.count('class="btn bump"') == 1  # the confirmed order's items may start (confirmed → processing)
    client.post("/kitchen/bump/", {"order_ref": confirmed.ref, "expected_status": "queued", "station": "kitchen"}, HTTP_HX_REQUEST="true")
    assert Order.objects.get(pk=confirmed.pk).status == "processing"
    events = OrderEvent.objects.count()
    response = client.post("/kitchen/bump/", {"order_ref": ready.ref, "expected_status": "ready", "station": "expo"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "may not move this order" in response.content.decode()
    assert Order.objects.get(pk=ready.pk).status == "ready" and OrderEvent.objects.count() == events


def test_the_admin_offers_and_makes_only_what_the_flow_gives_the_manager(client):
    from tests.integration.test_admin_review import ORDERS, make_user

    channel = make_channel(config={"order_flow": {"permissions": {"manager": {"from": "*", "to": ["ready", "completed"]}}}})
    order = create_order_at("confirmed", channel)
    client.force_login(make_user("boss", groups=("manager",)))
    body = client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    assert 'value="ready"' in body and 'value="cancelled"' not in body and 'value="processing"' not in body
    events = OrderEvent.objects.count()
    response = client.post(f"{ORDERS}{order.pk}/transition/", {"status": "cancelled", "expected_status": "confirmed"}, follow=True)
    assert "Your role may not move order" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == "confirmed" and OrderEvent.objects.count() == events
    client.post(f"{ORDERS}{order.pk}/transition/", {"status": "ready", "expected_status": "confirmed"})
    assert Order.objects.get(pk=order.pk).status == "ready"
