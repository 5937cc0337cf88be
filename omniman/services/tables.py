"""Table use cases: a table is a session handle (``handle_type="table"``) whose rounds are orders."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman.exceptions import ValidationError
from omniman.models import Channel, Order, Session
from omniman.services._common import lock_session
from omniman.services.orders import OrderService
from omniman.services.sessions import SessionService, require_rev

logger = logging.getLogger("omniman.services")

CLOSED_REASON = "table closed"


def orders_of_handle_today(channel: Channel, handle_type: str, handle_ref: str) -> QuerySet[Order]:
    """The handle's orders (a table's rounds) created since local midnight, oldest first.

    A round moved to another table (``FloorService``) is that table's: the handle is read from
    ``Order.current_handle_ref``, never from the immutable ``handle_ref`` it was committed on.
    """
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Order.objects.filter(
        channel=channel, handle_type=handle_type, current_handle_ref=handle_ref, created_at__gte=start
    ).order_by("created_at", "id")


class TableService:
    @staticmethod
    @transaction.atomic
    def close(
        session_key: str,
        channel_code: str,
        *,
        expected_rev: Any = None,
        actor: str = "system",
        roles: Iterable[str] | None = None,
    ) -> Session:
        """Settle a table, all or nothing: its orders of today still active walk their flow to its done
        status (``completed`` by default) and its empty round is abandoned.

        ``session_key`` is the table's current tab (open, or its last round).
        Errors: ``not_found`` (no such session in the channel), ``not_a_table``
        (a session whose handle type is not one of the flow's ``table_handle_types``), ``stale_rev``, ``round_not_sent``
        (the open round has items: send or clear it first), and the order
        service's own (``invalid_transition``…) if a flow cannot reach its
        done status — then nothing is written. ``roles`` (the caller's roles) are checked against
        the flow's ``permissions`` for every move (``forbidden_transition``); ``None`` is the system.
        """
        session = lock_session(session_key, channel_code)
        flow = session.channel.order_flow
        if not flow.is_table(session.handle_type) or not session.handle_ref:
            raise ValidationError("not_a_table", _("Only a table's tab can be closed."), {"session_key": session_key})
        require_rev(session, expected_rev)
        if session.state == Session.State.OPEN and session.lines:
            raise ValidationError(
                "round_not_sent",
                _("Send or clear the current round before closing the table."),
                {"session_key": session_key, "items_count": len(session.lines)},
            )
        rounds = orders_of_handle_today(session.channel, session.handle_type, session.handle_ref).filter(
            status__in=flow.active_statuses
        )
        for order in rounds:
            for status in flow.path(order.status, flow.done_status) or []:
                OrderService.transition(order.ref, status, actor=actor, reason=CLOSED_REASON, roles=roles)
        if session.state == Session.State.OPEN:
            session = SessionService.abandon_session(session_key, channel_code, actor=actor)
        logger.info(
            "table closed",
            extra={"session_key": session_key, "channel": channel_code, "actor": actor, "table": session.handle_ref},
        )
        return session
