"""Payments behind a ``PaymentBackend`` protocol, with a deterministic mock gateway.

Handlers ``payment.capture`` and ``payment.refund`` are idempotent through
order events: running one twice never charges or refunds twice.
"""

from __future__ import annotations

from omniman import conf

DEFAULT_BACKEND = "omniman.contrib.payment.backends.MockGateway"


def get_backend():
    """The configured ``PaymentBackend`` (``OMNIMAN["PAYMENT_BACKEND"]``, a dotted path)."""
    return conf.import_backend("PAYMENT_BACKEND", DEFAULT_BACKEND)
