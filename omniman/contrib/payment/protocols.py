"""What Omniman needs from a payment provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# PaymentResult.status values.
AUTHORIZED = "authorized"
CAPTURED = "captured"
REFUNDED = "refunded"
DECLINED = "declined"
UNKNOWN = "unknown"  # status(): the provider knows nothing of this reference


@dataclass(frozen=True)
class PaymentResult:
    """The provider's answer to one operation (or, from ``status()``, the payment's state).

    A *decline* is an answer, not an error: the provider refused (card
    declined, amount too high…) and asking again will not change its mind.
    A provider that cannot be reached raises instead, so the directive retries.
    """

    status: str
    transaction_id: str = ""
    amount_q: int = 0
    currency: str = ""
    error_code: str = ""
    message: str = ""

    @property
    def declined(self) -> bool:
        return self.status == DECLINED


@runtime_checkable
class PaymentBackend(Protocol):
    """A payment provider. Every operation takes an ``idempotency_key``: a
    second call with the same key returns the first answer instead of moving
    money again (real providers do this; the mock gateway does too).

    Raise ``omniman.contrib.payment.exceptions.PaymentError("gateway_unavailable")``
    (or any exception) when the provider cannot be reached: the directive
    is retried with backoff. Return a ``PaymentResult`` with status
    ``"declined"`` when the provider refuses: the handlers record it and stop.
    """

    def authorize(self, *, amount_q: int, currency: str, reference: str, idempotency_key: str) -> PaymentResult:
        """Reserve ``amount_q`` for ``reference`` (an order ref); ``status`` ``authorized`` or ``declined``."""

    def capture(self, *, transaction_id: str, amount_q: int, idempotency_key: str) -> PaymentResult:
        """Take the money of an authorization; ``status`` ``captured`` or ``declined``."""

    def refund(self, *, transaction_id: str, amount_q: int, idempotency_key: str) -> PaymentResult:
        """Give back (part of) a capture; ``status`` ``refunded`` or ``declined``."""

    def status(self, reference: str) -> PaymentResult:
        """The payment's current state for ``reference`` (``unknown`` if none)."""


__all__ = ["PaymentBackend", "PaymentResult", "AUTHORIZED", "CAPTURED", "REFUNDED", "DECLINED", "UNKNOWN"]
