"""Request and response shapes. Requests are checked here for type and size; the kernel checks meaning."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from omniman.api.signatures import channel_secret
from omniman.exceptions import ValidationError as KernelValidationError
from omniman.models import Channel, Order, OrderEvent, OrderItem, Session
from omniman.monetary import MAX_QTY, MAX_UNIT_PRICE_Q, parse_qty, qty_to_str
from omniman.services import MAX_NAME_LENGTH, MAX_SKU_LENGTH, RESERVED_DATA_KEYS, RESERVED_META_KEYS, status_map

MAX_OPS = 200
MAX_ITEMS = 500
MAX_REV = 2**31 - 1
MAX_CHANNEL_CODE = 64
MAX_IDEMPOTENCY_KEY = 255
ORDER_ORDERINGS = ("-created_at", "created_at", "-updated_at", "updated_at")

# -- errors -------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine code (assert this, never the message).")
    message = serializers.CharField()
    context = serializers.DictField(help_text="Details: the field, the current rev or status, the issues…")


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


# -- requests -----------------------------------------------------------------


def _channel_code(**kwargs) -> serializers.SlugField:
    return serializers.SlugField(
        max_length=MAX_CHANNEL_CODE, trim_whitespace=False,
        help_text="The channel's code (sessions are addressed by key and channel).", **kwargs,
    )


def _query_text(max_length: int) -> serializers.CharField:
    """A text filter: exact (no trimming), not empty; what the input guard refuses the schema refuses too."""
    return serializers.CharField(
        max_length=max_length, required=False, trim_whitespace=False, validators=[RegexValidator(QUERY_TEXT_PATTERN)]
    )


def _text(max_length: int, *, present: bool = True, **kwargs) -> serializers.CharField:
    """Request text, taken as sent (no trimming). ``present``: it must hold a character ``strip()`` keeps
    (the schema says so with a pattern); else it may be blank."""
    if present:
        return serializers.CharField(
            max_length=max_length, trim_whitespace=False, validators=[RegexValidator(_PRESENT)], **kwargs
        )
    return serializers.CharField(max_length=max_length, trim_whitespace=False, allow_blank=True, **kwargs)


def _expected_rev() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_REV,
        help_text="The rev you read; a session that moved on answers 409 stale_rev and nothing is applied.",
    )


# Text the kernel reads as present: at least one character that Python's ``str.strip()`` keeps.
_PRESENT = r"[^\t-\r\x1c- \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# A query value the input guard lets through (no C0 control but tab/newline/CR, no DEL), not empty.
QUERY_TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$"
_TEXT = {"type": "string", "minLength": 1, "pattern": _PRESENT}
# A positive quantity with at most 3 decimal places, at most 1,000,000, as the kernel reads text
# (omniman.monetary.parse_qty): ASCII digits, one optional point; leading zeros and trailing zeros allowed.
QTY_PATTERN = (
    r"^(?:0*[1-9][0-9]{0,5}(?:\.[0-9]{1,3}0*)?"
    r"|0*1000000(?:\.0+)?"
    r"|0+\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9])0*)$"
)
QTY_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": int(MAX_QTY)},
        {"type": "string", "pattern": QTY_PATTERN},
    ],
    "description": "Positive, at most 3 decimal places, at most 1000000: decimal text (\"1.5\") or a JSON integer. "
    "Text is ASCII digits with one optional point (no sign, exponent, underscore or other digits); a JSON "
    "fraction (1.5) is refused with `invalid_qty`, since binary floats are inexact.",
}
# A step of adjust_qty: a quantity with an optional sign (the kernel's omniman.services.ops._delta).
DELTA_PATTERN = r"^[+-]?" + QTY_PATTERN[1:]
DELTA_SCHEMA = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": int(MAX_QTY)},
        {"type": "integer", "minimum": -int(MAX_QTY), "maximum": -1},
        {"type": "string", "pattern": DELTA_PATTERN},
    ],
    "description": "A non-zero step, either sign, at most 3 decimal places, at most 1000000 either way: decimal "
    "text (\"+1\", \"-0.5\") or a JSON integer. Text is ASCII digits with one optional point and an optional "
    "sign; a JSON fraction is refused with `invalid_qty`. A result over 1000000 is `invalid_qty`.",
}
PRICE_SCHEMA = {
    "type": "integer",
    "minimum": 0,
    "maximum": MAX_UNIT_PRICE_Q,
    "description": "Cents, a JSON integer (the text \"100\" is refused with `invalid_price`).",
}
SKU_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_SKU_LENGTH, "pattern": _PRESENT}
NAME_SCHEMA = {"type": "string", "maxLength": MAX_NAME_LENGTH}
META_SCHEMA = {
    "type": "object",
    "additionalProperties": True,
    "not": {"required": ["price_override"]},
    "description": "Free keys (note, modifiers…); `price_override` is written by override_price only.",
}
# A dot-separated path of 1-64 letters, digits, '_' or '-' per segment.
PATH_PATTERN = r"^[A-Za-z0-9_-]{1,64}(?:\.[A-Za-z0-9_-]{1,64})*$"


def _path_schema(reserved: tuple[str, ...]) -> dict[str, Any]:
    first = "|".join(reserved)
    return {
        "type": "string",
        "pattern": PATH_PATTERN,
        "not": {"pattern": rf"^(?:{first})(?:\.|$)"},
        "description": f"Dot-separated segments (1-64 of A-Z a-z 0-9 _ -); {', '.join(reserved)} reserved.",
    }


def _op(name: str, required: list[str], properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "title": name,
        "required": ["op", *required],
        "properties": {"op": {"type": "string", "enum": [name]}, **properties},
        "description": description,
    }


LINE_FIELDS = {"sku": SKU_SCHEMA, "name": NAME_SCHEMA, "qty": QTY_SCHEMA, "unit_price_q": PRICE_SCHEMA, "meta": META_SCHEMA}
ITEM_SCHEMA = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": LINE_FIELDS,
    "description": "An add_line op without its `op`.",
}
OP_SCHEMA = {
    "oneOf": [
        _op("add_line", ["sku", "qty"], LINE_FIELDS, "A new line (unit_price_q required on external-pricing channels)."),
        _op("remove_line", ["line_id"], {"line_id": _TEXT}, "Remove a line."),
        _op("set_qty", ["line_id", "qty"], {"line_id": _TEXT, "qty": QTY_SCHEMA}, "Change a line's quantity."),
        _op(
            "adjust_qty", ["line_id", "delta"], {"line_id": _TEXT, "delta": DELTA_SCHEMA},
            "Add a step to a line's quantity (negative takes away); at zero or below the line goes.",
        ),
        _op(
            "replace_sku", ["line_id", "sku"],
            {"line_id": _TEXT, "sku": SKU_SCHEMA, "name": NAME_SCHEMA, "unit_price_q": PRICE_SCHEMA},
            "Put another product on a line.",
        ),
        _op(
            "set_data", ["path", "value"],
            {"path": _path_schema(RESERVED_DATA_KEYS), "value": {"description": "Any JSON."}},
            "Set a key of the session's free data (at most OMNIMAN[\"SESSION_DATA_MAX_BYTES\"] in all: "
            "`data_too_large`).",
        ),
        _op(
            "merge_lines", ["from_line_id", "into_line_id"], {"from_line_id": _TEXT, "into_line_id": _TEXT},
            "Add one line's quantity to another line of the same sku.",
        ),
        _op(
            "set_line_meta", ["line_id", "path", "value"],
            {"line_id": _TEXT, "path": _path_schema(RESERVED_META_KEYS), "value": {"description": "Any JSON."}},
            "Set a key of a line's meta (a note, modifiers).",
        ),
        _op(
            "override_price", ["line_id", "unit_price_q", "reason"],
            {"line_id": _TEXT, "unit_price_q": PRICE_SCHEMA, "reason": _TEXT},
            "Managers only; the actor is the caller.",
        ),
    ],
    "description": "One op and its fields; see the kernel's ops (docs: API Reference › Services).",
}


def refuse_fractions(entry: Any, index: int) -> None:
    """A JSON fraction as ``qty`` or ``delta`` is refused (``invalid_qty``): quantities travel as text or integers."""
    for field in ("qty", "delta"):
        value = entry.get(field) if isinstance(entry, dict) else None
        if isinstance(value, float) and not value.is_integer():
            raise KernelValidationError(
                "invalid_qty",
                f"{field} must be decimal text (\"1.5\") or a JSON integer, not a JSON fraction.",
                {"field": field, "value": repr(value), "op_index": index},
            )


@extend_schema_field(OP_SCHEMA)
class OpField(serializers.DictField):
    """An op: checked for shape here, for meaning by the kernel (``unsupported_op``, ``missing_field``…)."""


@extend_schema_field(ITEM_SCHEMA)
class ItemField(serializers.DictField):
    """An ``add_line`` op without its ``op``."""


@extend_schema_field({"type": "string", "minLength": 1, "maxLength": 255, "pattern": _PRESENT})
class IdempotencyKeyField(serializers.Field):
    """Text of at most 255 characters. Blank is passed on, so the kernel answers ``missing_idempotency_key``
    (not the generic ``invalid``); the schema says what a good key is (not blank)."""

    default_error_messages = {
        "invalid": "Not a valid string.",
        "max_length": "Ensure this field has no more than 255 characters.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if len(data) > MAX_IDEMPOTENCY_KEY:
            self.fail("max_length")
        return data

    def to_representation(self, value):
        return value


class SessionQuerySerializer(serializers.Serializer):
    channel_code = _channel_code(required=False)


class SessionListQuerySerializer(serializers.Serializer):
    channel_code = _channel_code(required=False)
    state = serializers.ChoiceField(choices=Session.State.choices, required=False)
    handle_type = _query_text(32)
    handle_ref = _query_text(128)


class OpenSessionRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    handle_type = _text(32, present=False, required=False, default="")
    handle_ref = _text(128, present=False, required=False, default="")
    data = serializers.DictField(
        required=False, help_text=f"Free keys (customer, notes…); {', '.join(RESERVED_DATA_KEYS)} are reserved."
    )
    items = serializers.ListField(
        child=ItemField(), required=False, max_length=MAX_ITEMS,
        help_text="add_line fields per item: the basket delivered at once (rev 1).",
    )

    def validate_items(self, items):
        for index, item in enumerate(items):
            refuse_fractions(item, index)
        return items


class ModifyRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    ops = serializers.ListField(child=OpField(), min_length=1, max_length=MAX_OPS)
    expected_rev = _expected_rev()

    def validate_ops(self, ops):
        for index, op in enumerate(ops):
            refuse_fractions(op, index)
        return ops


class CommitRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    idempotency_key = IdempotencyKeyField(
        help_text="Minted once per commit intent and reused on every retry; blank answers `missing_idempotency_key`."
    )
    expected_rev = _expected_rev()


# -- the hot requests' fast path -------------------------------------------------
# Open, modify and commit run on every order. A DRF serializer for their bodies costs a
# deepcopy of its declared fields and a walk through DRF's field machinery (some 0.4 ms
# of CPU per order alone, more within whole requests: docs/deployment/performance.rst,
# h-apiframe). ``fast_validated_data`` answers what the
# serializer's ``validated_data`` would be for the usual, valid bodies, and ``None`` for
# anything it is not sure of: the caller then runs the serializer, so every error (its
# code, message and fields) still comes from the serializer alone. What the fast path
# takes, the serializer takes too, with equal validated data
# (tests/unit/test_api_fast_validation.py compares both on generated bodies).

_FAST_SLUG = re.compile(rf"[-a-zA-Z0-9_]{{1,{MAX_CHANNEL_CODE}}}")
_MISSING = object()


def _fast_slug(value: Any) -> bool:
    return type(value) is str and _FAST_SLUG.fullmatch(value) is not None


def _fast_text(value: Any, max_length: int) -> bool:
    """ASCII text without NUL, at most ``max_length`` (anything else goes to the serializer)."""
    return type(value) is str and len(value) <= max_length and value.isascii() and "\x00" not in value


def _fast_rev(data: dict[str, Any], into: dict[str, Any]) -> bool:
    """``expected_rev``: absent (left out), ``null``, or a JSON integer in range."""
    rev = data.get("expected_rev", _MISSING)
    if rev is _MISSING:
        return True
    if rev is None or (type(rev) is int and 0 <= rev <= MAX_REV):
        into["expected_rev"] = rev
        return True
    return False


def _fast_entries(value: Any, *, min_length: int, max_length: int) -> list[dict[str, Any]] | None:
    """A list of JSON objects (ops or items) as ``ListField(child=DictField())`` returns it: a shallow copy
    of each; ``None`` for a float ``qty``/``delta`` (``refuse_fractions``, or a whole float) or any other shape."""
    if type(value) is not list or not min_length <= len(value) <= max_length:
        return None
    entries = []
    for entry in value:
        if type(entry) is not dict:
            return None
        for key in entry:
            if type(key) is not str:
                return None
        if type(entry.get("qty")) is float or type(entry.get("delta")) is float:
            return None
        entries.append(dict(entry))
    return entries


_HANDLE_LENGTHS = {
    name: OpenSessionRequestSerializer._declared_fields[name].max_length for name in ("handle_type", "handle_ref")
}


def _fast_open(data: dict[str, Any]) -> dict[str, Any] | None:
    channel_code = data.get("channel_code")
    if not _fast_slug(channel_code):
        return None
    payload: dict[str, Any] = {"channel_code": channel_code}
    for name in ("handle_type", "handle_ref"):
        value = data.get(name, "")
        if not _fast_text(value, _HANDLE_LENGTHS[name]):
            return None
        payload[name] = value
    if "data" in data:
        value = data["data"]
        if type(value) is not dict or any(type(key) is not str for key in value):
            return None
        payload["data"] = dict(value)
    if "items" in data:
        items = _fast_entries(data["items"], min_length=0, max_length=MAX_ITEMS)
        if items is None:
            return None
        payload["items"] = items
    return payload


def _fast_modify(data: dict[str, Any]) -> dict[str, Any] | None:
    channel_code = data.get("channel_code")
    if not _fast_slug(channel_code):
        return None
    ops = _fast_entries(data.get("ops"), min_length=1, max_length=MAX_OPS)
    if ops is None:
        return None
    payload: dict[str, Any] = {"channel_code": channel_code, "ops": ops}
    return payload if _fast_rev(data, payload) else None


def _fast_commit(data: dict[str, Any]) -> dict[str, Any] | None:
    channel_code = data.get("channel_code")
    key = data.get("idempotency_key")
    if not _fast_slug(channel_code) or type(key) is not str or len(key) > MAX_IDEMPOTENCY_KEY:
        return None
    payload: dict[str, Any] = {"channel_code": channel_code, "idempotency_key": key}
    return payload if _fast_rev(data, payload) else None


FAST_VALIDATORS: dict[type[serializers.Serializer], Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    OpenSessionRequestSerializer: _fast_open,
    ModifyRequestSerializer: _fast_modify,
    CommitRequestSerializer: _fast_commit,
}


def fast_validated_data(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any] | None:
    """``serializer_class(data=data).validated_data`` for a usual valid body of a hot request, else ``None``."""
    check = FAST_VALIDATORS.get(serializer_class)
    if check is None or type(data) is not dict:
        return None
    return check(data)


class SessionActionSerializer(serializers.Serializer):
    """Park, resume, close a table: the session's channel and, optionally, the rev you read."""

    channel_code = _channel_code()
    expected_rev = _expected_rev()


