"""``notification.send``: tell each configured backend once per occurrence of an order event.

Payload: a post-commit ``{"order_ref", "channel_code", "session_key"}``, an
``on_enter`` ``{"order_ref", "from", "to"}``, or anything with an
``order_ref`` (optionally ``event``). The handler adds, when it splits the
work, ``backend`` (an index), ``event`` and ``occurrence``.

One directive, one transaction: a directive that sent to backend 1 and then
failed on backend 2 would roll back backend 1's evidence and resend it. So
with several backends to serve, the directive splits into one
``notification.send`` per backend (each retried with its own backoff); with
one, it delivers in place.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.db import IntegrityError, transaction

from omniman.contrib.notifications import get_backend
from omniman.contrib.notifications.exceptions import NotificationError
from omniman.contrib.notifications.models import NotificationDelivery
from omniman.models import Directive, Order

logger = logging.getLogger("omniman.notifications")

TOPIC = "notification.send"


def event_name(payload: dict[str, Any]) -> str:
    """``payload["event"]``, else ``order.<status>`` for an ``on_enter`` directive, else ``order.created``."""
    if payload.get("event"):
        return str(payload["event"])
    if payload.get("to"):
        return f"order.{payload['to']}"
    return "order.created"


def channel_backends(order: Order) -> list[dict[str, Any]]:
    """``channel.config["notifications"]["backends"]``: a list of ``{"backend": name, ...}``."""
    config = (order.channel.config or {}).get("notifications") or {}
    specs = config.get("backends") or []
    if not isinstance(specs, list) or not all(isinstance(s, dict) and s.get("backend") for s in specs):
        raise NotificationError(
            "invalid_config",
            'notifications.backends must be a list of objects with a "backend" name.',
            {"channel": order.channel.code},
        )
    return specs


def _wants(spec: dict[str, Any], event: str) -> bool:
    events = spec.get("events")
    return not events or event in events


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SendHandler:
    topic = TOPIC
    own_transaction = True  # calls an outside service: never inside the engine's batch transaction

    def handle(self, *, message: Directive, ctx: dict[str, Any]) -> None:
        payload = dict(message.payload or {})
        order_ref = payload.get("order_ref") or ""
        order = Order.objects.select_related("channel").filter(ref=order_ref).first()
        if order is None:
            raise NotificationError("order_not_found", f"No order {order_ref!r}.", {"order_ref": order_ref})
        event = event_name(payload)
        occurrence = str(payload.get("occurrence") or message.dedupe_key or f"directive:{message.pk}")
        specs = channel_backends(order)
        if "backend" in payload:
            index = payload["backend"]
            if not isinstance(index, int) or not 0 <= index < len(specs):
                raise NotificationError(
                    "invalid_config", f"The channel has no notification backend #{index}.", {"backend": index}
                )
            targets = [index]
        else:
            targets = [i for i, spec in enumerate(specs) if _wants(spec, event)]
        delivered = set(
            NotificationDelivery.objects.filter(
                order_ref=order.ref, occurrence=occurrence, backend_index__in=targets
            ).values_list("backend_index", flat=True)
        )
        pending = [i for i in targets if i not in delivered]
        if len(pending) > 1:
            for index in pending:
                Directive.objects.enqueue(
                    TOPIC,
                    {**payload, "event": event, "occurrence": occurrence, "backend": index},
                    dedupe_key=f"{order.ref}:{TOPIC}:{_short(occurrence)}:{index}",
                )
            return
        for index in pending:
            deliver(order, specs[index], index=index, event=event, occurrence=occurrence, payload=payload, directive_id=message.pk)


def deliver(
    order: Order,
    spec: dict[str, Any],
    *,
    index: int,
    event: str,
    occurrence: str,
    payload: dict[str, Any],
    directive_id: int | None = None,
) -> NotificationDelivery | None:
    """Send through one backend unless it was sent already; ``None`` if it was.

    The delivery row is inserted first (its unique index makes a concurrent
    duplicate wait, then skip), the backend is called, and its answer is
    stored; a backend that raises rolls the row back with it.
    """
    backend = get_backend(spec["backend"])
    delivery = NotificationDelivery(
        order_ref=order.ref,
        event=event,
        occurrence=occurrence,
        backend_index=index,
        backend=str(spec["backend"]),
        directive_id=directive_id,
    )
    with transaction.atomic():
        try:
            with transaction.atomic():
                delivery.save(force_insert=True)
        except IntegrityError:
            return None
        delivery_id = _short(f"{order.ref}|{occurrence}|{index}")
        detail = backend.send(
            event=event,
            order=order,
            payload={**payload, "event": event, "occurrence": occurrence, "delivery_id": delivery_id},
            config=spec,
        )
        delivery.detail = detail or {}
        delivery.save(update_fields=["detail"])
    logger.info(
        "notification delivered",
        extra={"order_ref": order.ref, "event": event, "backend": spec["backend"], "index": index},
    )
    return delivery


HANDLERS = (SendHandler,)
