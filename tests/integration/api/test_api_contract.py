"""The API contract, exactly: size limits, strict numbers, explicit filter errors, 201 for the creator only,
sessions read by key alone, ``channel_not_found`` wherever a channel is unknown, bodies as the schema says.

Every refusal asserts its code and that nothing was written.
"""

from __future__ import annotations

import io
import json

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from omniman.api.parsers import PayloadTooLarge, StrictJSONParser
from omniman.exceptions import ValidationError
from omniman.models import IdempotencyKey, Session
from omniman.services import ModifyService, SessionService
from tests.factories import DbState, create_session_at, make_channel
from tests.integration.api.conftest import error_of, make_user, token_client
from tests.threads import run_together

pytestmark = pytest.mark.django_db

SMALL = {"API_MAX_BODY_BYTES": 2048, "SESSION_DATA_MAX_BYTES": 1024}


def settings_with(**values):
    from django.conf import settings

    return override_settings(OMNIMAN={**settings.OMNIMAN, **values})


def modify(client, session, ops, **extra):
    return client.post(
        f"/api/sessions/{session.session_key}/modify/",
        {"channel_code": session.channel.code, "ops": ops, **extra},
        format="json",
    )


# -- sizes -------------------------------------------------------------------------------


def test_an_oversized_body_is_a_json_413_and_nothing_is_written(manager, channel):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    with settings_with(**SMALL):
        response = modify(manager, session, [{"op": "set_data", "path": "note", "value": "x" * 4000}])
        open_response = manager.post("/api/sessions/", {"channel_code": "shop", "data": {"x": "y" * 4000}}, format="json")
    for refused in (response, open_response):
        assert refused.status_code == 413 and error_of(refused) == "payload_too_large"
        assert refused.json()["error"]["context"] == {"max_bytes": 2048}
    state.assert_unchanged()


def test_the_default_cap_is_256_kb_and_ten_megabytes_get_json(manager, channel):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    response = modify(manager, session, [{"op": "set_data", "path": "note", "value": "x" * (10 * 1024 * 1024)}])
    assert response.status_code == 413 and error_of(response) == "payload_too_large"
    assert response.json()["error"]["context"] == {"max_bytes": 256 * 1024}
    state.assert_unchanged()


def test_the_parser_caps_a_body_without_a_declared_length():
    with settings_with(**SMALL):
        with pytest.raises(PayloadTooLarge) as err:
            StrictJSONParser().parse(io.BytesIO(b'{"a": "' + b"x" * 3000 + b'"}'), "application/json", {})
        assert err.value.get_codes() == "payload_too_large" and err.value.status_code == 413
        assert StrictJSONParser().parse(io.BytesIO(b'{"a": 1}'), "application/json", {}) == {"a": 1}


def test_session_data_has_a_cap_in_the_kernel(manager, channel):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    with settings_with(SESSION_DATA_MAX_BYTES=1024):
        with pytest.raises(ValidationError) as err:
            ModifyService.modify_session(session.session_key, "shop", [{"op": "set_data", "path": "big", "value": "é" * 600}])
        assert err.value.code == "data_too_large"
        assert err.value.context["max_bytes"] == 1024 and err.value.context["bytes"] > 1024
        # through the API: two set_data calls under the cap each, the second would pass it
        first = modify(manager, session, [{"op": "set_data", "path": "a", "value": "x" * 600}])
        assert first.status_code == 200
        grown = DbState(Session.objects.get(pk=session.pk))
        second = modify(manager, session, [{"op": "set_data", "path": "b", "value": "x" * 600}])
        assert second.status_code == 400 and error_of(second) == "data_too_large"
        grown.assert_unchanged()
        opened = manager.post("/api/sessions/", {"channel_code": "shop", "data": {"x": "y" * 1100}}, format="json")
        assert opened.status_code == 400 and error_of(opened) == "data_too_large"
    assert Session.objects.count() == state.counts["sessions"]


