"""``refs.assign_ticket`` (post-commit): give the order its pickup number, once."""

from __future__ import annotations

from typing import Any

from omniman.contrib.refs.services import RefService
from omniman.models import Order


class AssignTicketHandler:
    """Run in the commit's transaction (:func:`omniman.engine.dispatch_before_commit`), it takes the order the
    commit inserted — held by that transaction, in memory — from ``ctx["locked"]["order"]`` without reading it
    again; run by a worker (or a retry), it locks the order first."""

    topic = "refs.assign_ticket"
    database_only = True  # a row of this database, quick: claimed inside the engine's batch transaction

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        order_ref = message.payload.get("order_ref", "")
        shared = (ctx.get("locked") or {}).get("order")
        held = shared if isinstance(shared, Order) and shared.pk is not None and shared.ref == order_ref else None
        RefService.assign_ticket(order_ref, actor=ctx.get("actor", "system"), held=held)


HANDLERS = (AssignTicketHandler,)
