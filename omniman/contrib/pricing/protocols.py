"""What the pricing modifiers and the price check need from a price source."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from omniman.models import Channel


@runtime_checkable
class PricingBackend(Protocol):
    """Unit prices in quanta (cents) of a SKU on a channel.

    ``channel`` is a ``Channel`` or a channel code (``None``: no channel, the
    base prices only).
    """

    def get_price(self, sku: str, channel: Channel | str | None) -> int | None:
        """The unit price of ``sku`` on ``channel``, or ``None`` when it has none."""

    def get_prices(self, skus: Iterable[str], channel: Channel | str | None) -> dict[str, int]:
        """Prices of the priced SKUs among ``skus`` (unpriced ones are absent), in a constant number of queries."""


__all__ = ["PricingBackend"]
