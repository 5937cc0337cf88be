"""Table use cases: a table is a session handle (``handle_type="table"``) whose rounds are orders."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman.exceptions import BillError, ValidationError
from omniman.models import Bill, Channel, Order, Session
from omniman.monetary import format_money
from omniman.services._common import lock_session
from omniman.services.orders import OrderService
from omniman.services.sessions import SessionService, require_rev

logger = logging.getLogger("omniman.services")

CLOSED_REASON = "table closed"


def orders_of_handle_today(channel: Channel, handle_type: str, handle_ref: str) -> QuerySet[Order]:
    """The handle's orders (a table's rounds) created since local midnight, oldest first."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Order.objects.filter(
        channel=channel, handle_type=handle_type, handle_ref=handle_ref, created_at__gte=start
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
        """Close a table whose bill is paid: nothing of today is owed, the kitchen keeps its work, the empty round is abandoned.

        ``session_key`` is the table's current tab (open, or its last round).
        The table's orders of today (not cancelled) must all be on bills that
        are settled or written off (``BillService`` / ``PaymentService``), else
        ``bill_not_settled`` (409, context ``due_q``, ``bill_ref``, ``unbilled_order_refs``).
        Closing never changes a kitchen status: an order the kitchen has not
        finished stays on the board until it is bumped. Only an order already
        past the kitchen — at the flow's ``ready_status``, or at any other
        status outside its ``kitchen_statuses`` from which its ``done_status``
        is one step away — moves to ``done_status`` (``completed``).
        Errors: ``not_found`` (no such session in the channel), ``not_a_table``
        (a session whose handle type is not one of the flow's ``table_handle_types``), ``stale_rev``,
        ``round_not_sent`` (the open round has items: send or clear it first),
        ``bill_not_settled``; then nothing is written. ``roles`` (the caller's
        roles) are checked against the flow's ``permissions`` for every move
        (``forbidden_transition``); ``None`` is the system.
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
        today = orders_of_handle_today(session.channel, session.handle_type, session.handle_ref)
        if flow.cancel_status:
            today = today.exclude(status=flow.cancel_status)
        unsettled = list(
            today.filter(Q(bill__isnull=True) | Q(bill__status=Bill.Status.OPEN)).select_related("bill").only(
                "ref", "total_q", "snapshot", "bill__ref", "bill__total_q", "bill__paid_q"
            )
        )
        if unsettled:
            bills = {order.bill.ref: order.bill for order in unsettled if order.bill is not None}
            unbilled = [order for order in unsettled if order.bill is None]
            due_q = sum(bill.due_q for bill in bills.values()) + sum(order.charged_q for order in unbilled)
            raise BillError(
                "bill_not_settled",
                _(
                    "The table's bill is not settled: %(due)s is still due. "
                    "Take the payment (or have a manager write it off) before closing the table."
                )
                % {"due": format_money(due_q, session.channel.currency)},
                {
                    "session_key": session_key,
                    "due_q": due_q,
                    "bill_ref": sorted(bills)[0] if bills else "",
                    "unbilled_order_refs": [order.ref for order in unbilled],
                },
            )
        done = flow.done_status
        for order in today.filter(status__in=flow.active_statuses):
            past_kitchen = order.status == flow.ready_status or order.status not in flow.kitchen_statuses
            if done and past_kitchen and flow.can(order.status, done):
                OrderService.transition(order.ref, done, actor=actor, reason=CLOSED_REASON, roles=roles)
        if session.state == Session.State.OPEN:
            session = SessionService.abandon_session(session_key, channel_code, actor=actor)
        logger.info(
            "table closed",
            extra={"session_key": session_key, "channel": channel_code, "actor": actor, "table": session.handle_ref},
        )
        return session
