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

Settings and data the kernel must be able to read:

E030 ``OMNIMAN["DEFAULT_CURRENCY"]`` is not an ISO 4217 currency code.
W031 A channel's ``config`` in the database has a problem ``Channel.save()``
     refuses (planted by a raw ``UPDATE``, a fixture, or saved before the rule
     existed): its sessions, commits or orders may fail. One warning per channel.
W032 A channel's ``config`` names a directive topic without a registered
     handler: those directives would wait in the queue forever.

W031 and W032 read the database, so they run when a database is named:
``manage.py check --database default`` and ``migrate`` (warnings never stop it).
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

from omniman import conf
from omniman.channel_config import NO_HANDLER, config_problems
from omniman.monetary import is_currency


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


@checks.register("omniman")
def check_default_currency(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    currency = conf.get("DEFAULT_CURRENCY")
    if is_currency(currency):
        return []
    return [
        checks.Error(
            f'OMNIMAN["DEFAULT_CURRENCY"] is {str(currency)[:40]!r}: not an ISO 4217 currency code.',
            hint='Set it to three capital letters such as "BRL", "EUR" or "USD" (every channel without '
            "its own config currency prices its orders in it).",
            id="omniman.E030",
        )
    ]


@checks.register("omniman", checks.Tags.database)
def check_channel_configs(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    """Each channel's stored ``config`` against the kernel's rules (``omniman.channel_config``)."""
    from omniman.models import Channel

    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        try:
            rows = list(Channel.objects.using(alias).order_by("code").values_list("code", "config"))
        except DatabaseError:  # not migrated yet (migrate runs its checks first)
            continue
        for code, config in rows:
            problems = config_problems(config)
            broken = [p.message for p in problems if p.code != NO_HANDLER]
            waiting = [p.message for p in problems if p.code == NO_HANDLER]
            if broken:
                messages.append(
                    checks.Warning(
                        f"Channel {code!r} (database {alias!r}) has an invalid config: {'; '.join(broken)}.",
                        hint="Fix it in the admin (Setup → Channels), which checks it before saving; until then "
                        "its sessions, commits or orders may fail.",
                        obj=f"Channel {code}",
                        id="omniman.W031",
                    )
                )
            if waiting:
                messages.append(
                    checks.Warning(
                        f"Channel {code!r} (database {alias!r}) enqueues directives nobody handles: {'; '.join(waiting)}.",
                        hint="Install the app that registers the handler, or remove the topic from the channel's config.",
                        obj=f"Channel {code}",
                        id="omniman.W032",
                    )
                )
    return messages


STARTUP_CHECKS = (check_secret_key, check_allowed_hosts, check_database, check_default_currency)


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
