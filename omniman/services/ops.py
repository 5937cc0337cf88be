"""The session ops. Each edits the locked session in memory; the pipeline saves.

Ops raise ``ValidationError`` (bad input) or ``SessionError("locked")``; any
error aborts the whole modification before anything is written.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from omniman.exceptions import SessionError, ValidationError
from omniman.models import Channel, Session
from omniman.monetary import MAX_QTY, parse_price_q, parse_qty, qty_to_str, to_decimal
from omniman.services._common import ensure_data_size, ensure_json
from omniman.services.kitchen import require_not_sold_out

DELTA_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?")
RESERVED_DATA_KEYS = ("checks", "issues")
RESERVED_META_KEYS = ("price_override",)
PATH_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
MAX_SKU_LENGTH = 64
MAX_NAME_LENGTH = 255

# Ops that change items: refused on a session whose edit policy is "locked".
ITEM_OPS = frozenset(
    {
        "add_line",
        "remove_line",
        "set_qty",
        "adjust_qty",
        "replace_sku",
        "merge_lines",
        "set_line_meta",
        "override_price",
    }
)


# -- field readers -------------------------------------------------------------


def _required(op: dict, field: str) -> Any:
    value = op.get(field)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError("missing_field", _("%(op)s: %(field)s is required.")
            % {"op": op.get('op'), "field": repr(field)}, {"field": field})
    return value


def _sku(op: dict, field: str = "sku") -> str:
    value = _required(op, field)
    if not isinstance(value, str) or len(value) > MAX_SKU_LENGTH:
        raise ValidationError(
            "invalid_field", _("%(field)s must be text of at most %(max_sku_length)s characters.")
                % {"field": field, "max_sku_length": MAX_SKU_LENGTH}, {"field": field}
        )
    return value.strip()


def _name(op: dict, default: str) -> str:
    value = op.get("name")
    if value is None or value == "":
        return default
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH:
        raise ValidationError(
            "invalid_field", _("name must be text of at most %(max_name_length)s characters.")
                % {"max_name_length": MAX_NAME_LENGTH}, {"field": "name"}
        )
    return value.strip() or default


def _qty(op: dict, field: str = "qty") -> str:
    value = _required(op, field)
    qty = parse_qty(value)
    if qty is None:
        raise ValidationError(
            "invalid_qty",
            _("%(field)s must be a positive number with at most 3 decimal places (and at most %(max_qty)s).")
            % {"field": field, "max_qty": MAX_QTY},
            {"field": field, "value": str(value)},
        )
    return qty_to_str(qty)


def _price(op: dict, field: str = "unit_price_q") -> int:
    value = op.get(field)
    price = parse_price_q(value)
    if price is None:
        raise ValidationError(
            "invalid_price", _("%(field)s must be a non-negative integer amount in cents.")
                % {"field": field}, {"field": field, "value": str(value)}
        )
    return price


def _line_id(op: dict, field: str = "line_id") -> str:
    value = _required(op, field)
    if not isinstance(value, str):
        raise ValidationError("unknown_line_id", context={"field": field, "line_id": str(value)})
    return value


def _path(op: dict, reserved: tuple[str, ...]) -> list[str]:
    value = _required(op, "path")
    if not isinstance(value, str):
        raise ValidationError("invalid_path", _("path must be dot-separated text."), {"path": str(value)})
    parts = value.split(".")
    if not all(PATH_SEGMENT.match(part) for part in parts):
        raise ValidationError(
            "invalid_path", _("Each path segment is 1-64 letters, digits, '_' or '-'."), {"path": value}
        )
    if parts[0] in reserved:
        raise ValidationError("reserved_path", _("%(key)s is reserved.") % {"key": repr(parts[0])}, {"path": value})
    return parts


def _set_path(target: dict, parts: list[str], value: Any, *, path: str) -> None:
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            raise ValidationError("invalid_path", _("%(part)s is not an object.")
                % {"part": repr(part)}, {"path": path})
        node = child
    node[parts[-1]] = value


def find_line(session: Session, line_id: str) -> dict[str, Any]:
    """The session's stored line ``line_id``; ``ValidationError("unknown_line_id")`` if it is not there."""
    for line in session.lines:
        if line["line_id"] == line_id:
            return line
    raise ValidationError("unknown_line_id", _("No line %(line_id)s.")
        % {"line_id": repr(line_id)}, {"line_id": line_id})


def _new_line_id(session: Session) -> str:
    taken = {line["line_id"] for line in session.lines}
    while True:
        line_id = f"L-{secrets.token_hex(4)}"
        if line_id not in taken:
            return line_id


