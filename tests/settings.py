"""Test settings: the project's settings plus a test app whose directive handlers record each run.

Tests run with DEBUG off, like production, but over plain http (the test
client, the live server) and without ``collectstatic``.
"""

from config.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405

# Tests run directives explicitly (engine.process) unless a test turns dispatch on.
OMNIMAN = {**OMNIMAN, "DISPATCH_ON_COMMIT": []}  # noqa: F405

# Each request's connection closed at its end, as before production defaulted to persistent
# connections (CONN_MAX_AGE=60 with DEBUG off): test threads and live servers leave none open.
# The persistent path is exercised where it matters (test_database_restart.py's gunicorn).
DATABASES["default"]["CONN_MAX_AGE"] = env_int("CONN_MAX_AGE", 0)  # noqa: F405

# A production-grade key and hosts, so the startup checks pass as they would in production.
SECRET_KEY = "tests-only-" + "k3y-f0r-the-test-suite-n0t-for-any-real-deployment-0123456789"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]

# Plain http: no redirect to https, cookies without Secure, no HSTS.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0

# Static files straight from static/ and the apps (no manifest, no collectstatic).
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