class AdjustmentQuerySerializer(serializers.Serializer):
    """Removing an adjustment: the session's channel and, optionally, the rev you read (query string)."""

    channel_code = _channel_code()
    expected_rev = serializers.IntegerField(
        required=False, min_value=0, max_value=MAX_REV,
        help_text="The rev you read; a session that moved on answers 409 stale_rev and nothing is removed.",
    )


@extend_schema_field({"type": "string", "maxLength": 200, "pattern": _PRESENT})
class ReasonField(serializers.CharField):
    """Text that must be present; a blank one reaches the kernel, which answers ``reason_required``."""


@extend_schema_field({"oneOf": [{"type": "string", "maxLength": 20}, {"type": "number"}], "nullable": True})
class PercentField(serializers.Field):
    """A percent as decimal text (``"10"``, ``"12.5"``) or a JSON number; the kernel checks its range (``invalid_discount``)."""

    default_error_messages = {"invalid": "A percent is decimal text such as \"10\" or a number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > 20:
            self.fail("invalid")
        return (repr(data) if isinstance(data, float) else str(data))[:40]  # the kernel checks the value

    def to_representation(self, value):
        return value


class DiscountRequestSerializer(serializers.Serializer):
    """A discount (or the service charge) on an open session: ``percent`` or ``amount_q``, with a ``reason``."""

    channel_code = _channel_code()
    expected_rev = _expected_rev()
    kind = serializers.ChoiceField(
        choices=["discount", "service_charge"], required=False, default="discount",
        help_text="`service_charge` sets the service charge's percent (\"0\" waives it): always a manager's call.",
    )
    line_id = _text(64, present=False, required=False, default="", help_text="The line; empty or absent: the whole.")
    percent = PercentField(required=False, allow_null=True, help_text="Decimal text or a number in (0, 100].")
    amount_q = serializers.IntegerField(required=False, allow_null=True, help_text="A fixed amount in cents (> 0).")
    reason = ReasonField(max_length=200, trim_whitespace=False, allow_blank=True, help_text="Why: required (`reason_required` when blank).")
    approved_by = _text(150, present=False, required=False, default="", help_text="A manager's username…")
    approval_pin = _text(8, present=False, required=False, default="", help_text="…and their PIN: their approval.")


class ResolveRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    issue_id = _text(255)
    action_id = _text(255)
    expected_rev = _expected_rev()


class FilterDateTimeField(serializers.DateTimeField):
    """An ISO 8601 filter bound; one beyond what the server's timezone can represent (``0001-01-01T00:00+13:00``)
    is taken as the earliest (or latest) instant rather than refused: every RFC 3339 date-time is a valid bound."""

    def enforce_timezone(self, value):
        try:
            return super().enforce_timezone(value)
        except serializers.ValidationError:
            if value.year <= 1:
                return datetime.min.replace(tzinfo=dt_timezone.utc)
            if value.year >= 9999:
                return datetime.max.replace(tzinfo=dt_timezone.utc)
            raise


class OrderListQuerySerializer(serializers.Serializer):
    channel_code = _channel_code(required=False)
    status = _query_text(32)
    created_after = FilterDateTimeField(required=False, help_text="Created at or after (ISO 8601).")
    created_before = FilterDateTimeField(required=False, help_text="Created before (ISO 8601).")
    updated_since = FilterDateTimeField(
        required=False, help_text="Changed at or after (ISO 8601): poll with the largest updated_at you saw."
    )
    ordering = serializers.ChoiceField(choices=ORDER_ORDERINGS, required=False, default="-created_at")


class TransitionRequestSerializer(serializers.Serializer):
    status = _text(32)
    expected_status = _text(
        32, required=False, help_text="The status you saw; another one answers 409 stale_status."
    )
    reason = _text(500, present=False, required=False, default="")


@extend_schema_field(QTY_SCHEMA)
class QtyField(serializers.Field):
    """A quantity as the kernel reads it (``parse_qty``), given as decimal text or a JSON integer."""

    default_error_messages = {
        "invalid": "A positive quantity with at most 3 decimal places (at most 1000000), as text or an integer.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float, str)):
            self.fail("invalid")
        if isinstance(data, float) and not data.is_integer():
            self.fail("invalid")
        qty = parse_qty(data)
        if qty is None:
            self.fail("invalid")
        return qty

    def to_representation(self, value):
        return qty_to_str(value)


class ExternalItemSerializer(serializers.Serializer):
    sku = _text(MAX_SKU_LENGTH)
    name = _text(MAX_NAME_LENGTH, present=False, required=False)
    qty = QtyField()
    unit_price_q = serializers.IntegerField(min_value=0, max_value=MAX_UNIT_PRICE_Q)
    notes = _text(1000, present=False, required=False)


class ExternalCustomerSerializer(serializers.Serializer):
    name = _text(200, present=False, required=False)
    phone = _text(64, present=False, required=False)


class ExternalOrderRequestSerializer(serializers.Serializer):
    external_id = _text(128, help_text="The platform's order id: one order per id.")
    items = ExternalItemSerializer(many=True, allow_empty=False, max_length=MAX_ITEMS)
    customer = ExternalCustomerSerializer(required=False)
    notes = _text(2000, present=False, required=False)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True)
    status = _text(
        64, present=False, required=False,
        help_text="The platform's status at delivery, mapped through the channel's status_map.",
    )

    def to_kernel(self) -> dict[str, Any]:
        """The validated payload as ``ExternalOrderService.ingest`` arguments."""
        payload = self.validated_data
        items = []
        for item in payload["items"]:
            line = {"sku": item["sku"], "qty": qty_to_str(item["qty"]), "unit_price_q": item["unit_price_q"]}
            if item.get("name"):
                line["name"] = item["name"]
            if item.get("notes"):
                line["meta"] = {"note": item["notes"]}
            items.append(line)
        data: dict[str, Any] = {}
        customer = {k: v for k, v in (payload.get("customer") or {}).items() if v}
        if customer:
            data["customer"] = customer
        if payload.get("notes"):
            data["notes"] = payload["notes"]
        if payload.get("scheduled_for"):
            data["scheduled_for"] = payload["scheduled_for"].isoformat()
        return {
            "external_id": payload["external_id"],
            "items": items,
            "data": data,
            "status": payload.get("status") or "",
        }


class ExternalStatusRequestSerializer(serializers.Serializer):
    status = _text(64, help_text="The platform's status, mapped through the channel's status_map.")
    reason = _text(500, present=False, required=False, default="")


# -- responses ----------------------------------------------------------------


class OrderFlowSerializer(serializers.Serializer):
    initial_status = serializers.CharField()
    transitions = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    terminal_statuses = serializers.ListField(child=serializers.CharField())


class ChannelSerializer(serializers.ModelSerializer):
    currency = serializers.CharField(read_only=True)
    terminology = serializers.DictField(read_only=True)
    required_checks = serializers.ListField(child=serializers.CharField(), read_only=True)
    order_flow = serializers.SerializerMethodField()
    status_map = serializers.SerializerMethodField()
    signed_ingestion = serializers.SerializerMethodField()

    class Meta:
        model = Channel
        fields = [
            "code", "name", "pricing_policy", "edit_policy", "is_active", "display_order", "currency",
            "terminology", "required_checks", "order_flow", "status_map", "signed_ingestion", "created_at",
        ]

    @extend_schema_field(OrderFlowSerializer)
    def get_order_flow(self, channel: Channel) -> dict[str, Any]:
        flow = channel.order_flow
        return {"initial_status": flow.initial_status, "transitions": flow.transitions, "terminal_statuses": flow.terminal_statuses}

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_status_map(self, channel: Channel) -> dict[str, str]:
        return status_map(channel)

    def get_signed_ingestion(self, channel: Channel) -> bool:
        """Whether deliveries to this channel must carry an ``X-Omniman-Signature``."""
        return bool(channel_secret(channel))


class SessionItemSerializer(serializers.Serializer):
    line_id = serializers.CharField()
    sku = serializers.CharField()
    name = serializers.CharField()
    qty = serializers.CharField(help_text="Exact decimal text, e.g. \"1.5\".")
    unit_price_q = serializers.IntegerField()
    line_total_q = serializers.IntegerField()
    meta = serializers.DictField()


class AdjustmentSerializer(serializers.Serializer):
    """A service charge, discount, surcharge, void or write-off (docs/api/adjustments.rst)."""

    id = serializers.CharField(help_text="12 hex digits.")
    kind = serializers.ChoiceField(choices=["service_charge", "discount", "surcharge", "write_off", "void"])
    label = serializers.CharField(allow_blank=True)
    line_id = serializers.CharField(allow_blank=True, help_text="The line it applies to; empty: the whole.")
    percent = serializers.CharField(allow_null=True, help_text="Decimal text, e.g. \"10\"; null for a fixed amount.")
    amount_q = serializers.IntegerField(help_text="Signed: negative takes off.")
    requested_q = serializers.IntegerField(allow_null=True, required=False, help_text="The fixed amount asked for, before caps.")
    reason = serializers.CharField(allow_blank=True)
    actor = serializers.CharField(allow_blank=True)
    approved_by = serializers.CharField(allow_blank=True, help_text="The manager who approved it, if one had to.")
    at = serializers.CharField(help_text="ISO 8601.")
    auto = serializers.BooleanField(help_text="True for the channel's automatic service charge.")


class TotalsSerializer(serializers.Serializer):
    """What is owed: the line totals plus the adjustments, computed once by the kernel (SPEC §10)."""

    items_q = serializers.IntegerField(help_text="Sum of the line totals.")
    discount_q = serializers.IntegerField(help_text="What the discounts took off (>= 0).")
    service_percent = serializers.CharField(help_text="The service charge percent, e.g. \"10\" (\"0\": none).")
    service_q = serializers.IntegerField()
    surcharge_q = serializers.IntegerField(required=False)
    void_q = serializers.IntegerField(required=False)
    write_off_q = serializers.IntegerField(required=False)
    adjustments_q = serializers.IntegerField(required=False, help_text="Signed sum of the adjustments.")
    total_q = serializers.IntegerField(help_text="What the customer owes: items_q + adjustments_q.")
    currency = serializers.CharField(required=False, help_text="ISO 4217 code, e.g. \"BRL\".")
    adjustments = AdjustmentSerializer(many=True)


# The type of each scalar of TotalsSerializer, in its order: read once from its declared fields
# (building the serializer on every answer copied all its fields, the adjustments' too).
TOTALS_KINDS: tuple[tuple[str, type], ...] = tuple(
    (name, int if isinstance(field, serializers.IntegerField) else str)
    for name, field in TotalsSerializer._declared_fields.items()
    if name != "adjustments"
)


def typed_totals(totals: dict[str, Any]) -> dict[str, Any]:
    """``Session.totals``/``Order.totals`` as the schema types them (an old order's stored summary may hold anything)."""
    typed: dict[str, Any] = {"items_q": int(totals["items_q"]) if isinstance(totals.get("items_q"), int) else totals["total_q"]}
    for name, kind in TOTALS_KINDS:
        value = totals.get(name)
        if isinstance(value, kind) and not isinstance(value, bool):
            typed[name] = value
    typed.setdefault("discount_q", 0)
    typed.setdefault("service_percent", "0")
    typed.setdefault("service_q", 0)
    typed["total_q"] = int(totals["total_q"]) if isinstance(totals.get("total_q"), int) else typed["items_q"]
    typed["adjustments"] = list(totals.get("adjustments") or [])
    return typed


class SessionSerializer(serializers.ModelSerializer):
    channel_code = serializers.CharField(source="channel.code", read_only=True)
    items_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Session
        fields = [
            "session_key", "channel_code", "handle_type", "handle_ref", "state", "pricing_policy", "edit_policy",
            "rev", "total_q", "items_count", "opened_at", "updated_at", "committed_at",
        ]


class SessionDetailSerializer(SessionSerializer):
    items = serializers.SerializerMethodField()
    totals = serializers.SerializerMethodField()
    data = serializers.SerializerMethodField()
    checks = serializers.SerializerMethodField()
    issues = serializers.SerializerMethodField()

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "items", "totals", "data", "checks", "issues"]

    @extend_schema_field(SessionItemSerializer(many=True))
    def get_items(self, session: Session) -> list[dict[str, Any]]:
        return [dict(line, qty=str(line["qty"])) for line in session.lines]

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, session: Session) -> dict[str, Any]:
        return typed_totals(session.totals)  # the one totals computation (omniman.adjustments)

    def get_data(self, session: Session) -> dict[str, Any]:
        return {k: v for k, v in (session.data or {}).items() if k not in RESERVED_DATA_KEYS}

    def get_checks(self, session: Session) -> dict[str, Any]:
        return session.checks

    def get_issues(self, session: Session) -> list[dict[str, Any]]:
        return session.issues