def _meta(op: dict) -> dict[str, Any]:
    meta = op.get("meta")
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ValidationError("invalid_field", _("meta must be an object."), {"field": "meta"})
    for key in RESERVED_META_KEYS:
        if key in meta:
            raise ValidationError("reserved_path", _("meta.%(key)s is written by override_price only.")
                % {"key": key}, {"path": key})
    return ensure_json(dict(meta), "meta")


# -- the ops -------------------------------------------------------------------


# What makes two lines of one SKU different lines (``add_line`` with ``merge``).
LINE_IDENTITY_KEYS = ("modifiers", "note", "hold", "course")


def _identity(meta: dict[str, Any]) -> tuple:
    def choices(value: Any) -> Any:
        if not isinstance(value, list):
            return value or None
        pairs = []
        for entry in value:
            if isinstance(entry, dict):
                pairs.append((str(entry.get("group")), str(entry.get("option"))))
            elif isinstance(entry, str) and ":" in entry:
                group, option = entry.split(":", 1)
                pairs.append((group.strip(), option.strip()))
            else:
                pairs.append((str(entry), ""))
        return tuple(sorted(pairs)) or None

    return tuple(
        choices(meta.get(key)) if key == "modifiers" else meta.get(key) or None for key in LINE_IDENTITY_KEYS
    )


