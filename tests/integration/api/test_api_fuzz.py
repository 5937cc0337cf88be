"""Property-based fuzzing of every operation of the OpenAPI schema (schemathesis, every check), in process.

Authenticated as a manager (every operation is reachable); the database is the
demo's (``seed_demo``: catalog, channels, open sessions, orders in several
statuses, a marketplace order), so generated calls hit real rows. The driver and what
counts as a failure are in ``fuzzing.py`` (shared with ``benchmarks/fuzz_api.py``,
which runs the full budget of at least 10,000 requests).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import transaction

from tests.integration.api import fuzzing
from tests.integration.api.conftest import make_user

EXAMPLES = 15
OPERATIONS = fuzzing.operations()
RUNS = fuzzing.runs()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker) -> Iterator[dict[str, str]]:
    """The demo's rows, seeded once per module (per xdist process) in a transaction rolled back at its end.

    Each test runs inside it in a savepoint of its own (pytest-django's ``db``, as Django's
    ``TestCase.setUpTestData``), so every test starts from the same rows and its changes vanish
    with it: the same state as seeding for each test, without running ``seed_demo`` 115 times.
    """
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield fuzzing.seed_rows()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


@pytest.fixture
def rows(seeded, db) -> dict[str, str]:
    return dict(seeded)


@pytest.fixture
def manager_token(rows) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.create(user=make_user("fuzzer", "manager")).key


def test_every_path_is_fuzzed_with_every_check():
    # Counted from the schema (no constant to bump when an endpoint lands): every operation it has is run.
    counted = sum(len(methods) for methods in fuzzing.spec()["paths"].values())
    assert len(OPERATIONS) == counted and {(method, path) for method, path, _ in RUNS} == set(OPERATIONS)
    assert ("POST", "/api/channels/{code}/orders/") in OPERATIONS
    for action in ("park", "resume", "close-table"):
        assert ("POST", f"/api/sessions/{{key}}/{action}/") in OPERATIONS
    assert ("POST", "/api/sessions/{key}/modify/", "negative") in RUNS
    assert ("POST", "/api/orders/{ref}/transition/", "real-rows") in RUNS
    names = set(fuzzing.check_names())
    assert {"response_schema_conformance", "positive_data_acceptance", "negative_data_rejection"} <= names
    assert len(names) >= 14


# The rows come from seed_demo: the demo café's apps.
@pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock")
@pytest.mark.parametrize(("method", "path", "mode"), RUNS, ids=[f"{m} {p} {mode}" for m, p, mode in RUNS])
def test_the_api_conforms_to_its_schema(method, path, mode, manager_token, rows):
    with fuzzing.keep_connection():
        outcome = fuzzing.fuzz(method, path, mode, token=manager_token, rows=rows, examples=EXAMPLES)
    assert outcome.requests >= 1
    assert outcome.failures == [], "\n\n".join(outcome.failures[:3])
