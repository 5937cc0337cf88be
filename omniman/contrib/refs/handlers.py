"""``refs.assign_ticket`` (post-commit): give the order its pickup number, once."""

from __future__ import annotations

from typing import Any

from omniman.contrib.refs.services import RefService


class AssignTicketHandler:
    topic = "refs.assign_ticket"
    database_only = True  # a row of this database, quick: claimed inside the engine's batch transaction

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        RefService.assign_ticket(message.payload.get("order_ref", ""), actor=ctx.get("actor", "system"))


HANDLERS = (AssignTicketHandler,)
