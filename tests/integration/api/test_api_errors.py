"""One error format for everything, never a 500 on bad input; auth, CSRF, the public schema and docs page."""

from __future__ import annotations

import pytest
from django.test import override_settings
from rest_framework import exceptions
from rest_framework.test import APIClient

from omniman.api.exceptions import exception_handler
from omniman.exceptions import http_status as status_for
from omniman.exceptions import CommitError, InvalidTransition, OmnimanError, SessionError, ValidationError
from tests.factories import DbState, create_session_at
from tests.integration.api.conftest import error_of, make_user

pytestmark = pytest.mark.django_db


def raw(client, url, body: bytes | str, content_type="application/json"):
    return client.generic("POST", url, body, content_type=content_type)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"not json",
        b'{"channel_code": "shop", "ops": [',
        b"[" * 100_000,
        '{"channel_code": "shop", "ops": [{"op": "add_line", "sku": "\\u0000", "qty": 1}]}',
        '{"channel_code": "shop", "ops": [{"op": "set_data", "path": "x", "value": "\\ud800"}]}',
        '{"channel_code": "shop", "ops": [{"op": "set_data", "path": "x", "value": NaN}]}',
        '{"channel_code": "shop", "ops": [{"op": "set_data", "path": "x", "value": 1e400}]}',
        '{"channel_code": "shop", "ops": [{"op": "set_data", "path": "x", "value": ' + "[" * 40 + "]" * 40 + "}]}",
    ],
    ids=["truncated", "text", "unclosed", "deep", "nul", "surrogate", "nan", "inf", "nested"],
)
def test_malformed_json_is_a_400_parse_error(manager, channel, body):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    response = raw(manager, f"/api/sessions/{session.session_key}/modify/", body)
    assert response.status_code == 400 and error_of(response) == "parse_error"
    state.assert_unchanged()


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        5,
        {"channel_code": ["shop"], "ops": [{"op": "add_line"}]},
        {"channel_code": "shop", "ops": [1, 2]},
        {"channel_code": "shop", "ops": [{"op": None}]},
        {"channel_code": "shop", "ops": [{"op": ["add_line"]}]},
        {"channel_code": "shop", "ops": [{"op": "add_line", "sku": {"a": 1}, "qty": 1}]},
        {"channel_code": "shop", "ops": [{"op": "add_line", "sku": "X", "qty": True}]},
        {"channel_code": "shop", "ops": [{"op": "add_line", "sku": "X", "qty": 1, "unit_price_q": 2**70}]},
        {"channel_code": "shop", "ops": [{"op": "add_line", "sku": "X", "qty": "9" * 400}]},
        {"channel_code": "shop", "ops": [{"op": "set_qty", "line_id": 12, "qty": 1}]},
        {"channel_code": "shop", "ops": [{"op": "set_data", "path": 7, "value": 1}]},
        {"channel_code": "shop", "ops": [{"op": "add_line", "sku": "X", "qty": 1, "meta": []}]},
        {"channel_code": "shop", "ops": [{"op": "explode"}] * 500},
        {"channel_code": "shop", "ops": [{"op": "add_line", "sku": "X", "qty": 1}], "expected_rev": -1},
        {"channel_code": "shop", "ops": [{"op": "add_line", "sku": "X", "qty": 1}], "expected_rev": 1.5},
    ],
)
def test_wrong_types_and_huge_numbers_are_400_with_a_code(manager, channel, body):
    session = create_session_at(channel, lines=1)
    state = DbState(session)
    response = manager.post(f"/api/sessions/{session.session_key}/modify/", body, format="json")
    assert response.status_code == 400, response.content
    assert error_of(response)
    state.assert_unchanged()


def test_query_parameters_with_nul_or_garbage_are_400(manager, channel):
    for params in ({"channel_code": "sh\x00op"}, {"handle_ref": "a\x00"}, {"state": "\x00"}):
        response = manager.get("/api/sessions/", params)
        assert response.status_code == 400 and error_of(response) == "invalid"
    for params in ({"status": "\x00"}, {"updated_since": "\x00"}, {"created_before": "2026-13-45"}):
        response = manager.get("/api/orders/", params)
        assert response.status_code == 400 and error_of(response) == "invalid"
    assert manager.get("/api/orders/", {"page_size": "-5"}).status_code == 200
    assert manager.get("/api/orders/", {"page": "x"}).status_code == 404


def test_paths_with_control_characters_never_reach_the_database(manager):
    for path in ("/api/sessions/%00/", "/api/orders/a%00b/", "/api/orders/%0A/transition/"):
        response = manager.get(path)
        assert response.status_code == 404 and error_of(response) == "not_found"


