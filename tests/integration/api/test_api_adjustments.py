"""``POST /api/sessions/<key>/discounts/`` and ``DELETE /api/sessions/<key>/adjustments/<id>/``."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from drf_spectacular.generators import SchemaGenerator

from omniman import approvals
from omniman.models import Order, Session
from omniman.services import ModifyService
from tests.factories import DbState, commit, create_session_at, make_channel
from tests.integration.api.conftest import error_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def cafe(db):
    return make_channel("cafe", config={"service_charge_percent": 10})


@pytest.fixture
def tab(cafe):
    session = create_session_at(cafe, lines=0)
    return ModifyService.modify_session(
        session.session_key, "cafe", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1000}, {"op": "add_line", "sku": "B", "qty": 2, "unit_price_q": 1300}]
    )


def discount(client, session, **body):
    body = {"channel_code": "cafe", "reason": "regular", **body}
    return client.post(f"/api/sessions/{session.session_key}/discounts/", body, format="json")


def remove(client, session, adjustment_id, **query):
    query = {"channel_code": "cafe", **query}
    return client.delete(f"/api/sessions/{session.session_key}/adjustments/{adjustment_id}/", query, QUERY_STRING="&".join(f"{k}={v}" for k, v in query.items()))


def test_a_discount_answers_the_session_with_its_totals(pos, tab):
    response = discount(pos, tab, percent="10", expected_rev=tab.rev)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["rev"] == tab.rev + 1 and body["total_q"] == 3240 + 324
    totals = body["totals"]
    assert (totals["items_q"], totals["discount_q"], totals["service_q"], totals["total_q"]) == (3600, 360, 324, 3564)
    added = next(a for a in totals["adjustments"] if a["kind"] == "discount")
    assert added["actor"] == "token:pos" and added["reason"] == "regular" and added["amount_q"] == -360
    # The order carries it; its API body too.
    order_ref = commit(Session.objects.get(pk=tab.pk))["order_ref"]
    order = pos.get(f"/api/orders/{order_ref}/").json()
    assert order["total_q"] == 3564 and order["totals"]["discount_q"] == 360
    assert {e["type"] for e in order["events"]} >= {"adjustment.applied"}


def test_a_line_discount_by_amount(pos, tab):
    response = discount(pos, tab, line_id=tab.lines[0]["line_id"], amount_q=100)
    assert response.status_code == 201 and response.json()["totals"]["discount_q"] == 100


@pytest.mark.parametrize(
    "body,status,code",
    [
        ({"percent": "101"}, 400, "invalid_discount"),
        ({"percent": 150}, 400, "invalid_discount"),
        ({"amount_q": -10}, 400, "invalid_discount"),
        ({"percent": "5", "amount_q": 5}, 400, "invalid_discount"),
        ({"percent": "5", "reason": ""}, 400, "reason_required"),
        ({"percent": "5", "line_id": "nope"}, 400, "line_not_found"),
        ({"percent": "5", "expected_rev": 0}, 409, "stale_rev"),
        ({"percent": "30"}, 403, "approval_required"),
        ({"percent": "30", "approved_by": "max", "approval_pin": "0000"}, 403, "approval_failed"),
        ({"percent": "5", "channel_code": "nope"}, 404, "channel_not_found"),
        ({"percent": True}, 400, "invalid"),
    ],
)
def test_refusals_write_nothing(pos, tab, body, status, code):
    approvals.set_pin(manager_user(), "4321")
    state = DbState(tab)
    response = discount(pos, tab, **body)
    assert response.status_code == status and error_of(response) == code, response.json()
    state.assert_unchanged()


def manager_user():
    from django.contrib.auth.models import Group

    user = get_user_model().objects.create_user(username="max")
    user.groups.add(Group.objects.get_or_create(name="manager")[0])
    return user


def test_a_manager_pin_approves_a_large_discount(pos, tab):
    approvals.set_pin(manager_user(), "4321")
    response = discount(pos, tab, percent="30", approved_by="max", approval_pin="4321")
    assert response.status_code == 201, response.json()
    added = next(a for a in response.json()["totals"]["adjustments"] if a["kind"] == "discount")
    assert added["approved_by"] == "max" and added["actor"] == "token:pos"


def test_a_manager_needs_no_pin(manager, tab):
    response = discount(manager, tab, percent="30")
    assert response.status_code == 201


def test_remove_a_discount(pos, tab):
    added = discount(pos, tab, percent="5").json()
    adjustment_id = next(a["id"] for a in added["totals"]["adjustments"] if a["kind"] == "discount")
    session = Session.objects.get(pk=tab.pk)
    response = remove(pos, session, adjustment_id, expected_rev=session.rev)
    assert response.status_code == 200, response.json()
    assert response.json()["total_q"] == 3960 and response.json()["rev"] == session.rev + 1
    state = DbState(Session.objects.get(pk=tab.pk))
    response = remove(pos, session, adjustment_id)
    assert response.status_code == 404 and error_of(response) == "adjustment_not_found"
    service_id = response and Session.objects.get(pk=tab.pk).adjustments[0]["id"]
    response = remove(pos, session, service_id)
    assert response.status_code == 400 and error_of(response) == "invalid_adjustment"
    state.assert_unchanged()


def test_kitchen_and_anonymous_may_not(clients, tab):
    assert discount(clients["kitchen"], tab, percent="5").status_code == 403
    assert discount(clients["anonymous"], tab, percent="5").status_code in (401, 403)


def test_the_schema_lists_the_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "post" in schema["paths"]["/api/sessions/{key}/discounts/"]
    assert "delete" in schema["paths"]["/api/sessions/{key}/adjustments/{adjustment_id}/"]
    assert "Adjustment" in schema["components"]["schemas"]
