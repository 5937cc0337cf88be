"""Payment use cases: capture an order's total, refund it. Both idempotent by order event."""

from __future__ import annotations

import logging

from django.db import transaction

from omniman.contrib.payment import events, get_backend
from omniman.contrib.payment.exceptions import PaymentError
from omniman.models import Order
from omniman.services import apply_auto_transition, lock_order

logger = logging.getLogger("omniman.payment")

REFUND_TOPIC = "payment.refund"

# What capture() and refund() return.
CAPTURED = "captured"
ALREADY_CAPTURED = "already_captured"
DECLINED = "declined"
ALREADY_DECLINED = "already_declined"
SKIPPED = "skipped"
REFUNDED = "refunded"
ALREADY_REFUNDED = "already_refunded"
NOT_CAPTURED = "not_captured"
REFUND_DECLINED = "refund_declined"


def _lock_order(order_ref: str) -> Order:
    return lock_order(order_ref, missing=PaymentError("order_not_found", f"No order {order_ref!r}.", {"order_ref": order_ref}))


def _refunds_on_entry(order: Order) -> bool:
    """The order sits in a status that means "give the money back": never charge it now."""
    flow = order.flow
    return order.status == flow.cancel_status or REFUND_TOPIC in flow.topics_on_enter(order.status)


class PaymentService:
    @staticmethod
    @transaction.atomic
    def capture(order_ref: str, *, actor: str = "system") -> str:
        """Authorize and capture the order's total, once.

        Locks the order, then looks for the evidence: a ``payment.captured`` or
        ``payment.declined`` event means it was done (returns
        ``already_captured`` / ``already_declined``). An order in a cancelled
        (or refunding) status is not charged (``skipped``). Otherwise it
        authorizes and captures with keys derived from the order ref
        (``authorize:<ref>``, ``capture:<ref>``: the provider dedupes a retry
        too), writes ``payment.captured`` or ``payment.declined``, and applies
        ``order_flow.auto_transitions.on_payment_confirm``. A provider that
        cannot be reached raises (the directive retries; nothing is written).
        """
        order = _lock_order(order_ref)
        done = set(order.events.filter(type__in=(events.CAPTURED, events.DECLINED)).values_list("type", flat=True))
        if events.CAPTURED in done:
            return ALREADY_CAPTURED
        if events.DECLINED in done:
            return ALREADY_DECLINED
        if _refunds_on_entry(order):
            logger.info("payment not captured: the order is %s", order.status, extra={"order_ref": order.ref})
            return SKIPPED
        if order.total_q <= 0:
            events.captured(order, actor=actor, amount_q=0, transaction_id="")
        else:
            backend = get_backend()
            authorization = backend.authorize(
                amount_q=order.total_q,
                currency=order.currency,
                reference=order.ref,
                idempotency_key=f"authorize:{order.ref}",
            )
            if authorization.declined:
                events.declined(order, actor=actor, stage="authorize", result=authorization)
                return DECLINED
            capture = backend.capture(
                transaction_id=authorization.transaction_id,
                amount_q=order.total_q,
                idempotency_key=f"capture:{order.ref}",
            )
            if capture.declined:
                events.declined(order, actor=actor, stage="capture", result=capture)
                return DECLINED
            events.captured(order, actor=actor, amount_q=order.total_q, transaction_id=capture.transaction_id)
        logger.info("payment captured", extra={"order_ref": order.ref, "amount_q": order.total_q})
        apply_auto_transition(order, "on_payment_confirm", actor=actor)
        return CAPTURED

    @staticmethod
    @transaction.atomic
    def refund(order_ref: str, *, actor: str = "system") -> str:
        """Refund what was captured, once.

        Nothing was captured → ``not_captured`` (nothing to do); a
        ``payment.refunded`` or ``payment.refund_declined`` event → done
        already. Otherwise refunds the captured amount with the key
        ``refund:<ref>`` and writes ``payment.refunded`` (or
        ``payment.refund_declined`` when the provider refuses: an operator's
        case, not retried).
        """
        order = _lock_order(order_ref)
        trail = {
            event.type: event
            for event in order.events.filter(type__in=(events.CAPTURED, events.REFUNDED, events.REFUND_DECLINED))
        }
        if events.REFUNDED in trail:
            return ALREADY_REFUNDED
        if events.REFUND_DECLINED in trail:
            return REFUND_DECLINED
        capture = trail.get(events.CAPTURED)
        if capture is None:
            return NOT_CAPTURED
        amount_q = int(capture.payload.get("amount_q") or 0)
        transaction_id = str(capture.payload.get("transaction_id") or "")
        if amount_q <= 0 or not transaction_id:
            events.refunded(order, actor=actor, amount_q=0, transaction_id=transaction_id, refund_id="")
            return REFUNDED
        result = get_backend().refund(transaction_id=transaction_id, amount_q=amount_q, idempotency_key=f"refund:{order.ref}")
        if result.declined:
            events.refund_declined(order, actor=actor, amount_q=amount_q, result=result)
            logger.warning("refund declined", extra={"order_ref": order.ref, "error_code": result.error_code})
            return REFUND_DECLINED
        events.refunded(order, actor=actor, amount_q=amount_q, transaction_id=transaction_id, refund_id=result.transaction_id)
        logger.info("payment refunded", extra={"order_ref": order.ref, "amount_q": amount_q})
        return REFUNDED


__all__ = ["PaymentService"]