def _same_line(session: Session, sku: str, price: int | None, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The line an ``add_line`` with ``merge`` adds to: same SKU, same modifiers, note and hold, no override."""
    wanted = _identity(meta)
    for line in session.lines:
        if (
            line["sku"] == sku
            and "price_override" not in line["meta"]
            and (price is None or line["unit_price_q"] == price)
            and _identity(line["meta"]) == wanted
        ):
            return line
    return None


def add_line(session: Session, op: dict, ctx: dict) -> None:
    sku = _sku(op)
    require_not_sold_out(sku, ctx)
    qty = _qty(op)
    if op.get("unit_price_q") is None:
        if session.pricing_policy == Channel.PricingPolicy.EXTERNAL:
            raise ValidationError("missing_unit_price_q", context={"field": "unit_price_q", "sku": sku})
        price = 0
    else:
        price = _price(op)
    if op.get("merge") is True:
        meta = _meta(op)
        external = session.pricing_policy == Channel.PricingPolicy.EXTERNAL
        same = _same_line(session, sku, price if external else None, meta)
        if same is not None:
            merged = parse_qty(parse_qty(same["qty"]) + parse_qty(qty))
            if merged is None:
                raise ValidationError("invalid_qty", _("The merged quantity exceeds %(max_qty)s.")
                    % {"max_qty": MAX_QTY}, {"field": "qty", "line_id": same["line_id"]})
            same["qty"] = qty_to_str(merged)
            return
    session.lines.append(
        {
            "line_id": _new_line_id(session),
            "sku": sku,
            "name": _name(op, sku),
            "qty": qty,
            "unit_price_q": price,
            "line_total_q": 0,
            "meta": _meta(op),
        }
    )


def remove_line(session: Session, op: dict, ctx: dict) -> None:
    line = find_line(session, _line_id(op))
    session.lines.remove(line)


def set_qty(session: Session, op: dict, ctx: dict) -> None:
    line = find_line(session, _line_id(op))
    line["qty"] = _qty(op)


def adjust_qty(session: Session, op: dict, ctx: dict) -> None:
    """Add ``delta`` (negative to take away) to a line's qty; at zero or below the line goes."""
    line = find_line(session, _line_id(op))
    value = _required(op, "delta")
    delta = _delta(value)
    if delta is None:
        raise ValidationError(
            "invalid_qty",
            _("delta must be a non-zero number with at most 3 decimal places (and at most %(max_qty)s either way).")
            % {"max_qty": MAX_QTY},
            {"field": "delta", "value": str(value)},
        )
    new = parse_qty(line["qty"]) + delta
    if new <= 0:
        session.lines.remove(line)
        return
    if parse_qty(new) is None:
        raise ValidationError(
            "invalid_qty", _("The quantity would exceed %(max_qty)s.") % {"max_qty": MAX_QTY}, {"field": "delta", "value": str(value)}
        )
    line["qty"] = qty_to_str(new)


def _delta(value: Any) -> Decimal | None:
    """A non-zero step of at most 3 decimal places, either sign (``"+1"``, ``-1``, ``"0.5"``), or ``None``.

    Text is plain ASCII decimal notation with an optional sign, as a qty's (no spaces, exponent or underscore)."""
    if isinstance(value, str) and not DELTA_TEXT.fullmatch(value):
        return None
    try:
        number = to_decimal(value)
    except (TypeError, ValueError, ArithmeticError):
        return None
    size = parse_qty(abs(number)) if number.is_finite() else None
    if size is None:
        return None
    return size if number > 0 else -size


def replace_sku(session: Session, op: dict, ctx: dict) -> None:
    line = find_line(session, _line_id(op))
    sku = _sku(op)
    require_not_sold_out(sku, ctx)
    if op.get("unit_price_q") is not None:
        line["unit_price_q"] = _price(op)
    elif session.pricing_policy == Channel.PricingPolicy.EXTERNAL:
        raise ValidationError("missing_unit_price_q", context={"field": "unit_price_q", "sku": sku})
    line["sku"] = sku
    line["name"] = _name(op, sku)
    # An override was for the old product; the new one is priced afresh.
    line["meta"].pop("price_override", None)


def set_data(session: Session, op: dict, ctx: dict) -> None:
    parts = _path(op, RESERVED_DATA_KEYS)
    if "value" not in op:
        raise ValidationError("missing_field", _("set_data: 'value' is required."), {"field": "value"})
    value = ensure_json(op["value"], "value")
    _set_path(session.data, parts, value, path=op["path"])
    ensure_data_size(session.data, "value")


def merge_lines(session: Session, op: dict, ctx: dict) -> None:
    source_id = _line_id(op, "from_line_id")
    target_id = _line_id(op, "into_line_id")
    if source_id == target_id:
        raise ValidationError("invalid_merge", _("A line cannot be merged into itself."), {"line_id": source_id})
    source = find_line(session, source_id)
    target = find_line(session, target_id)
    if source["sku"] != target["sku"]:
        raise ValidationError(
            "invalid_merge",
            _("Only lines of the same SKU can be merged."),
            {"from_sku": source["sku"], "into_sku": target["sku"]},
        )
    merged = parse_qty(parse_qty(source["qty"]) + parse_qty(target["qty"]))
    if merged is None:
        raise ValidationError("invalid_qty", _("The merged quantity exceeds %(max_qty)s.")
            % {"max_qty": MAX_QTY}, {"field": "qty"})
    target["qty"] = qty_to_str(merged)
    session.lines.remove(source)


def set_line_meta(session: Session, op: dict, ctx: dict) -> None:
    line = find_line(session, _line_id(op))
    parts = _path(op, RESERVED_META_KEYS)
    if "value" not in op:
        raise ValidationError("missing_field", _("set_line_meta: 'value' is required."), {"field": "value"})
    _set_path(line["meta"], parts, ensure_json(op["value"], "value"), path=op["path"])


def override_price(session: Session, op: dict, ctx: dict) -> None:
    line = find_line(session, _line_id(op))
    if op.get("unit_price_q") is None:
        raise ValidationError("missing_field", _("override_price: 'unit_price_q' is required."), {"field": "unit_price_q"})
    price = _price(op)
    reason = _required(op, "reason")
    if not isinstance(reason, str):
        raise ValidationError("invalid_field", _("reason must be text."), {"field": "reason"})
    actor = op.get("actor") or (ctx or {}).get("actor") or "system"
    previous = line["meta"].get("price_override")
    original = previous["from"] if previous else line["unit_price_q"]
    line["meta"]["price_override"] = {"from": original, "to": price, "reason": reason.strip(), "actor": str(actor)}
    line["unit_price_q"] = price


OPS: dict[str, Callable[[Session, dict, dict], None]] = {
    "add_line": add_line,
    "remove_line": remove_line,
    "set_qty": set_qty,
    "adjust_qty": adjust_qty,
    "replace_sku": replace_sku,
    "set_data": set_data,
    "merge_lines": merge_lines,
    "set_line_meta": set_line_meta,
    "override_price": override_price,
}


def apply_ops(session: Session, ops: Any, *, ctx: dict, allow_locked: bool = False) -> None:
    """Apply ``ops`` in order to the (locked, in-memory) session."""
    if not isinstance(ops, (list, tuple)) or not ops:
        raise ValidationError("missing_field", _("ops must be a non-empty list."), {"field": "ops"})
    locked = session.edit_policy == Channel.EditPolicy.LOCKED and not allow_locked
    for index, op in enumerate(ops):
        if not isinstance(op, dict):
            raise ValidationError("unsupported_op", _("Each op is an object with an 'op' key."), {"op_index": index})
        name = op.get("op")
        if name is None or name == "":
            raise ValidationError("missing_field", _("Each op needs an 'op' name."), {"field": "op", "op_index": index})
        handler = OPS.get(name) if isinstance(name, str) else None
        if handler is None:
            raise ValidationError(
                "unsupported_op", _("Unsupported op %(name)s.")
                    % {"name": repr(name)}, {"op": str(name), "op_index": index, "supported": sorted(OPS)}
            )
        if locked and name in ITEM_OPS:
            raise SessionError("locked", context={"op": name, "op_index": index})
        try:
            handler(session, op, ctx)
        except ValidationError as exc:
            exc.context.setdefault("op", name)
            exc.context.setdefault("op_index", index)
            raise
