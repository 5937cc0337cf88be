"""Startup checks: the database must be able to keep Omniman's promises.

I9  SQLite is refused when ``DEBUG`` is off, unless
    ``OMNIMAN["ALLOW_SQLITE_IN_PRODUCTION"]`` says the operator accepts it.
I10 Outside that SQLite mode, the database must support row locks
    (``SELECT … FOR UPDATE``), ``SKIP LOCKED`` and JSON columns.

Production settings (``DEBUG`` off) must be safe to serve with:

E003 ``SECRET_KEY`` is missing, or is the development default.
E004 ``SECRET_KEY`` is weak: shorter than 50 characters, fewer than 5
     distinct characters, or a ``django-insecure-`` key.
E005 ``ALLOWED_HOSTS`` is empty.

Registered as Django system checks (``manage.py check``, ``runserver``,
``migrate``) and enforced by ``config/wsgi.py`` and ``config/asgi.py`` through
:func:`enforce_startup_checks`, since gunicorn runs no system checks. Every
message says which variable to set.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

from omniman import conf


def _sqlite_allowed() -> bool:
    return bool(settings.DEBUG) or bool(conf.get("ALLOW_SQLITE_IN_PRODUCTION"))


@checks.register("omniman")
def check_database(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for alias in settings.DATABASES:
        connection = connections[alias]
        if connection.vendor == "sqlite":
            if not _sqlite_allowed():
                errors.append(
                    checks.Error(
                        f"Database {alias!r} is SQLite and DEBUG is off.",
                        hint=(
                            "SQLite has no row locks: use PostgreSQL in production "
                            "(set DATABASE_URL=postgres://…), or set DEBUG=1 for development, "
                            'or accept SQLite explicitly with OMNIMAN["ALLOW_SQLITE_IN_PRODUCTION"] = True '
                            "(env OMNIMAN_ALLOW_SQLITE_IN_PRODUCTION=1)."
                        ),
                        id="omniman.E001",
                    )
                )
            continue
        features = connection.features
        missing = [
            label
            for label, supported in (
                ("row locks (SELECT ... FOR UPDATE)", features.has_select_for_update),
                ("SKIP LOCKED", features.has_select_for_update_skip_locked),
                ("SELECT ... FOR UPDATE OF", features.has_select_for_update_of),
                ("JSON columns", _supports_json(connection)),
            )
            if not supported
        ]
        if missing:
            errors.append(
                checks.Error(
                    f"Database {alias!r} ({connection.vendor}) lacks {', '.join(missing)}.",
                    hint="Omniman's concurrency guarantees need them: use PostgreSQL 12 or newer.",
                    id="omniman.E002",
                )
            )
    return errors


SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE = 5
DEV_SECRET_KEY = "django-insecure-omniman-dev-key"
GENERATE_KEY = (
    'python -c "from django.core.management.utils import get_random_secret_key; print(get_random_secret_key())"'
)


@checks.register("omniman")
def check_secret_key(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    key = getattr(settings, "SECRET_KEY", "") or ""
    if not key or key == DEV_SECRET_KEY:
        return [
            checks.Error(
                "SECRET_KEY is not set: the development default is in use and DEBUG is off.",
                hint=f"Set the SECRET_KEY environment variable to {SECRET_KEY_MIN_LENGTH}+ random characters, "
                f"e.g. the output of: {GENERATE_KEY}",
                id="omniman.E003",
            )
        ]
    if len(key) < SECRET_KEY_MIN_LENGTH or len(set(key)) < SECRET_KEY_MIN_UNIQUE or key.startswith("django-insecure-"):
        return [
            checks.Error(
                f"SECRET_KEY is too weak ({len(key)} characters, {len(set(key))} distinct) and DEBUG is off.",
                hint=f"Set the SECRET_KEY environment variable to at least {SECRET_KEY_MIN_LENGTH} random characters "
                f"(not starting with 'django-insecure-'), e.g. the output of: {GENERATE_KEY}",
                id="omniman.E004",
            )
        ]
    return []


@checks.register("omniman")
def check_allowed_hosts(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG or settings.ALLOWED_HOSTS:
        return []
    return [
        checks.Error(
            "ALLOWED_HOSTS is empty and DEBUG is off: every request would be refused.",
            hint="Set the ALLOWED_HOSTS environment variable to the comma-separated host names this site "
            "answers to, e.g. ALLOWED_HOSTS=orders.example.com (a load balancer's health probe must send one of them).",
            id="omniman.E005",
        )
    ]


STARTUP_CHECKS = (check_secret_key, check_allowed_hosts, check_database)


def _supports_json(connection) -> bool:
    try:
        return bool(connection.features.supports_json_field)
    except Exception:  # the probe itself needs a working connection
        return False


def enforce_startup_checks() -> None:
    """Raise ``ImproperlyConfigured`` with every failed check (for WSGI/ASGI entry points)."""
    problems = [message for check in STARTUP_CHECKS for message in check() if message.is_serious()]
    if problems:
        raise ImproperlyConfigured(
            "Omniman refuses to start:\n"
            + "\n".join(f"- {problem.msg} {problem.hint or ''}".rstrip() for problem in problems)
        )
