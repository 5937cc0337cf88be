"""Internal prices: per-channel price lists over the catalog, the pricing modifiers and the price check."""

from __future__ import annotations

from typing import Any

from omniman import conf

DEFAULT_BACKEND = "omniman.contrib.pricing.backends.CatalogPricingBackend"


def get_pricing_backend():
    """The configured ``PricingBackend`` (``OMNIMAN["PRICING_BACKEND"]``, a dotted path)."""
    return conf.import_backend("PRICING_BACKEND", DEFAULT_BACKEND)


def pricing_config(channel: Any) -> dict[str, Any] | None:
    """The channel's ``config["pricing"]`` object, or ``None`` when the channel does not use this app.

    ``"pricing": {}`` (or ``true``) is enough to switch the app on for a channel.
    """
    value = (getattr(channel, "config", None) or {}).get("pricing")
    if value is True:
        return {}
    return value if isinstance(value, dict) else None
