"""Property-based fuzzing of every operation of the OpenAPI schema (schemathesis), in process over WSGI.

Authenticated as a manager (every operation is reachable); the database holds
a channel, an open session and an order so some generated calls hit real
rows. Each operation gets valid (positive) and invalid (negative) requests, and
valid requests addressed to those real rows (``real-rows``); for
every one: no 5xx, a documented status code and content type, and a body that
matches the documented schema (errors included).

The operations are driven with Hypothesis directly (``operation.as_strategy()``):
schemathesis' own pytest plugin does not run under pytest 9 yet.
"""

from __future__ import annotations

from functools import cache

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from omniman.services import ExternalOrderService
from tests.factories import create_order_at, create_session_at, make_channel
from tests.integration.api.conftest import MARKETPLACE_CONFIG, make_user

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 20

SPEC = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = sorted((method.upper(), path) for path, methods in SPEC["paths"].items() for method in methods)


def _runs() -> list[tuple[str, str, str]]:
    """(method, path, mode) for every operation: valid requests, invalid ones where there is input to
    spoil (query parameters or a body), valid ones on real rows where a path parameter can address them."""
    runs = []
    for method, path in OPERATIONS:
        spec = SPEC["paths"][path][method.lower()]
        places = {parameter["in"] for parameter in spec.get("parameters", [])}
        runs.append((method, path, "positive"))
        if "query" in places or "requestBody" in spec:
            runs.append((method, path, "negative"))
        if "path" in places:
            runs.append((method, path, "real-rows"))
    return runs


RUNS = _runs()


@cache
def api_schema():
    return schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())


@pytest.fixture
def rows(db) -> dict[str, str]:
    """Real rows, and the path parameters that address them."""
    shop = make_channel("shop")
    make_channel("marketplace", pricing_policy="external", edit_policy="locked", config=MARKETPLACE_CONFIG)
    session = create_session_at(shop, lines=2, handle_type="table", handle_ref="1")
    order = create_order_at("confirmed", shop)
    ExternalOrderService.ingest("marketplace", "MKT-1", items=[{"sku": "A", "qty": "1", "unit_price_q": 100}])
    return {"code": "marketplace", "key": session.session_key, "ref": order.ref, "external_id": "MKT-1"}


@pytest.fixture
def keep_connection():
    """The WSGI app closes the database connection after each request; the test's transaction needs it open.

    (Django's own test client does the same: ``close_old_connections`` is not run around its requests.)
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def manager_token(rows, keep_connection) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=make_user("fuzzer", "manager")).key


def test_every_path_is_fuzzed():
    assert len(OPERATIONS) == 17 and ("POST", "/api/channels/{code}/orders/") in OPERATIONS
    assert ("POST", "/api/sessions/{key}/modify/", "negative") in RUNS
    assert ("POST", "/api/orders/{ref}/transition/", "real-rows") in RUNS


@pytest.mark.parametrize(("method", "path", "mode"), RUNS, ids=[f"{m} {p} {mode}" for m, p, mode in RUNS])
def test_the_api_conforms_to_its_schema(method, path, mode, manager_token, rows):
    operation = api_schema()[path][method]
    names = [parameter.name for parameter in operation.path_parameters]
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    fixed = {name: rows[name] for name in names} if mode == "real-rows" else None
    auth = {"Authorization": f"Token {manager_token}"}

    @given(case=operation.as_strategy(generation_mode=generation, path_parameters=fixed))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
    def fuzz(case):
        case.call_and_validate(headers=auth, checks=CHECKS)

    fuzz()
