"""One small helper per payment OrderEvent type, written in the caller's transaction."""

from __future__ import annotations

from omniman.contrib.payment.protocols import PaymentResult
from omniman.models import Order, OrderEvent

CAPTURED = "payment.captured"
DECLINED = "payment.declined"
REFUNDED = "payment.refunded"
REFUND_DECLINED = "payment.refund_declined"


def captured(order: Order, *, actor: str, amount_q: int, transaction_id: str) -> OrderEvent:
    return order.emit_event(
        CAPTURED,
        actor=actor,
        payload={"amount_q": amount_q, "currency": order.currency, "transaction_id": transaction_id},
    )


def declined(order: Order, *, actor: str, stage: str, result: PaymentResult) -> OrderEvent:
    return order.emit_event(
        DECLINED,
        actor=actor,
        payload={
            "stage": stage,
            "amount_q": order.total_q,
            "error_code": result.error_code,
            "message": result.message,
            "transaction_id": result.transaction_id,
        },
    )


def refunded(order: Order, *, actor: str, amount_q: int, transaction_id: str, refund_id: str) -> OrderEvent:
    return order.emit_event(
        REFUNDED,
        actor=actor,
        payload={"amount_q": amount_q, "currency": order.currency, "transaction_id": transaction_id, "refund_id": refund_id},
    )


def refund_declined(order: Order, *, actor: str, amount_q: int, result: PaymentResult) -> OrderEvent:
    return order.emit_event(
        REFUND_DECLINED,
        actor=actor,
        payload={"amount_q": amount_q, "error_code": result.error_code, "message": result.message},
    )
