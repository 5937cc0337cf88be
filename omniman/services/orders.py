"""Order status changes, through the channel's flow."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman.exceptions import InvalidTransition, OmnimanError
from omniman.flow import TIMESTAMPED_STATUSES
from omniman.models import Directive, Order
from omniman.services import events
from omniman.signals import order_status_changed

logger = logging.getLogger("omniman.services")


class OrderService:
    @staticmethod
    @transaction.atomic
    def transition(
        order_ref: str,
        new_status: str,
        *,
        actor: str = "system",
        expected_status: str | None = None,
        reason: str = "",
    ) -> Order:
        """Move an order to ``new_status`` if its channel's flow allows it.

        ``expected_status`` makes the move conditional on what the caller saw:
        when two screens bump one order, the late one gets ``stale_status``.
        """
        order = (
            Order.objects.select_related("channel")
            .select_for_update(of=("self",))
            .filter(ref=order_ref)
            .first()
        )
        if order is None:
            raise OmnimanError("not_found", _("No order %(order_ref)s.")
                % {"order_ref": repr(order_ref)}, {"order_ref": order_ref})
        if expected_status is not None and order.status != expected_status:
            raise InvalidTransition(
                "stale_status",
                _("Order %(order_ref)s is %(order_status)s, not %(expected_status)s.")
                % {"order_ref": order_ref, "order_status": repr(order.status), "expected_status": repr(expected_status)},
                {"order_ref": order_ref, "expected_status": expected_status, "current_status": order.status},
            )
        return apply_transition(order, new_status, actor=actor, reason=reason)


def apply_transition(order: Order, new_status: str, *, actor: str, reason: str = "") -> Order:
    """Change the status of a locked order; stamp, audit and enqueue ``on_enter``."""
    flow = order.channel.order_flow
    if not flow.can(order.status, new_status):
        raise InvalidTransition(
            "invalid_transition",
            _("Order %(order_ref)s cannot go from %(order_status)s to %(new_status)s.")
            % {"order_ref": order.ref, "order_status": repr(order.status), "new_status": repr(new_status)},
            {"order_ref": order.ref, "from": order.status, "to": new_status, "allowed": flow.allowed_from(order.status)},
        )
    previous = order.status
    order.status = new_status
    fields = ["status", "updated_at"]
    if new_status in TIMESTAMPED_STATUSES and getattr(order, f"{new_status}_at") is None:
        setattr(order, f"{new_status}_at", timezone.now())
        fields.append(f"{new_status}_at")
    order._transitioning = True
    try:
        order.save(update_fields=fields)
    finally:
        order._transitioning = False
    event = events.status_changed(order, actor=actor, from_status=previous, to_status=new_status, reason=reason)
    enqueue_on_enter(order, previous, new_status, entry=str(event.pk))
    transaction.on_commit(
        lambda: order_status_changed.send(sender=Order, order=order, from_status=previous, to_status=new_status)
    )
    logger.info(
        "order status changed",
        extra={"order_ref": order.ref, "channel": order.channel.code, "actor": actor, "from": previous, "to": new_status},
    )
    return order


def enqueue_on_enter(order: Order, previous: str | None, status: str, *, entry: str) -> list[Directive]:
    """The ``on_enter`` topics of ``status``; ``entry`` tells one entry into it from another."""
    return [
        Directive.objects.enqueue(
            topic,
            {"order_ref": order.ref, "from": previous, "to": status},
            dedupe_key=f"{order.ref}:{status}:{topic}:{entry}",
        )
        for topic in order.channel.order_flow.topics_on_enter(status)
    ]
