"""Money after the items (SPEC §10): adjustments, and the one totals computation.

An **adjustment** is an explicit, audited entry that changes what the customer
owes beyond the line totals — a service charge, a discount (on a line or on the
whole), a surcharge, a void, a write-off. It is a plain dict (JSON, stored on the
session, snapshotted into the order, and on bills)::

    {"id": "<12 hex>", "kind": "service_charge"|"discount"|"surcharge"|"write_off"|"void",
     "label": str, "line_id": str ("" = the whole), "percent": "10"|None (decimal text),
     "amount_q": int (SIGNED: negative takes off), "requested_q": int|None,
     "reason": str, "actor": str, "approved_by": str, "at": ISO-8601 str, "auto": bool}

``percent`` set → ``amount_q`` is computed from what the adjustment applies to;
otherwise ``requested_q`` (a positive magnitude; ``abs(amount_q)`` when absent)
is the fixed amount asked for, and ``amount_q`` what it actually came to after the
caps (a discount never takes off more than what it applies to).

:func:`apply_adjustments` is the one computation: every screen, the API, the
order snapshot and the bill read its result. This module is pure (no models, no
I/O): Decimal math, ``ROUND_HALF_UP`` to whole quanta.

Order of application:

1. voids of a line (its value, or the amount asked, capped at what is left of it);
2. line discounts (a percent of that line's ``line_total_q``, or an amount),
   capped at what is left of the line;
3. whole discounts (a percent of the items after the line discounts, or an
   amount), capped at what is left;
4. service charges (a percent of the items after the discounts, or an amount);
5. surcharges (a percent of the items after the discounts, or an amount);
6. write-offs (the amount asked, capped at what is left; no amount = all of it).

``total_q = items_q + adjustments_q`` and is never negative. ``line_id`` is read
for discounts and voids; the other kinds apply to the whole.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from omniman.exceptions import ValidationError

SERVICE_CHARGE = "service_charge"
DISCOUNT = "discount"
SURCHARGE = "surcharge"
WRITE_OFF = "write_off"
VOID = "void"
KINDS = (SERVICE_CHARGE, DISCOUNT, SURCHARGE, WRITE_OFF, VOID)
# Kinds that take off (their amount_q is <= 0) and kinds that add (>= 0).
TAKES_OFF = frozenset({DISCOUNT, WRITE_OFF, VOID})
ADDS = frozenset({SERVICE_CHARGE, SURCHARGE})

# Error codes (omniman.exceptions.ValidationError).
INVALID_DISCOUNT = "invalid_discount"
REASON_REQUIRED = "reason_required"
LINE_NOT_FOUND = "line_not_found"
INVALID_ADJUSTMENT = "invalid_adjustment"

HUNDRED = Decimal(100)
PERCENT_PLACES = Decimal("0.01")


# -- small helpers ------------------------------------------------------------------


def new_id() -> str:
    """A fresh adjustment id: 12 hex digits."""
    return secrets.token_hex(6)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def parse_percent(value: Any, *, allow_zero: bool = False) -> Decimal | None:
    """A percent as a Decimal in (0, 100] (or [0, 100] with ``allow_zero``) with at most 2 decimal places; ``None`` otherwise."""
    if value is None or isinstance(value, bool):
        return None
    try:
        percent = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError, TypeError):
        return None
    if not percent.is_finite() or percent > HUNDRED or percent < 0 or (percent == 0 and not allow_zero):
        return None
    if percent != percent.quantize(PERCENT_PLACES):
        return None
    return percent


def percent_text(percent: Decimal | None) -> str:
    """``Decimal("10.00")`` → ``"10"``, ``Decimal("12.5")`` → ``"12.5"``; ``None`` → ``"0"``."""
    if percent is None:
        return "0"
    text = format(Decimal(percent).normalize(), "f")
    return text if text not in ("-0", "") else "0"


def percent_of(base_q: int, percent: Decimal) -> int:
    """``percent`` % of ``base_q``, rounded to a whole quantum half up."""
    return int((Decimal(int(base_q)) * Decimal(percent) / HUNDRED).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _amount(value: Any) -> int | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _requested_q(adjustment: Mapping[str, Any]) -> int | None:
    """The fixed magnitude asked for (positive), or ``None`` when there is none."""
    requested = _amount(adjustment.get("requested_q"))
    if requested is not None:
        return abs(requested)
    amount = _amount(adjustment.get("amount_q"))
    return abs(amount) if amount is not None else None


def make_adjustment(
    kind: str,
    *,
    label: str = "",
    line_id: str = "",
    percent: Any = None,
    amount_q: int | None = None,
    reason: str = "",
    actor: str = "",
    approved_by: str = "",
    auto: bool = False,
    at: str | None = None,
    adjustment_id: str | None = None,
) -> dict[str, Any]:
    """A new adjustment dict. ``amount_q`` is the magnitude asked for (the sign follows the kind)."""
    if kind not in KINDS:
        raise ValidationError(INVALID_ADJUSTMENT, _("Unknown adjustment kind."), {"kind": kind})
    parsed = parse_percent(percent, allow_zero=True) if percent is not None else None
    if percent is not None and parsed is None:
        raise ValidationError(INVALID_ADJUSTMENT, _("A percent is a number from 0 to 100 with at most 2 decimal places."), {"percent": str(percent)})
    requested = abs(int(amount_q)) if amount_q is not None and parsed is None else None
    sign = -1 if kind in TAKES_OFF else 1
    return {
        "id": adjustment_id or new_id(),
        "kind": kind,
        "label": label,
        "line_id": line_id or "",
        "percent": percent_text(parsed) if parsed is not None else None,
        "amount_q": sign * requested if requested is not None else 0,
        "requested_q": requested,
        "reason": reason or "",
        "actor": actor or "",
        "approved_by": approved_by or "",
        "at": at or now_iso(),
        "auto": bool(auto),
    }


# -- the computation -----------------------------------------------------------------


def _line_values(lines: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in lines:
        values[str(line.get("line_id", ""))] = values.get(str(line.get("line_id", "")), 0) + int(line.get("line_total_q") or 0)
    return values


def _checked_percent(adjustment: Mapping[str, Any]) -> Decimal | None:
    raw = adjustment.get("percent")
    if raw is None or raw == "":
        return None
    percent = parse_percent(raw, allow_zero=True)
    if percent is None:
        raise ValidationError(INVALID_ADJUSTMENT, _("A percent is a number from 0 to 100 with at most 2 decimal places."), {"id": adjustment.get("id"), "percent": str(raw)})
    return percent


def apply_adjustments(
    lines: Iterable[Mapping[str, Any]], adjustments: Iterable[Mapping[str, Any]], *, currency: str | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The adjustments with their ``amount_q`` filled in (same order), and the totals.

    Totals: ``{"items_q", "discount_q" (>= 0), "service_percent" (text),
    "service_q", "surcharge_q", "void_q" (>= 0), "write_off_q" (>= 0),
    "adjustments_q" (signed sum), "total_q"}`` (+ ``"currency"`` when given).
    """
    line_values = _line_values(lines)
    items_q = sum(line_values.values())
    result = [dict(adjustment) for adjustment in adjustments]
    for adjustment in result:
        if adjustment.get("kind") not in KINDS:
            raise ValidationError(INVALID_ADJUSTMENT, _("Unknown adjustment kind."), {"id": adjustment.get("id"), "kind": adjustment.get("kind")})
        adjustment.setdefault("line_id", "")
        adjustment["line_id"] = adjustment["line_id"] or ""

    left_of_line = dict(line_values)

    def take_from_line(adjustment: dict[str, Any], wanted: int) -> int:
        line_id = adjustment["line_id"]
        if line_id not in left_of_line:
            return 0  # the line is gone: the adjustment applies to nothing
        taken = max(0, min(wanted, left_of_line[line_id]))
        left_of_line[line_id] -= taken
        return taken

    # 1-2. Voids, then discounts, of a line.
    for kind in (VOID, DISCOUNT):
        for adjustment in result:
            if adjustment["kind"] != kind or not adjustment["line_id"]:
                continue
            percent = _checked_percent(adjustment)
            base = line_values.get(adjustment["line_id"], 0)
            wanted = percent_of(base, percent) if percent is not None else (_requested_q(adjustment) or 0)
            adjustment["amount_q"] = -take_from_line(adjustment, wanted)

    after_lines = sum(left_of_line.values())
    left = after_lines

    # 3. Whole voids and discounts (of the items after the line ones).
    for kind in (VOID, DISCOUNT):
        for adjustment in result:
            if adjustment["kind"] != kind or adjustment["line_id"]:
                continue
            percent = _checked_percent(adjustment)
            wanted = percent_of(after_lines, percent) if percent is not None else (_requested_q(adjustment) or 0)
            taken = max(0, min(wanted, left))
            left -= taken
            adjustment["amount_q"] = -taken

    after_discounts = left
    service_percent = Decimal(0)

    # 4-5. Service charges, then surcharges (of the items after the discounts).
    for kind in (SERVICE_CHARGE, SURCHARGE):
        for adjustment in result:
            if adjustment["kind"] != kind:
                continue
            percent = _checked_percent(adjustment)
            amount = percent_of(after_discounts, percent) if percent is not None else (_requested_q(adjustment) or 0)
            adjustment["amount_q"] = amount
            left += amount
            if kind == SERVICE_CHARGE and percent is not None:
                service_percent += percent

    # 6. Write-offs: what is left (or the amount asked, capped at it).
    for adjustment in result:
        if adjustment["kind"] != WRITE_OFF:
            continue
        requested = _requested_q(adjustment)
        percent = _checked_percent(adjustment)
        if percent is not None:
            wanted = percent_of(left, percent)
        elif requested:
            wanted = requested
        else:
            wanted = left
        taken = max(0, min(wanted, left))
        left -= taken
        adjustment["amount_q"] = -taken

    return result, totals_of(items_q, result, currency=currency, service_percent=service_percent)


