"""The mock gateway: a deterministic, database-backed stand-in for a payment provider.

What it answers depends only on what a real provider would see — the amount,
the idempotency key — and on one setting, so tests and demos can make it
decline or fail on purpose::

    OMNIMAN = {
        "PAYMENT_MOCK": {
            "mode": "approve",     # "decline": refuse every new operation; "fail": unreachable
            "decline_cents": 13,   # an authorization of N,13 is declined ("card_declined")
            "fail_cents": 66,      # an authorization of N,66 finds the gateway unreachable
        },
    }

Rules, in order: ``mode="fail"`` raises ``PaymentError("gateway_unavailable")``
on every call (a network failure happens before the provider remembers
anything, so replays fail too); a key seen before returns the stored answer;
``mode="decline"`` declines every new operation; an authorization whose
cents (``amount_q % 100``) equal ``fail_cents`` raises, equal to
``decline_cents`` is declined. ``None`` turns a cents rule off.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.db import IntegrityError, transaction

from omniman import conf
from omniman.contrib.payment.exceptions import PaymentError
from omniman.contrib.payment.models import MockTransaction
from omniman.contrib.payment.protocols import AUTHORIZED, CAPTURED, DECLINED, REFUNDED, UNKNOWN, PaymentResult

MOCK_DEFAULTS: dict[str, Any] = {"mode": "approve", "decline_cents": 13, "fail_cents": 66}
MODES = ("approve", "decline", "fail")


def mock_settings() -> dict[str, Any]:
    """``OMNIMAN["PAYMENT_MOCK"]`` over the defaults (read at call time)."""
    settings = {**MOCK_DEFAULTS, **(conf.get("PAYMENT_MOCK", {}) or {})}
    if settings["mode"] not in MODES:
        raise PaymentError("invalid_config", f"PAYMENT_MOCK mode must be one of {MODES}.", {"mode": settings["mode"]})
    return settings


def _mock_id(prefix: str, key: str) -> str:
    return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


def _result(row: MockTransaction) -> PaymentResult:
    return PaymentResult(
        status=row.status,
        transaction_id=row.transaction_id,
        amount_q=row.amount_q,
        currency=row.currency,
        error_code=row.error_code,
        message=row.message,
    )


class MockGateway:
    """``PaymentBackend`` for development, demos and tests; never moves real money."""

    @transaction.atomic
    def authorize(self, *, amount_q: int, currency: str, reference: str, idempotency_key: str) -> PaymentResult:
        settings = self._reachable()
        replay = self._replay(idempotency_key, MockTransaction.Kind.AUTHORIZE, reference=reference, amount_q=amount_q)
        if replay is not None:
            return replay
        payment_id = _mock_id("mockpay", idempotency_key)
        row = MockTransaction(
            idempotency_key=idempotency_key,
            kind=MockTransaction.Kind.AUTHORIZE,
            reference=reference,
            payment_id=payment_id,
            transaction_id=payment_id,
            status=AUTHORIZED,
            amount_q=amount_q,
            currency=currency,
        )
        cents = int(amount_q) % 100
        if settings["fail_cents"] is not None and cents == int(settings["fail_cents"]):
            raise PaymentError(
                "gateway_unavailable",
                f"Mock gateway: amounts ending in ,{cents:02d} find the gateway unreachable.",
                {"reference": reference, "amount_q": amount_q},
            )
        if amount_q <= 0:
            self._decline(row, "invalid_amount", "The amount must be positive.")
        elif settings["mode"] == "decline":
            self._decline(row, "card_declined", "Mock gateway in decline mode.")
        elif settings["decline_cents"] is not None and cents == int(settings["decline_cents"]):
            self._decline(row, "card_declined", f"Mock gateway: amounts ending in ,{cents:02d} are declined.")
        return self._record(row)

    @transaction.atomic
    def capture(self, *, transaction_id: str, amount_q: int, idempotency_key: str) -> PaymentResult:
        settings = self._reachable()
        replay = self._replay(idempotency_key, MockTransaction.Kind.CAPTURE, payment_id=transaction_id, amount_q=amount_q)
        if replay is not None:
            return replay
        authorization = self._locked(transaction_id, MockTransaction.Kind.AUTHORIZE, AUTHORIZED)
        row = MockTransaction(
            idempotency_key=idempotency_key,
            kind=MockTransaction.Kind.CAPTURE,
            reference=authorization.reference if authorization else "",
            payment_id=transaction_id,
            transaction_id=transaction_id,
            status=CAPTURED,
            amount_q=amount_q,
            currency=authorization.currency if authorization else "",
        )
        if authorization is None:
            self._decline(row, "unknown_transaction", "No such authorization.")
        elif MockTransaction.objects.filter(payment_id=transaction_id, kind=MockTransaction.Kind.CAPTURE, status=CAPTURED).exists():
            self._decline(row, "already_captured", "This authorization was captured already.")
        elif not 0 < amount_q <= authorization.amount_q:
            self._decline(row, "amount_exceeds_authorization", "The capture must be positive and at most the authorized amount.")
        elif settings["mode"] == "decline":
            self._decline(row, "capture_declined", "Mock gateway in decline mode.")
        return self._record(row)

    @transaction.atomic
    def refund(self, *, transaction_id: str, amount_q: int, idempotency_key: str) -> PaymentResult:
        settings = self._reachable()
        replay = self._replay(idempotency_key, MockTransaction.Kind.REFUND, payment_id=transaction_id, amount_q=amount_q)
        if replay is not None:
            return replay
        capture = self._locked(transaction_id, MockTransaction.Kind.CAPTURE, CAPTURED)
        row = MockTransaction(
            idempotency_key=idempotency_key,
            kind=MockTransaction.Kind.REFUND,
            reference=capture.reference if capture else "",
            payment_id=transaction_id,
            transaction_id=_mock_id("mockrf", idempotency_key),
            status=REFUNDED,
            amount_q=amount_q,
            currency=capture.currency if capture else "",
        )
        refunded = sum(
            MockTransaction.objects.filter(
                payment_id=transaction_id, kind=MockTransaction.Kind.REFUND, status=REFUNDED
            ).values_list("amount_q", flat=True)
        )
        if capture is None:
            self._decline(row, "not_captured", "Only a captured payment can be refunded.")
        elif not 0 < amount_q <= capture.amount_q - refunded:
            self._decline(row, "amount_exceeds_capture", "The refund must be positive and at most what is left of the capture.")
        elif settings["mode"] == "decline":
            self._decline(row, "refund_declined", "Mock gateway in decline mode.")
        return self._record(row)

    def status(self, reference: str) -> PaymentResult:
        rows = list(MockTransaction.objects.filter(reference=reference).exclude(status=DECLINED))
        captured = [r for r in rows if r.kind == MockTransaction.Kind.CAPTURE]
        refunded = sum(r.amount_q for r in rows if r.kind == MockTransaction.Kind.REFUND)
        authorized = [r for r in rows if r.kind == MockTransaction.Kind.AUTHORIZE]
        if captured:
            capture = captured[-1]
            if refunded >= capture.amount_q:
                return PaymentResult(REFUNDED, capture.transaction_id, refunded, capture.currency)
            return PaymentResult(CAPTURED, capture.transaction_id, capture.amount_q - refunded, capture.currency)
        if authorized:
            return _result(authorized[-1])
        declined = MockTransaction.objects.filter(reference=reference, status=DECLINED).order_by("-id").first()
        if declined is not None:
            return _result(declined)
        return PaymentResult(UNKNOWN)

    # -- internals --------------------------------------------------------------

    @staticmethod
    def _reachable() -> dict[str, Any]:
        settings = mock_settings()
        if settings["mode"] == "fail":
            raise PaymentError("gateway_unavailable", "Mock gateway in fail mode: the provider cannot be reached.")
        return settings

    @staticmethod
    def _replay(key: str, kind: str, **expected: Any) -> PaymentResult | None:
        """The stored answer for ``key``, if the gateway has seen it (with the same parameters)."""
        if not key:
            raise PaymentError("idempotency_conflict", "An idempotency key is required.", {"idempotency_key": key})
        row = MockTransaction.objects.filter(idempotency_key=key).first()
        if row is None:
            return None
        seen = {"kind": row.kind, **{name: getattr(row, name) for name in expected}}
        if seen != {"kind": kind, **expected}:
            raise PaymentError(
                "idempotency_conflict",
                "This idempotency key was used for another operation.",
                {"idempotency_key": key, "first": seen, "now": {"kind": kind, **expected}},
            )
        return _result(row)

    @staticmethod
    def _locked(payment_id: str, kind: str, status: str) -> MockTransaction | None:
        return (
            MockTransaction.objects.select_for_update()
            .filter(payment_id=payment_id, kind=kind, status=status)
            .order_by("id")
            .first()
        )

    @staticmethod
    def _decline(row: MockTransaction, code: str, message: str) -> None:
        row.status = DECLINED
        row.error_code = code
        row.message = message

    def _record(self, row: MockTransaction) -> PaymentResult:
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            # The same key arrived concurrently: the first one's answer stands.
            expected = {"reference": row.reference} if row.kind == MockTransaction.Kind.AUTHORIZE else {"payment_id": row.payment_id}
            replay = self._replay(row.idempotency_key, row.kind, amount_q=row.amount_q, **expected)
            if replay is None:
                raise
            return replay
        return _result(row)


__all__ = ["MockGateway", "MOCK_DEFAULTS", "mock_settings"]
