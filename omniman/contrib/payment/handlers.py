"""Directive handlers: ``payment.capture`` (post-commit) and ``payment.refund`` (``on_enter``)."""

from __future__ import annotations

from typing import Any

from omniman.contrib.payment.services import PaymentService


class CaptureHandler:
    """Post-commit: ``{"order_ref", "channel_code", "session_key"}``."""

    topic = "payment.capture"
    own_transaction = True  # calls an outside service: never inside the engine's batch transaction

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        PaymentService.capture(message.payload.get("order_ref", ""), actor=ctx.get("actor", "system"))


class RefundHandler:
    """``order_flow.on_enter`` (e.g. ``cancelled``): ``{"order_ref", "from", "to"}``."""

    topic = "payment.refund"
    own_transaction = True  # calls an outside service: never inside the engine's batch transaction

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        PaymentService.refund(message.payload.get("order_ref", ""), actor=ctx.get("actor", "system"))


HANDLERS = (CaptureHandler, RefundHandler)
