"""Errors of the payment app (codes documented in docs/contrib/payment.rst)."""

from __future__ import annotations

from omniman.exceptions import OmnimanError


class PaymentError(OmnimanError):
    """The payment provider could not answer, or was asked something it cannot do.

    Codes: ``gateway_unavailable`` (transient: the directive retries),
    ``idempotency_conflict`` (a key reused with other parameters),
    ``order_not_found`` (a payment directive names no order).
    """


__all__ = ["PaymentError"]
