"""Errors of the notifications app (codes documented in docs/contrib/notifications.rst)."""

from __future__ import annotations

from omniman.exceptions import OmnimanError


class NotificationError(OmnimanError):
    """Codes: ``webhook_failed`` (non-2xx answer), ``webhook_unreachable`` (network),
    ``invalid_config``, ``unknown_backend``, ``order_not_found``."""


__all__ = ["NotificationError"]
