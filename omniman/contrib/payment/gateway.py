"""The bills' ``gateway`` payment method over this app's ``PaymentBackend`` (issue #15).

The kernel's ``PaymentService.tender(method="gateway")`` asks the registered
``omniman.protocols.PaymentGateway``; this adapter authorizes and captures
through the configured backend (the mock gateway by default), and refunds
through it. Keys are derived from the caller's idempotency key, so a retry
never charges twice.
"""

from __future__ import annotations

from omniman.contrib.payment import get_backend
from omniman.protocols import GatewayResult


class BackendGateway:
    """``PaymentGateway`` for the kernel: one charge = authorize + capture on the backend."""

    def charge(self, *, amount_q: int, currency: str, reference: str, idempotency_key: str) -> GatewayResult:
        backend = get_backend()
        authorization = backend.authorize(
            amount_q=amount_q, currency=currency, reference=reference, idempotency_key=f"authorize:{idempotency_key}"
        )
        if authorization.declined:
            return GatewayResult("declined", authorization.transaction_id, authorization.error_code, authorization.message)
        capture = backend.capture(
            transaction_id=authorization.transaction_id, amount_q=amount_q, idempotency_key=f"capture:{idempotency_key}"
        )
        if capture.declined:
            return GatewayResult("declined", capture.transaction_id, capture.error_code, capture.message)
        return GatewayResult("captured", capture.transaction_id or authorization.transaction_id)

    def refund(self, *, transaction_id: str, amount_q: int, idempotency_key: str) -> GatewayResult:
        result = get_backend().refund(transaction_id=transaction_id, amount_q=amount_q, idempotency_key=idempotency_key)
        if result.declined:
            return GatewayResult("declined", result.transaction_id, result.error_code, result.message)
        return GatewayResult("refunded", result.transaction_id)
