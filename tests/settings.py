"""Test settings: the project's settings plus a test app whose directive handlers record each run."""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405

# Tests run directives explicitly (engine.process) unless a test turns dispatch on.
OMNIMAN = {**OMNIMAN, "DISPATCH_ON_COMMIT": []}  # noqa: F405