def totals_of(
    items_q: int, applied: Iterable[Mapping[str, Any]], *, currency: str | None = None, service_percent: Decimal | None = None
) -> dict[str, Any]:
    """The totals of adjustments whose amounts are already filled (an order's snapshot), without computing them again."""
    applied = list(applied)

    def sum_of(kind: str) -> int:
        return sum(int(a.get("amount_q") or 0) for a in applied if a.get("kind") == kind)

    if service_percent is None:
        service_percent = sum(
            (parse_percent(a.get("percent"), allow_zero=True) or Decimal(0) for a in applied if a.get("kind") == SERVICE_CHARGE),
            Decimal(0),
        )
    adjustments_q = sum(int(a.get("amount_q") or 0) for a in applied)
    totals: dict[str, Any] = {
        "items_q": int(items_q),
        "discount_q": -sum_of(DISCOUNT),
        "service_percent": percent_text(service_percent),
        "service_q": sum_of(SERVICE_CHARGE),
        "surcharge_q": sum_of(SURCHARGE),
        "void_q": -sum_of(VOID),
        "write_off_q": -sum_of(WRITE_OFF),
        "adjustments_q": adjustments_q,
        "total_q": max(0, int(items_q) + adjustments_q),
    }
    if currency is not None:
        totals["currency"] = currency
    return totals