# -- idempotency key, numbers ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "   ", "\u3000"])
def test_an_empty_idempotency_key_is_missing_idempotency_key(manager, channel, key):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    response = manager.post(
        f"/api/sessions/{session.session_key}/commit/", {"channel_code": "shop", "idempotency_key": key}, format="json"
    )
    assert response.status_code == 400 and error_of(response) == "missing_idempotency_key"
    state.assert_unchanged()
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.parametrize("qty", ["1e3", "1E3", "\u0661", "1_0", " 1", "+1", ".5", "1.", "0x1", 1.5, 0.001, True])
def test_quantities_are_strict(manager, channel, qty):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    add = modify(manager, session, [{"op": "add_line", "sku": "A", "qty": qty, "unit_price_q": 100}])
    assert add.status_code == 400 and error_of(add) == "invalid_qty", add.json()
    line_id = session.lines[0]["line_id"]
    set_qty = modify(manager, session, [{"op": "set_qty", "line_id": line_id, "qty": qty}])
    assert set_qty.status_code == 400 and error_of(set_qty) == "invalid_qty"
    opened = manager.post("/api/sessions/", {"channel_code": "shop", "items": [{"sku": "A", "qty": qty}]}, format="json")
    assert opened.status_code == 400 and error_of(opened) == "invalid_qty"
    state.assert_unchanged()


@pytest.mark.parametrize("delta", ["1e3", "\u0661", "1_0", " 1", "--1", ".5", "1.", "0x1", "0", 0, 1.5, -0.5, 0.001, True])
def test_adjust_qty_steps_are_strict(manager, channel, delta):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    line_id = session.lines[0]["line_id"]
    response = modify(manager, session, [{"op": "adjust_qty", "line_id": line_id, "delta": delta}])
    assert response.status_code == 400 and error_of(response) == "invalid_qty", response.json()
    state.assert_unchanged()


@pytest.mark.parametrize("qty", ["2", "1.5", "0.001", "1000000", "1.500", 2, 2.0])
def test_plain_quantities_pass(manager, channel, qty):
    session = create_session_at(channel, lines=1)
    response = modify(manager, session, [{"op": "add_line", "sku": "A", "qty": qty, "unit_price_q": 100}])
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("price", ["100", "1e2", 100.0, 1.5, -1, True])
def test_prices_are_json_integers(manager, channel, price):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    response = modify(manager, session, [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": price}])
    assert response.status_code == 400 and error_of(response) == "invalid_price"
    state.assert_unchanged()


# -- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/orders/?updated_since=", "updated_since"),
        ("/api/orders/?status=", "status"),
        ("/api/orders/?channel_code=", "channel_code"),
        ("/api/sessions/?state=", "state"),
        ("/api/sessions/?handle_ref=", "handle_ref"),
        ("/api/orders/?page_size=0", "page_size"),
        ("/api/sessions/?page_size=abc", "page_size"),
        ("/api/channels/?page_size=-5", "page_size"),
    ],
)
def test_bad_or_empty_filters_are_400_invalid(manager, channel, url, field):
    response = manager.get(url)
    assert response.status_code == 400 and error_of(response) == "invalid"
    assert field in response.json()["error"]["context"]["fields"]


# -- 201 for the creator only -----------------------------------------------------------------


