"""One small helper per OrderEvent type, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from omniman.models import Order, OrderEvent

CREATED = "created"
STATUS_CHANGED = "status_changed"
PRICE_OVERRIDDEN = "price.overridden"
NOTE = "note"


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


def status_changed(order: Order, *, actor: str, from_status: str, to_status: str, reason: str = "") -> OrderEvent:
    return order.emit_event(
        STATUS_CHANGED, actor=actor, payload={"from": from_status, "to": to_status, "reason": reason or ""}
    )


def note_added(order: Order, *, actor: str, text: str) -> OrderEvent:
    return order.emit_event(NOTE, actor=actor, payload={"text": text})
