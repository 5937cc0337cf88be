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
    return order.emit_event(
        CREATED,
        actor=actor,
        payload={
            "session_key": session_key,
            "rev": rev,
            "status": order.status,
            "total_q": order.total_q,
            "items_count": items_count,
        },
    )


def prices_overridden(order: Order, lines: list[dict[str, Any]]) -> list[OrderEvent]:
    """One ``price.overridden`` per line that carries an override, in one INSERT."""
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
    return OrderEvent.objects.bulk_create(events) if events else []


def adjustments_applied(order: Order, adjustments: list[dict[str, Any]]) -> list[OrderEvent]:
    """One ``adjustment.applied`` per adjustment the order was committed with, in one INSERT.

    Payload: the adjustment's ``id``, ``kind``, ``label``, ``line_id``,
    ``percent``, ``amount_q``, ``reason``, ``approved_by``, ``auto`` and
    ``after_q`` (the order's total) and ``before_q = after_q - amount_q``. The
    event's actor is the adjustment's (``system`` for the automatic service charge).
    """
    events = [
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
    return OrderEvent.objects.bulk_create(events) if events else []


def status_changed(order: Order, *, actor: str, from_status: str, to_status: str, reason: str = "") -> OrderEvent:
    return order.emit_event(
        STATUS_CHANGED, actor=actor, payload={"from": from_status, "to": to_status, "reason": reason or ""}
    )


def note_added(order: Order, *, actor: str, text: str) -> OrderEvent:
    return order.emit_event(NOTE, actor=actor, payload={"text": text})
