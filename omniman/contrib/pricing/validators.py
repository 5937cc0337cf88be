"""The commit gate: an internal session never sells an unpriced line at 0 by accident."""

from __future__ import annotations

from typing import Any

from omniman.contrib.pricing.modifiers import PRICE_MISSING
from omniman.exceptions import ValidationError
from omniman.models import Channel


class PricedValidator:
    """Refuses to commit an internal session that has a ``price_missing`` line.

    Reads the session only (validators do no IO): the flag is what
    ``ItemPricingModifier`` wrote at this ``rev``. The commit answers
    ``CommitError("validation_failed")`` with this ``price_missing`` error in
    ``context["validation"]``.
    """

    code = "pricing.priced"
    stage = "commit"

    def validate(self, *, channel: Channel, session: Any, ctx: dict[str, Any]) -> None:
        if session.pricing_policy != Channel.PricingPolicy.INTERNAL:
            return
        unpriced = [line for line in session.lines if (line.get("meta") or {}).get(PRICE_MISSING)]
        if unpriced:
            names = ", ".join(str(line.get("name") or line["sku"]) for line in unpriced)
            raise ValidationError(
                "price_missing",
                f"No price for: {names}. Remove or replace these lines, or override their price.",
                {"line_ids": [line["line_id"] for line in unpriced], "skus": [line["sku"] for line in unpriced]},
            )