_INSTANT = serializers.DateTimeField(read_only=True)  # stateless: renders in the active timezone at each call


def _choice(value: Any) -> Any:
    """A model choice as ``ChoiceField`` renders a valid one: its value as text."""
    return value if value in ("", None) else str(value)


def _instant(value: Any) -> str | None:
    return None if value is None else _INSTANT.to_representation(value)


def session_detail(session: Session) -> dict[str, Any]:
    """``SessionDetailSerializer(session).data``, without building the serializer.

    The answer of every session request (open, modify, resolve…): a
    ``ModelSerializer`` re-derived and deep-copied its 18 fields per request.
    Same keys, order, types and values as the serializer, which stays the
    schema (``tests/integration/api/test_session_answer.py`` compares both).
    """
    data = session.data or {}
    return {
        "session_key": str(session.session_key),
        "channel_code": str(session.channel.code),
        "handle_type": None if session.handle_type is None else str(session.handle_type),
        "handle_ref": None if session.handle_ref is None else str(session.handle_ref),
        "state": _choice(session.state),
        "pricing_policy": _choice(session.pricing_policy),
        "edit_policy": _choice(session.edit_policy),
        "rev": None if session.rev is None else int(session.rev),
        "total_q": None if session.total_q is None else int(session.total_q),
        "items_count": session.items_count,
        "opened_at": _instant(session.opened_at),
        "updated_at": _instant(session.updated_at),
        "committed_at": _instant(session.committed_at),
        "items": [dict(line, qty=str(line["qty"])) for line in session.lines],
        "totals": typed_totals(session.totals),
        "data": {k: v for k, v in data.items() if k not in RESERVED_DATA_KEYS},
        "checks": session.checks,
        "issues": session.issues,
    }


