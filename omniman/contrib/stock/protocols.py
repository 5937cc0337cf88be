"""What the stock handlers need from a stock system: availability, holds, sales."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

# What ``check_availability`` answers for a SKU whose stock is not tracked.
UNLIMITED = Decimal("Infinity")


@dataclass(frozen=True)
class Hold:
    """A reservation of ``qty`` units of ``sku`` for ``reference`` (a session key) until ``expires_at``."""

    id: int
    sku: str
    qty: Decimal
    reference: str
    line_id: str
    status: str  # "active" | "fulfilled" | "released" | "expired"
    expires_at: datetime


@dataclass(frozen=True)
class HoldReplacement:
    """What ``replace_holds`` did: the availability it found, and the reference's active holds after it (SKU order)."""

    available: dict[str, Decimal]
    holds: list[Hold]


@runtime_checkable
class StockBackend(Protocol):
    """A stock system as the ``stock.*`` handlers use it.

    Quantities are ``Decimal``. Every method is safe to call twice: a second
    release or fulfilment, or a second ``record_sale``/``restore_sale`` of one
    order, changes nothing.

    The bulk methods (``create_holds``, ``replace_holds``,
    ``fulfill_holds_for_reference``) let the handlers work in a number of
    round trips that does not depend on the number of SKUs. The handlers fall
    back to the single-item methods for a backend written before they
    existed.
    """

    def check_availability(
        self, skus_qty: Mapping[str, Decimal], *, reference: str = "", lock: bool = True
    ) -> dict[str, Decimal]:
        """Units of each SKU that ``reference`` may hold: on hand minus the others' live holds.

        ``UNLIMITED`` for a SKU whose stock is not tracked; never negative. With
        ``lock`` the answer stays true until the caller's transaction ends
        (nobody else can hold those SKUs meanwhile).
        """

    def create_hold(
        self, sku: str, qty: Decimal, *, reference: str, line_id: str = "", expires_at: datetime
    ) -> Hold:
        """Reserve ``qty`` units; ``OmnimanError("insufficient_stock")`` if they are not free."""

    def create_holds(
        self,
        skus_qty: Mapping[str, Decimal],
        *,
        reference: str,
        line_ids: Mapping[str, str] | None = None,
        expires_at: datetime,
    ) -> list[Hold]:
        """``create_hold`` for several SKUs at once, all or none; the holds in SKU order."""

    def replace_holds(
        self,
        reference: str,
        skus_qty: Mapping[str, Decimal],
        *,
        line_ids: Mapping[str, str] | None = None,
        expires_at: datetime,
    ) -> HoldReplacement:
        """Make ``reference``'s active holds, per tracked SKU, ``skus_qty`` or what is free if less.

        A backend may keep a live hold that already matches (the database
        backend changes only what differs, and extends kept holds when less
        than half of the time asked for is left); each returned hold says its
        own ``expires_at``.

        ``available`` is what ``check_availability(skus_qty, reference=reference)``
        answers at that moment; as with ``lock``, it stays true until the
        caller's transaction ends.
        """

    def release_hold(self, hold_id: int) -> bool:
        """Free an active hold; ``False`` if it was no longer active."""

    def fulfill_hold(self, hold_id: int) -> bool:
        """Mark an active hold as turned into a sale; ``False`` if it was no longer active."""

    def release_holds_for_reference(self, reference: str) -> list[int]:
        """Free every active hold of ``reference``; returns their ids."""

    def fulfill_holds_for_reference(self, reference: str) -> list[int]:
        """Mark every active hold of ``reference`` as turned into a sale; their ids in SKU order."""

    def holds_for_reference(self, reference: str) -> list[Hold]:
        """The active holds of ``reference`` (expired by time or not)."""

    def record_sale(self, order_ref: str, skus_qty: Mapping[str, Decimal], *, actor: str = "") -> dict[str, Decimal]:
        """Take sold units off the stock, once per order; returns what this call took."""

    def restore_sale(self, order_ref: str, *, actor: str = "") -> dict[str, Decimal]:
        """Put back what ``record_sale`` took for the order, once; returns what this call put back."""

    def release_expired_holds(self, *, dry_run: bool = False) -> int:
        """Mark active holds past ``expires_at`` as expired; returns how many (would be) expired."""


__all__ = ["Hold", "HoldReplacement", "StockBackend", "UNLIMITED"]
