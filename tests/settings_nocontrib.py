"""The test settings without any ``omniman.contrib`` app: the kernel, the operator app and the API alone.

``scripts/test.py`` runs the kernel, web and API suites under these settings
(a third, SQLite pass) to prove every contrib app is optional. A test that
needs a contrib app says so with ``@pytest.mark.contrib("omniman.contrib.…")``
(tests/conftest.py skips it here, with the reason).
"""

from tests.settings import *  # noqa: F403

INSTALLED_APPS = [app for app in INSTALLED_APPS if not app.startswith("omniman.contrib.")]  # noqa: F405
