"""Shared fixtures: a clean registry per test, database-vendor and contrib-app markers."""

from __future__ import annotations

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


def pytest_collection_modifyitems(config, items):
    skip_without_contrib_apps(items)
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
