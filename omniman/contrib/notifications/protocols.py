"""What a notification backend implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from omniman.models import Order


@runtime_checkable
class NotificationBackend(Protocol):
    """Tells someone about an order: prints it, mails it, posts it.

    ``event`` names what happened (``"order.created"``, ``"order.ready"``…);
    ``payload`` is the directive's payload plus ``event``, ``occurrence`` and
    ``delivery_id`` (stable across retries: receivers dedupe by it);
    ``config`` is this backend's entry of ``channel.config["notifications"]["backends"]``.

    Return a small JSON-able dict kept on the delivery row (or ``None``).
    Raise to have the directive retried with backoff; a raise leaves no trace
    in the database, so the same delivery is attempted again.
    """

    def send(self, *, event: str, order: Order, payload: dict[str, Any], config: dict[str, Any]) -> dict[str, Any] | None: ...


__all__ = ["NotificationBackend"]
