"""Line modifiers: the options a customer chose for a product (milk type, doneness, extras, "no onions").

A line carries them in ``meta["modifiers"]``, a list of the chosen options in
the catalog's display order, each::

    {"group": "doneness", "group_name": "Doneness", "option": "medium", "name": "Medium", "price_q": 0}

(plus ``"sku"`` when the option has one). Callers send only ``group`` and
``option`` (an object, or the text ``"group:option"``); the pricing modifier
(``omniman.contrib.pricing.modifiers.LineOptionsModifier``) rewrites each entry
from the catalog — names and price deltas never come from the client — and
refuses a line whose choices the catalog does not allow.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _

from omniman.contrib.catalog.protocols import CatalogOptionGroup
from omniman.exceptions import ValidationError

MODIFIERS = "modifiers"
MAX_MODIFIERS = 32


def requested(line_id: Any, raw: Any) -> list[tuple[str, str]]:
    """``meta["modifiers"]`` as (group, option) pairs; ``invalid_field`` when it is not a list of them."""
    if raw is None or raw == []:
        return []

    def bad() -> ValidationError:
        return ValidationError(
            "invalid_field",
            _("meta.modifiers must be a list of {group, option} objects or “group:option” texts."),
            {"field": "meta.modifiers", "line_id": line_id},
        )

    if not isinstance(raw, list) or len(raw) > MAX_MODIFIERS:
        raise bad()
    pairs: list[tuple[str, str]] = []
    for entry in raw:
        if isinstance(entry, str) and entry.count(":") == 1:
            group, option = entry.split(":")
        elif isinstance(entry, dict):
            group, option = entry.get("group"), entry.get("option")
        else:
            raise bad()
        if not isinstance(group, str) or not isinstance(option, str) or not group.strip() or not option.strip():
            raise bad()
        pair = (group.strip(), option.strip())
        if pair in pairs:
            raise bad()
        pairs.append(pair)
    return pairs


def resolve(
    *, line_id: Any, sku: str, name: str, pairs: list[tuple[str, str]], groups: list[CatalogOptionGroup]
) -> list[dict[str, Any]]:
    """The canonical ``meta["modifiers"]`` of a line of ``sku`` that chose ``pairs`` among its ``groups``.

    Errors (``ValidationError``, nothing is written): ``unknown_option`` (a
    group or option the product does not offer, or no longer does),
    ``options_required`` (a required group with fewer than its minimum),
    ``too_many_options`` (more than a group's maximum).
    """
    by_code = {group.code: group for group in groups}
    chosen: dict[str, list[str]] = {}
    for group_code, option_code in pairs:
        group = by_code.get(group_code)
        if group is None or option_code not in {option.code for option in group.options}:
            raise ValidationError(
                "unknown_option",
                _("%(product)s has no option “%(option)s”.") % {"product": name, "option": f"{group_code}:{option_code}"},
                {"line_id": line_id, "sku": sku, "group": group_code, "option": option_code, "field": "modifiers"},
            )
        chosen.setdefault(group_code, []).append(option_code)
    entries: list[dict[str, Any]] = []
    for group in groups:
        picked = chosen.get(group.code, [])
        if len(picked) < group.min_choices:
            raise ValidationError(
                "options_required",
                _("Choose %(group)s for %(product)s.") % {"group": group.name, "product": name},
                {"line_id": line_id, "sku": sku, "group": group.code, "min": group.min_choices, "field": "modifiers"},
            )
        if len(picked) > group.max_choices:
            raise ValidationError(
                "too_many_options",
                _("%(product)s takes at most %(max)s of %(group)s.")
                % {"product": name, "max": group.max_choices, "group": group.name},
                {"line_id": line_id, "sku": sku, "group": group.code, "max": group.max_choices, "field": "modifiers"},
            )
        for option in group.options:
            if option.code in picked:
                entry = {
                    "group": group.code,
                    "group_name": group.name,
                    "option": option.code,
                    "name": option.name,
                    "price_q": option.price_q,
                }
                if option.sku:
                    entry["sku"] = option.sku
                entries.append(entry)
    return entries


def identity(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """What makes two lines of one SKU different lines: their (group, option) choices, in order."""
    return [(entry.get("group"), entry.get("option")) for entry in (meta.get(MODIFIERS) or []) if isinstance(entry, dict)]
