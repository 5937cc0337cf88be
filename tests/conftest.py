"""Shared fixtures: a clean registry per test, database-vendor and contrib-app markers."""

from __future__ import annotations

import os

import pytest
from django.apps import apps
from django.db import connection

from omniman import registry
from tests import dbreset

# Transactional tests end with a cheaper reset than Django's flush, to the same rows (tests/dbreset.py).
dbreset.install()


@pytest.fixture(autouse=True)
def registry_state():
    """Every test starts from the registrations the apps made and may add its own."""
    saved = registry.snapshot()
    yield
    registry.restore(saved)


@pytest.fixture(autouse=True)
def fresh_batch_pace(monkeypatch):
    """Batch sizes the engine learnt from an earlier test's handlers (slow under load) do not carry over."""
    from omniman import engine

    monkeypatch.setattr(engine, "_BATCH_PACE", {})


@pytest.fixture
def unhurried_batches(monkeypatch):
    """Batches end by their size, not by ``BATCH_MAX_SECONDS`` (0.1 s), which a loaded CI machine (three suites on
    two cores) can pass with 20 no-op directives, ending a pass early: for tests that count a batch's statements
    or expect one pass to run every due directive.
    The time bound has its own test (``test_directive_claimed_batch.py::test_the_time_bound_…``), which sets it."""
    from omniman import engine

    monkeypatch.setattr(engine, "BATCH_MAX_SECONDS", 60.0)


# Fixtures through which a test reaches the database (pytest-django blocks it for every other test).
DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server"}


@pytest.hookimpl(trylast=True)  # after tests/e2e/conftest.py has marked its tests e2e
def pytest_collection_modifyitems(config, items):
    skip_without_contrib_apps(items)
    if os.environ.get("OMNIMAN_TEST_DATABASE_ONLY") == "1":
        leave_out_database_independent_tests(config, items)
    if os.environ.get("OMNIMAN_TEST_BROWSER_ELSEWHERE") == "1":
        leave_out_browser_tests(config, items)
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason=f"needs PostgreSQL (row locks, SKIP LOCKED, real concurrency); this run is on {connection.vendor}"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def skip_without_contrib_apps(items):
    """``@pytest.mark.contrib("omniman.contrib.refs", …)``: skipped when one of those apps is not installed.

    tests/settings_nocontrib.py installs none (scripts/test.py's "nocontrib" pass);
    the other passes install them all, so nothing is skipped there.
    """
    for item in items:
        needed = [app for marker in item.iter_markers("contrib") for app in marker.args]
        missing = [app for app in dict.fromkeys(needed) if not apps.is_installed(app)]
        if missing:
            item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)} in INSTALLED_APPS (not installed in this run)"))


def uses_database(item) -> bool:
    return item.get_closest_marker("django_db") is not None or bool(DATABASE_FIXTURES & set(getattr(item, "fixturenames", ())))


def leave_out_database_independent_tests(config, items):
    """``OMNIMAN_TEST_DATABASE_ONLY=1`` (scripts/test.py's PostgreSQL pass, after the SQLite pass ran everything):
    deselect the tests that cannot reach the database, which ran identically on SQLite.

    Kept: every test that uses the database, and the ``postgres`` and ``deploy`` tests, which
    look at the database's vendor themselves (a throwaway server, the deploy check's database).
    """
    kept, left_out = [], []
    for item in items:
        independent = not uses_database(item) and item.get_closest_marker("postgres") is None
        independent = independent and item.get_closest_marker("deploy") is None
        (left_out if independent else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


def leave_out_browser_tests(config, items):
    """``OMNIMAN_TEST_BROWSER_ELSEWHERE=1`` (scripts/test.py's PostgreSQL pass, after the SQLite pass ran them):
    deselect the browser tests (``e2e``), except those marked ``postgres``, which only PostgreSQL runs.

    The browser tests run on one database per CI run to keep ``.ci/run`` within 15 minutes (scripts/test.py says why).
    """
    kept, left_out = [], []
    for item in items:
        browser_only_here = item.get_closest_marker("e2e") is not None and item.get_closest_marker("postgres") is None
        (left_out if browser_only_here else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
