"""A throwaway test database for a benchmark run (created, migrated, dropped afterwards)."""

from __future__ import annotations

from collections.abc import Callable


def run_on_scratch_database(run: Callable[[], None]) -> None:
    from django.conf import settings
    from django.test.utils import get_runner, setup_test_environment, teardown_test_environment

    setup_test_environment(debug=False)
    runner = get_runner(settings)(verbosity=0, interactive=False)
    old = runner.setup_databases()
    try:
        run()
    finally:
        runner.teardown_databases(old)
        teardown_test_environment()
