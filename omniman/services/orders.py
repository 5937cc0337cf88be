"""Order status changes, through the channel's flow."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman.exceptions import InvalidTransition, OmnimanError
from omniman.flow import TIMESTAMPED_STATUSES
from omniman.models import Directive, Order, first_with_channel
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
        roles: Iterable[str] | None = None,
    ) -> Order:
        """Move an order to ``new_status`` if its channel's flow allows it.

        ``expected_status`` makes the move conditional on what the caller saw:
        when two screens bump one order, the late one gets ``stale_status``.
        ``roles`` are the roles of the person (or client) asking: the move must
        be one their flow's ``permissions`` give one of them
        (``InvalidTransition("forbidden_transition")`` otherwise). ``None`` is
        the system itself (handlers, commits, ingestion): not checked.
        """
        order = lock_order(order_ref)
        if expected_status is not None and order.status != expected_status:
            raise InvalidTransition(
                "stale_status",
                _("Order %(order_ref)s is %(order_status)s, not %(expected_status)s.")
                % {"order_ref": order_ref, "order_status": repr(order.status), "expected_status": repr(expected_status)},
                {"order_ref": order_ref, "expected_status": expected_status, "current_status": order.status},
            )
        if roles is not None:
            require_permission(order, new_status, roles)
        return apply_transition(order, new_status, actor=actor, reason=reason)


def require_permission(order: Order, new_status: str, roles: Iterable[str]) -> None:
    """``forbidden_transition`` unless ``roles`` may move the order to ``new_status`` (a move its flow does not allow is left to ``apply_transition``)."""
    flow = order.flow
    roles = set(roles)
    if flow.can(order.status, new_status) and not flow.may_transition(roles, order.status, new_status):
        raise InvalidTransition(
            "forbidden_transition",
            _("Your role may not move order %(order_ref)s from %(order_status)s to %(new_status)s.")
            % {"order_ref": order.ref, "order_status": repr(order.status), "new_status": repr(new_status)},
            {
                "order_ref": order.ref,
                "from": order.status,
                "to": new_status,
                "roles": sorted(roles),
                "allowed_roles": flow.roles_for(order.status, new_status),
            },
        )


def lock_order(order_ref: str | None = None, *, missing: OmnimanError | None = None, **lookup: Any) -> Order:
    """Lock an order's row and return the order with its channel: the one order lock of every service.

    Call it inside a transaction. The order is found by ``order_ref``, or by
    ``lookup`` (``channel=…, session_key=…``); only the order's row is locked
    (``SELECT … FOR UPDATE OF``), never its channel's. No such order raises
    ``missing`` (default ``OmnimanError("not_found")``).
    """
    if lookup:
        rows = Order.objects.select_related("channel").select_for_update(of=("self",))
        order = rows.filter(**lookup).first()
    else:
        order = _lock_order_by_ref(order_ref or "")
    if order is None:
        context = {"order_ref": order_ref} if not lookup else {key: str(value) for key, value in lookup.items()}
        raise missing or OmnimanError("not_found", _("No order %(order_ref)s.")
            % {"order_ref": repr(order_ref or context)}, context)
    return order


def _lock_order_by_ref(order_ref: str) -> Order | None:
    """``Order.objects.select_related("channel").select_for_update(of=("self",)).filter(ref=…).first()`` as SQL.

    Written once per connection (:func:`omniman.models.first_with_channel`): the ORM
    spent more CPU building this query than the database answering it, on
    every post-commit directive (``benchmarks/profile_api.py``).
    """
    return first_with_channel(Order, (("row", "ref"),), [order_ref], lock=True)


def apply_auto_transition(order: Order, key: str, *, actor: str) -> Order | None:
    """Move a locked order to its flow's ``auto_transitions[key]`` if the flow allows it now; ``None`` if not moved.

    ``key`` is ``on_create``, ``on_stock_commit`` or ``on_payment_confirm``.
    An order that already left for somewhere the target cannot be reached
    from (another actor moved it first) stays where it is.
    """
    target = order.flow.auto_transitions.get(key)
    if not target or target == order.status or not order.can_transition_to(target):
        return None
    return apply_transition(order, target, actor=actor, reason=f"auto_transitions.{key}")


def apply_transition(order: Order, new_status: str, *, actor: str, reason: str = "") -> Order:
    """Change the status of a locked order; stamp, audit and enqueue ``on_enter``."""
    require_transition(order, new_status)
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


def require_transition(order: Order, new_status: str) -> None:
    """``InvalidTransition("invalid_transition")`` unless the order's flow allows its move to ``new_status``."""
    flow = order.channel.order_flow
    if not flow.can(order.status, new_status):
        raise InvalidTransition(
            "invalid_transition",
            _("Order %(order_ref)s cannot go from %(order_status)s to %(new_status)s.")
            % {"order_ref": order.ref, "order_status": repr(order.status), "new_status": repr(new_status)},
            {"order_ref": order.ref, "from": order.status, "to": new_status, "allowed": flow.allowed_from(order.status)},
        )


def enqueue_on_enter(order: Order, previous: str | None, status: str, *, entry: str) -> list[Directive]:
    """The ``on_enter`` topics of ``status``; ``entry`` tells one entry into it from another."""
    return [
        Directive.objects.enqueue(topic, payload, dedupe_key=dedupe_key)
        for topic, payload, dedupe_key in on_enter_directives(order, previous, status, entry=entry)
    ]


def on_enter_directives(order: Order, previous: str | None, status: str, *, entry: str) -> list[tuple[str, dict[str, Any], str]]:
    """What :func:`enqueue_on_enter` enqueues, as ``(topic, payload, dedupe_key)``: for ``Directive.objects.enqueue_many``."""
    return [
        (topic, {"order_ref": order.ref, "from": previous, "to": status}, f"{order.ref}:{status}:{topic}:{entry}")
        for topic in order.channel.order_flow.topics_on_enter(status)
    ]
