"""One small helper per OrderEvent type, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from omniman.models import Order, OrderEvent

CREATED = "created"
STATUS_CHANGED = "status_changed"
PRICE_OVERRIDDEN = "price.overridden"
NOTE = "note"
ADJUSTMENT_APPLIED = "adjustment.applied"


def order_created(order: Order, *, actor: str, session_key: str, rev: int, items_count: int) -> OrderEvent:
    event = created_event(order, actor=actor, session_key=session_key, rev=rev, items_count=items_count)
    event.save(force_insert=True)
    return event


def created_event(
    order: Order, *, actor: str, session_key: str, rev: int, items_count: int, status: str | None = None
) -> OrderEvent:
    """The unsaved ``created`` event of ``order``; its payload's ``status`` is ``status`` (default: the order's now)."""
    return OrderEvent(
        order=order,
        type=CREATED,
        actor=actor,
        payload={
            "session_key": session_key,
            "rev": rev,
            "status": order.status if status is None else status,
            "total_q": order.total_q,
            "items_count": items_count,
        },
    )


def prices_overridden(order: Order, lines: list[dict[str, Any]]) -> list[OrderEvent]:
    """One ``price.overridden`` per line that carries an override, in one INSERT."""
    events = price_override_events(order, lines)
    return OrderEvent.objects.bulk_create(events) if events else []


def price_override_events(order: Order, lines: list[dict[str, Any]]) -> list[OrderEvent]:
    """The unsaved ``price.overridden`` events of the lines that carry an override."""
    events = []
    for line in lines:
        override = (line.get("meta") or {}).get("price_override")
        if not override:
            continue
        events.append(
            OrderEvent(
                order=order,
                type=PRICE_OVERRIDDEN,
                actor=str(override.get("actor") or ""),
                payload={
                    "line_id": line["line_id"],
                    "sku": line["sku"],
                    "from": override.get("from"),
                    "to": override.get("to"),
                    "reason": override.get("reason", ""),
                },
            )
        )
    return events


def adjustments_applied(order: Order, adjustments: list[dict[str, Any]]) -> list[OrderEvent]:
    """One ``adjustment.applied`` per adjustment the order was committed with, in one INSERT.

    Payload: the adjustment's ``id``, ``kind``, ``label``, ``line_id``,
    ``percent``, ``amount_q``, ``reason``, ``approved_by``, ``auto`` and
    ``after_q`` (the order's total) and ``before_q = after_q - amount_q``. The
    event's actor is the adjustment's (``system`` for the automatic service charge).
    """
    events = adjustment_events(order, adjustments)
    return OrderEvent.objects.bulk_create(events) if events else []


def adjustment_events(order: Order, adjustments: list[dict[str, Any]]) -> list[OrderEvent]:
    """The unsaved ``adjustment.applied`` events of :func:`adjustments_applied`."""
    return [
        OrderEvent(
            order=order,
            type=ADJUSTMENT_APPLIED,
            actor=str(adjustment.get("actor") or "system"),
            payload={
                **{key: adjustment.get(key) for key in ("id", "kind", "label", "line_id", "percent", "amount_q", "reason", "approved_by")},
                "auto": bool(adjustment.get("auto")),
                "before_q": order.total_q - int(adjustment.get("amount_q") or 0),
                "after_q": order.total_q,
            },
        )
        for adjustment in adjustments
    ]


def status_changed(order: Order, *, actor: str, from_status: str, to_status: str, reason: str = "") -> OrderEvent:
    return order.emit_event(
        STATUS_CHANGED, actor=actor, payload={"from": from_status, "to": to_status, "reason": reason or ""}
    )


def status_changed_event(order: Order, *, actor: str, from_status: str, to_status: str, reason: str = "") -> OrderEvent:
    """The unsaved ``status_changed`` event of :func:`status_changed` (written without ``post_save``: the caller
    writes it only when no receiver needs it, see ``CommitService``)."""
    return OrderEvent(
        order=order, type=STATUS_CHANGED, actor=actor, payload={"from": from_status, "to": to_status, "reason": reason or ""}
    )


def note_added(order: Order, *, actor: str, text: str) -> OrderEvent:
    return order.emit_event(NOTE, actor=actor, payload={"text": text})
