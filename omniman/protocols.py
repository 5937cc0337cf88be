"""The extension points of the kernel, as typing Protocols.

Register implementations with :mod:`omniman.registry` in ``AppConfig.ready()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from omniman.models import Channel, Directive, Session


@runtime_checkable
class Modifier(Protocol):
    """Transforms a session during ``modify_session``: pure, deterministic, no IO.

    Modifiers run in ascending ``order`` after the ops are applied. They must
    respect ``session.pricing_policy`` (never reprice an ``"external"`` session).
    A modifier that needs data (prices, say) may define an optional
    ``prepare(*, channel, session, ctx)`` hook: it runs before any modifier,
    may read the database in bulk, and passes what it read through ``ctx``.
    """

    code: str
    order: int

    def apply(self, *, channel: Channel, session: Session, ctx: dict[str, Any]) -> None: ...


@runtime_checkable
class Validator(Protocol):
    """A gate: raises ``omniman.exceptions.ValidationError``; never mutates, no IO."""

    code: str
    stage: Literal["draft", "commit"]

    def validate(self, *, channel: Channel, session: Session, ctx: dict[str, Any]) -> None: ...


@runtime_checkable
class DirectiveHandler(Protocol):
    """Performs one side effect for a Directive topic; may do IO; must be idempotent."""

    topic: str

    def handle(self, *, message: Directive, ctx: dict[str, Any]) -> None: ...


@runtime_checkable
class IssueResolver(Protocol):
    """Resolves issues whose ``source`` it owns (instead of applying the action's ops)."""

    source: str

    def resolve(self, *, session: Session, issue: dict, action: dict, ctx: dict[str, Any]) -> Session: ...


@runtime_checkable
class TicketSource(Protocol):
    """Pickup numbers for orders, for the POS's confirmation and the kitchen board.

    Optional: ``omniman.contrib.refs`` registers one; without a source no
    ticket is shown. Called from views: one query for all the refs, no write.
    """

    def tickets_for(self, order_refs: list[str]) -> dict[str, int]: ...


@runtime_checkable
class StationSource(Protocol):
    """The kitchen station of products whose order line carries no ``meta["station"]``.

    Optional: ``omniman.contrib.catalog`` registers one. Called when an order is
    created (in the commit's transaction): one query for all the SKUs, no write.
    """

    def stations_for(self, skus: list[str]) -> dict[str, str]: ...


@runtime_checkable
class CategorySource(Protocol):
    """The category (its display name) of products, for the reports' sales by category.

    Optional: ``omniman.contrib.catalog`` registers one. Called by the report selectors: one query for all the
    SKUs, no write; a SKU without a category is left out.
    """

    def categories_for(self, skus: list[str]) -> dict[str, str]: ...


@dataclass(frozen=True)
class GatewayResult:
    """A payment gateway's answer: ``status`` ``"captured"`` / ``"refunded"`` or ``"declined"`` (with ``error_code``)."""

    status: str
    transaction_id: str = ""
    error_code: str = ""
    message: str = ""

    @property
    def declined(self) -> bool:
        return self.status == "declined"


@runtime_checkable
class PaymentGateway(Protocol):
    """Takes a bill's ``gateway`` payments (issue #15): ``omniman.contrib.payment`` registers one over its backend.

    Both calls are idempotent by ``idempotency_key`` (a retry returns the first
    answer). A refusal is a ``GatewayResult`` with status ``"declined"``; a
    gateway that cannot be reached raises (the service answers ``gateway_unavailable``).
    """

    def charge(self, *, amount_q: int, currency: str, reference: str, idempotency_key: str) -> GatewayResult: ...

    def refund(self, *, transaction_id: str, amount_q: int, idempotency_key: str) -> GatewayResult: ...


__all__ = ["Modifier", "Validator", "DirectiveHandler", "IssueResolver", "TicketSource", "PaymentGateway", "GatewayResult", "StationSource"]