def test_unknown_paths_methods_and_media_types(clients, channel):
    manager = clients["manager"]
    unknown = manager.get("/api/nothing-here/")
    assert unknown.status_code == 404 and error_of(unknown) == "not_found"
    anonymous = clients["anonymous"].get("/api/nothing-here/")
    assert anonymous.status_code == 401 and error_of(anonymous) == "not_authenticated"
    method = manager.delete("/api/orders/")
    assert method.status_code == 405 and error_of(method) == "method_not_allowed"
    assert method.json()["error"]["context"] == {"method": "DELETE"}
    form = manager.post("/api/sessions/", {"channel_code": "shop"})  # multipart
    assert form.status_code == 415 and error_of(form) == "unsupported_media_type"


def test_the_root_requires_authentication_and_lists_the_collections(clients):
    assert error_of(clients["anonymous"].get("/api/")) == "not_authenticated"
    body = clients["nobody"].get("/api/").json()
    assert set(body) == {"channels", "sessions", "orders", "schema", "docs"}


def test_a_bad_token_is_401(channel):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nope")
    response = client.get("/api/orders/")
    assert response.status_code == 401 and error_of(response) == "authentication_failed"


def test_session_auth_enforces_csrf_and_records_the_user(channel):
    user = make_user("ana", "pos")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/sessions/").status_code == 200
    state = DbState()
    refused = client.post("/api/sessions/", {"channel_code": "shop"}, format="json")
    assert refused.status_code == 403 and error_of(refused) == "permission_denied"
    assert "CSRF" in refused.json()["error"]["message"]
    state.assert_unchanged()
    client.get("/accounts/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    session = client.post("/api/sessions/", {"channel_code": "shop", "items": [{"sku": "A", "qty": 1, "unit_price_q": 5}]}, format="json", HTTP_X_CSRFTOKEN=token)
    assert session.status_code == 201
    key = session.json()["session_key"]
    committed = client.post(
        f"/api/sessions/{key}/commit/", {"channel_code": "shop", "idempotency_key": "k"}, format="json", HTTP_X_CSRFTOKEN=token
    )
    assert committed.status_code == 201
    from omniman.models import OrderEvent

    assert OrderEvent.objects.get(type="created").actor == "user:ana"


def test_schema_and_docs_are_public_and_self_hosted(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    spec = schema.json()
    assert spec["openapi"].startswith("3.")
    paths = spec["paths"]
    for path in (
        "/api/channels/", "/api/channels/{code}/", "/api/channels/{code}/orders/",
        "/api/channels/{code}/orders/{external_id}/status/", "/api/sessions/", "/api/sessions/{key}/",
        "/api/sessions/{key}/modify/", "/api/sessions/{key}/commit/", "/api/sessions/{key}/resolve/",
        "/api/orders/", "/api/orders/{ref}/", "/api/orders/{ref}/transition/",
    ):
        assert path in paths, path
    commit = paths["/api/sessions/{key}/commit/"]["post"]
    assert {"200", "201", "400", "401", "403", "404", "409"} <= set(commit["responses"])
    assert commit["responses"]["409"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert "ErrorDetail" in spec["components"]["schemas"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/" in html
    assert "<style" not in html and "<script>" not in html  # nothing inline: it runs under a strict CSP
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and b"/api/schema/" in script.content


def test_the_status_mapping_follows_the_spec():
    assert status_for(ValidationError("invalid_qty")) == 400
    assert status_for(InvalidTransition("invalid_transition")) == 400
    assert status_for(SessionError("not_found")) == 404
    assert status_for(SessionError("channel_not_found")) == 404
    for code in ("stale_rev", "stale_status", "stale_check", "blocking_issues", "already_committed", "in_progress", "locked", "conflict"):
        assert status_for(CommitError(code)) == 409, code
    assert status_for(OmnimanError("pipeline_violation")) == 500


def test_throttling_keeps_the_format_and_says_when_to_retry():
    response = exception_handler(exceptions.Throttled(wait=12), {})
    assert response.status_code == 429
    assert response.data == {"error": {"code": "throttled", "message": response.data["error"]["message"], "context": {"wait": 12}}}
    assert response["Retry-After"] == "12"
    assert exception_handler(ValueError("boom"), {}) is None


@override_settings(DEBUG=False)
def test_a_kernel_error_in_a_view_never_leaks_a_traceback(manager, channel):
    session = create_session_at(channel, lines=0)
    response = manager.post(f"/api/sessions/{session.session_key}/commit/", {"channel_code": "shop", "idempotency_key": "x" * 255}, format="json")
    assert response.status_code == 409 and error_of(response) == "empty_session"