class OrderItemSerializer(serializers.ModelSerializer):
    qty = serializers.SerializerMethodField()

    class Meta:
        model = OrderItem
        fields = ["line_id", "sku", "name", "qty", "unit_price_q", "line_total_q", "meta"]

    def get_qty(self, item: OrderItem) -> str:
        return qty_to_str(item.qty)


class OrderEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderEvent
        fields = ["id", "type", "actor", "payload", "created_at"]


class OrderSerializer(serializers.ModelSerializer):
    channel_code = serializers.CharField(source="channel.code", read_only=True)
    items = OrderItemSerializer(many=True, read_only=True)
    allowed_transitions = serializers.ListField(
        child=serializers.CharField(), source="get_allowed_transitions", read_only=True
    )
    data = serializers.SerializerMethodField()
    totals = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "ref", "channel_code", "session_key", "handle_type", "handle_ref", "current_handle_ref", "external_ref", "status",
            "allowed_transitions", "currency", "total_q", "totals", "items", "data", "created_at", "updated_at",
            *Order.STATUS_FIELDS[1:],
        ]

    @extend_schema_field(TotalsSerializer)
    def get_totals(self, order: Order) -> dict[str, Any]:
        """What the order charged: its items, its adjustments (service charge, discounts) and ``total_q``."""
        return typed_totals(order.totals)

    def get_data(self, order: Order) -> dict[str, Any]:
        """The session's free data at commit (customer, notes…)."""
        data = (order.snapshot or {}).get("data") or {}
        return {k: v for k, v in data.items() if k not in RESERVED_DATA_KEYS}


class OrderDetailSerializer(OrderSerializer):
    events = OrderEventSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [*OrderSerializer.Meta.fields, "events"]


class CommitResultSerializer(serializers.Serializer):
    order_ref = serializers.CharField()
    order_id = serializers.IntegerField()
    status = serializers.CharField()
    total_q = serializers.IntegerField()
    items_count = serializers.IntegerField()
    idempotent = serializers.BooleanField(help_text="True when this is the replay of an earlier commit.")


class ExternalOrderResultSerializer(CommitResultSerializer):
    external_id = serializers.CharField()


class ExternalStatusResultSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    changed = serializers.BooleanField(help_text="False when the order already had this status.")
    order = OrderDetailSerializer()


class ApiRootSerializer(serializers.Serializer):
    channels = serializers.URLField()
    sessions = serializers.URLField()
    orders = serializers.URLField()
    schema = serializers.URLField()
    docs = serializers.URLField()
