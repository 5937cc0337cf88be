"""Order notifications: console, email and signed-webhook backends behind one protocol.

The ``notification.send`` handler delivers each configured backend once per
occurrence, recording a ``NotificationDelivery`` row per backend.
"""

from __future__ import annotations

from typing import Any

from omniman import conf

BUILTIN_BACKENDS: dict[str, str] = {
    "console": "omniman.contrib.notifications.backends.ConsoleBackend",
    "email": "omniman.contrib.notifications.backends.EmailBackend",
    "webhook": "omniman.contrib.notifications.backends.WebhookBackend",
}


def get_backend(name: str) -> Any:
    """The backend called ``name``: a built-in, one named in ``OMNIMAN["NOTIFICATION_BACKENDS"]``
    (``{name: dotted path}``, which may also replace a built-in), or a dotted path."""
    from django.utils.module_loading import import_string

    from omniman.contrib.notifications.exceptions import NotificationError

    names = {**BUILTIN_BACKENDS, **(conf.get("NOTIFICATION_BACKENDS", {}) or {})}
    path = names.get(name) or (name if isinstance(name, str) and "." in name else None)
    if path is None:
        raise NotificationError("unknown_backend", f"No notification backend {name!r}.", {"backend": name, "known": sorted(names)})
    if not isinstance(path, str):
        return path
    try:
        return import_string(path)()
    except ImportError as exc:
        raise NotificationError("unknown_backend", f"Cannot import {path!r}: {exc}", {"backend": name}) from exc
