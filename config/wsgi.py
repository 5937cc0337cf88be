"""WSGI entry point (gunicorn config.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

from omniman.checks import enforce_startup_checks  # noqa: E402  (needs the app registry)

enforce_startup_checks()
