"""Shared fixtures: a clean registry per test, database-vendor markers."""

from __future__ import annotations

import pytest
from django.db import connection

from omniman import registry


@pytest.fixture(autouse=True)
def registry_state():
    """Every test starts from the registrations the apps made and may add its own."""
    saved = registry.snapshot()
    yield
    registry.restore(saved)


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(
        reason=f"needs PostgreSQL (row locks, SKIP LOCKED, real concurrency); this run is on {connection.vendor}"
    )
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