def test_only_the_caller_that_opened_a_session_gets_201(manager, channel):
    body = {"channel_code": "shop", "handle_type": "table", "handle_ref": "9"}
    first = manager.post("/api/sessions/", body, format="json")
    again = manager.post("/api/sessions/", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["session_key"] == again.json()["session_key"]
    assert SessionService.open_session("shop", handle_type="table", handle_ref="9").created is False
    assert SessionService.open_session("shop", handle_type="table", handle_ref="10").created is True


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_opens_of_one_new_handle_answer_201_once():
    make_channel("shop")
    tokens = [token_client(make_user(f"pos-{i}", "pos")) for i in range(8)]
    body = {"channel_code": "shop", "handle_type": "table", "handle_ref": "42"}
    results = run_together(lambda i: tokens[i].post("/api/sessions/", body, format="json"), count=len(tokens))
    statuses = sorted(response.status_code for _, response in results)
    assert statuses == [200] * (len(tokens) - 1) + [201]
    assert len({response.json()["session_key"] for _, response in results}) == 1
    assert Session.objects.filter(handle_ref="42").count() == 1


# -- channels -------------------------------------------------------------------------------------


def test_an_unknown_channel_is_channel_not_found_everywhere(manager, channel):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    key = session.session_key
    calls = [
        manager.post(f"/api/sessions/{key}/modify/", {"channel_code": "nowhere", "ops": [{"op": "set_data", "path": "a", "value": 1}]}, format="json"),
        manager.post(f"/api/sessions/{key}/commit/", {"channel_code": "nowhere", "idempotency_key": "k"}, format="json"),
        manager.post(f"/api/sessions/{key}/resolve/", {"channel_code": "nowhere", "issue_id": "i", "action_id": "a"}, format="json"),
        manager.get(f"/api/sessions/{key}/", {"channel_code": "nowhere"}),
        manager.post("/api/sessions/", {"channel_code": "nowhere"}, format="json"),
        manager.get("/api/channels/nowhere/"),
    ]
    for response in calls:
        assert response.status_code == 404 and error_of(response) == "channel_not_found", response.json()
    state.assert_unchanged()
    assert IdempotencyKey.objects.count() == 0


# -- the schema says what the body is -------------------------------------------------------------


def test_totals_are_described_as_they_are_sent(manager):
    make_channel("cafe", config={"service_charge_percent": "10"})
    opened = manager.post(
        "/api/sessions/", {"channel_code": "cafe", "items": [{"sku": "A", "qty": "2", "unit_price_q": 500}]}, format="json"
    )
    assert opened.status_code == 201
    totals = opened.json()["totals"]
    schema = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]["Totals"]
    assert set(schema["required"]) == {"items_q", "discount_q", "service_percent", "service_q", "total_q", "adjustments"}
    for name, value in totals.items():
        expected = schema["properties"][name]["type"]
        assert isinstance(value, {"integer": int, "string": str, "array": list}[expected]), (name, value)
    assert (totals["items_q"], totals["service_q"], totals["total_q"]) == (1000, 100, 1100)
    assert opened.json()["total_q"] == 1100  # one total (SPEC §10)
    [service] = totals["adjustments"]
    assert (service["kind"], service["percent"], service["amount_q"], service["auto"]) == ("service_charge", "10", 100, True)


def test_user_written_totals_do_not_break_the_body(manager, channel):
    session = create_session_at(channel, lines=1)
    response = modify(manager, session, [{"op": "set_data", "path": "totals", "value": "not an object"}])
    assert response.status_code == 200
    plain = {"items_q": 1000, "discount_q": 0, "service_percent": "0", "service_q": 0, "surcharge_q": 0, "void_q": 0,
             "write_off_q": 0, "adjustments_q": 0, "total_q": 1000, "currency": "BRL", "adjustments": []}
    assert response.json()["totals"] == plain
    response = modify(manager, session, [{"op": "set_data", "path": "totals", "value": {"total_q": "x", "currency": 5}}])
    assert response.json()["totals"] == plain


def test_a_json_body_is_json_for_every_failure(manager):
    raw = APIClient()
    raw.credentials(HTTP_AUTHORIZATION=manager._credentials["HTTP_AUTHORIZATION"])
    for response in (
        raw.post("/api/sessions/", data=b"{" * 10, content_type="application/json"),
        raw.generic("POST", "/api/sessions/", data=b"x" * (300 * 1024), content_type="application/json"),
    ):
        assert response["Content-Type"] == "application/json"
        assert set(json.loads(response.content)) == {"error"}


@pytest.mark.parametrize("bound", ["0001-01-01T00:04:01+13:21", "9999-12-31T23:59:59-10:00"])
def test_a_date_time_bound_at_the_edge_of_the_calendar_is_a_bound(manager, channel, bound):
    for name in ("updated_since", "created_after", "created_before"):
        response = manager.get("/api/orders/", {name: bound})
        assert response.status_code == 200, (name, response.json())