# -- discounts: validation and the approval rule -------------------------------------


def discount_base_q(lines: Iterable[Mapping[str, Any]], adjustments: Iterable[Mapping[str, Any]], line_id: str = "") -> int:
    """What a new discount on ``line_id`` (``""`` = the whole) could still take off, after the adjustments already there."""
    lines = list(lines)
    applied, _totals = apply_adjustments(lines, adjustments)
    if line_id:
        value = _line_values(lines).get(line_id, 0)
        return value + sum(int(a["amount_q"]) for a in applied if a["line_id"] == line_id and a["kind"] in (VOID, DISCOUNT))
    items_q = sum(_line_values(lines).values())
    return items_q + sum(int(a["amount_q"]) for a in applied if a["kind"] in (VOID, DISCOUNT))


def validate_discount(
    lines: Iterable[Mapping[str, Any]],
    adjustments: Iterable[Mapping[str, Any]],
    *,
    line_id: str = "",
    percent: Any = None,
    amount_q: Any = None,
    reason: str = "",
) -> tuple[Decimal | None, int | None]:
    """Check a discount asked for; returns ``(percent, amount_q)`` parsed (one of them ``None``).

    Raises ``ValidationError``: ``line_not_found`` (no such line),
    ``invalid_discount`` (percent not in (0, 100], amount <= 0, both or neither
    given, amount over what it applies to), ``reason_required``.
    """
    lines = list(lines)
    adjustments = list(adjustments)
    if line_id and line_id not in _line_values(lines):
        raise ValidationError(LINE_NOT_FOUND, _("No line with this id."), {"line_id": line_id})
    given_percent = percent not in (None, "")
    given_amount = amount_q not in (None, "")
    if given_percent == given_amount:
        raise ValidationError(INVALID_DISCOUNT, _("Give either a percent or an amount."), {"field": "percent"})
    parsed_percent = None
    parsed_amount = None
    if given_percent:
        parsed_percent = parse_percent(percent)
        if parsed_percent is None:
            raise ValidationError(
                INVALID_DISCOUNT,
                _("A discount percent is a number greater than 0 and at most 100, with at most 2 decimal places."),
                {"field": "percent", "value": str(percent)[:40]},
            )
    else:
        parsed_amount = _amount(amount_q)
        if parsed_amount is None or parsed_amount <= 0:
            raise ValidationError(
                INVALID_DISCOUNT, _("A discount amount is a whole number of cents greater than 0."), {"field": "amount_q", "value": str(amount_q)[:40]}
            )
        base = discount_base_q(lines, adjustments, line_id)
        if parsed_amount > base:
            raise ValidationError(
                INVALID_DISCOUNT,
                _("The discount is more than what it applies to."),
                {"field": "amount_q", "amount_q": parsed_amount, "base_q": base},
            )
    if not (reason or "").strip():
        raise ValidationError(REASON_REQUIRED, _("Say why (a reason is required)."), {"field": "reason"})
    return parsed_percent, parsed_amount


