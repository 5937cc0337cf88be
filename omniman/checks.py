"""Startup checks: the database must be able to keep Omniman's promises.

I9  SQLite is refused when ``DEBUG`` is off, unless
    ``OMNIMAN["ALLOW_SQLITE_IN_PRODUCTION"]`` says the operator accepts it.
I10 Outside that SQLite mode, the database must support row locks
    (``SELECT … FOR UPDATE``), ``SKIP LOCKED`` and JSON columns.

Registered as Django system checks (``manage.py check``, ``runserver``,
``migrate``) and enforced by ``config/wsgi.py`` through
:func:`enforce_startup_checks`, since gunicorn runs no system checks.
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


def _supports_json(connection) -> bool:
    try:
        return bool(connection.features.supports_json_field)
    except Exception:  # the probe itself needs a working connection
        return False


def enforce_startup_checks() -> None:
    """Raise ``ImproperlyConfigured`` with every failed check (for WSGI/ASGI entry points)."""
    problems = [message for message in check_database() if message.is_serious()]
    if problems:
        raise ImproperlyConfigured(
            "Omniman refuses to start:\n"
            + "\n".join(f"- {problem.msg} {problem.hint or ''}".rstrip() for problem in problems)
        )
