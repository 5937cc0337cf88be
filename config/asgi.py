"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_asgi_application()

from omniman.checks import enforce_startup_checks  # noqa: E402  (needs the app registry)

enforce_startup_checks()