def effective_discount_percent(lines: Iterable[Mapping[str, Any]], adjustments: Iterable[Mapping[str, Any]], new: Mapping[str, Any]) -> Decimal:
    """The percent the discounts on ``new``'s target take off once ``new`` is applied (for the approval rule).

    Cumulative, so that two small discounts cannot pass for one large one:
    on a line, everything taken off that line over its ``line_total_q``; on
    the whole, everything the discounts and voids take off over ``items_q``.
    Rounded to 2 places, half up. 0 when the target is worth nothing.
    """
    lines = list(lines)
    applied, totals = apply_adjustments(lines, [*adjustments, new])
    line_id = new.get("line_id") or ""
    if line_id:
        base = _line_values(lines).get(line_id, 0)
        taken = -sum(int(a["amount_q"]) for a in applied if a["line_id"] == line_id and a["kind"] == DISCOUNT)
    else:
        base = totals["items_q"]
        taken = totals["discount_q"]
    if base <= 0:
        return Decimal(0)
    return (Decimal(taken) * HUNDRED / Decimal(base)).quantize(PERCENT_PLACES, rounding=ROUND_HALF_UP)


def prune_adjustments(lines: Iterable[Mapping[str, Any]], adjustments: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The adjustments without those whose line is gone."""
    line_ids = set(_line_values(lines))
    return [dict(a) for a in adjustments if not a.get("line_id") or a["line_id"] in line_ids]
