"""Omniman settings: one ``OMNIMAN`` dict, read at call time."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "DEFAULT_CURRENCY": "BRL",
    "SESSION_KEY_PREFIX": "SESS-",
    "ORDER_REF_PREFIX": "ORD-",
    "IDEMPOTENCY_TTL_HOURS": 24,
    # An ``in_progress`` idempotency key older than this is presumed to belong
    # to a request that died half-way; a retry with the same key may take it over.
    "IDEMPOTENCY_LEASE_SECONDS": 60,
    "SESSION_TTL_HOURS": 24,
    # An open session without a handle and with nothing in it (no line, not parked) is abandoned by
    # ``abandon_stale_sessions`` once untouched for this long.
    "EMPTY_SESSION_TTL_MINUTES": 30,
    "STOCK_HOLD_TTL_MINUTES": 15,
    "DIRECTIVE_MAX_ATTEMPTS": 5,
    "DIRECTIVE_BACKOFF_BASE_SECONDS": 2,
    "DIRECTIVE_BACKOFF_MAX_SECONDS": 300,
    "DIRECTIVE_STUCK_AFTER_SECONDS": 300,
    # Where ``process_directives --watch`` LISTENs: "" = the default database's settings, a
    # postgres:// URL = a direct session connection (behind PgBouncer's transaction pooling),
    # "off" = no LISTEN, poll every --interval.
    "DIRECTIVE_LISTEN_URL": "",
    "ALLOW_SQLITE_IN_PRODUCTION": False,
    "DISPATCH_ON_COMMIT": [],
    # /healthz reports "degraded" once the oldest due, queued directive has waited this long.
    "HEALTH_DIRECTIVE_AGE_SECONDS": 300,
    # The API refuses a larger request body with 413 ``payload_too_large``.
    "API_MAX_BODY_BYTES": 256 * 1024,
    # ``set_data`` (and ``open_session(data=...)``) refuse a session whose free data would outgrow this
    # (``ValidationError("data_too_large")``), measured as compact JSON in UTF-8.
    "SESSION_DATA_MAX_BYTES": 64 * 1024,
    # /healthz reports "degraded" once no directive worker (or cron pass) has been seen for
    # this long — on a database where one ever ran; 0 turns the check off.
    "HEALTH_WORKER_AGE_SECONDS": 120,
}


_MISSING = object()


def get(name: str, default: Any = _MISSING) -> Any:
    """Return one Omniman setting: ``settings.OMNIMAN[name]``, else its default.

    Kernel keys have their defaults in ``DEFAULTS``; a contrib app passes its own.
    """
    overrides = getattr(settings, "OMNIMAN", None) or {}
    if name in overrides:
        return overrides[name]
    if name in DEFAULTS:
        return DEFAULTS[name]
    if default is _MISSING:
        raise KeyError(f"unknown Omniman setting {name!r}")
    return default


def import_backend(name: str, default_path: str) -> Any:
    """Instantiate the backend class named by setting ``name`` (a dotted path)."""
    from django.utils.module_loading import import_string

    path = get(name, default_path)
    return import_string(path)() if isinstance(path, str) else path
