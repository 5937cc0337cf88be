"""Request and response shapes. Requests are checked here for type and size; the kernel checks meaning."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from omniman.api.signatures import channel_secret
from omniman.models import Channel, Order, OrderEvent, OrderItem, Session
from omniman.monetary import MAX_UNIT_PRICE_Q, qty_to_str
from omniman.services import MAX_NAME_LENGTH, MAX_SKU_LENGTH, OPS, RESERVED_DATA_KEYS, status_map

MAX_OPS = 200
MAX_ITEMS = 500
MAX_REV = 2**31 - 1
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
    return serializers.SlugField(max_length=64, help_text="The channel's code (sessions are addressed by key and channel).", **kwargs)


def _expected_rev() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_REV,
        help_text="The rev you read; a session that moved on answers 409 stale_rev and nothing is applied.",
    )


_TEXT = {"type": "string"}
LINE_FIELDS = {
    "sku": {"type": "string", "maxLength": MAX_SKU_LENGTH},
    "name": {"type": "string", "maxLength": MAX_NAME_LENGTH},
    "qty": {
        "oneOf": [{"type": "number"}, {"type": "string"}],
        "description": "Positive, at most 3 decimal places (\"1.5\" or 1.5).",
    },
    "unit_price_q": {"type": "integer", "minimum": 0, "description": "Cents; required on external-pricing channels."},
    "meta": {"type": "object", "additionalProperties": True},
}
ITEM_SCHEMA = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": LINE_FIELDS,
    "description": "An add_line op without its `op`.",
}
OP_SCHEMA = {
    "type": "object",
    "required": ["op"],
    "properties": {
        "op": {"type": "string", "enum": sorted(OPS)},
        **LINE_FIELDS,
        "line_id": _TEXT,
        "from_line_id": _TEXT,
        "into_line_id": _TEXT,
        "delta": {
            "oneOf": [{"type": "number"}, {"type": "string"}],
            "description": "adjust_qty: a non-zero step, either sign, at most 3 decimal places (\"+1\", -1); at zero the line goes.",
        },
        "path": {"type": "string", "description": "Dot-separated (set_data, set_line_meta)."},
        "value": {"description": "Any JSON (set_data, set_line_meta)."},
        "reason": {"type": "string", "description": "override_price (managers only)."},
    },
    "description": "One op and its fields; see the kernel's ops (docs: API Reference › Services).",
}


@extend_schema_field(OP_SCHEMA)
class OpField(serializers.DictField):
    """An op: checked for shape here, for meaning by the kernel (``unsupported_op``, ``missing_field``…)."""


@extend_schema_field(ITEM_SCHEMA)
class ItemField(serializers.DictField):
    """An ``add_line`` op without its ``op``."""


class SessionQuerySerializer(serializers.Serializer):
    channel_code = _channel_code()


class SessionListQuerySerializer(serializers.Serializer):
    channel_code = _channel_code(required=False)
    state = serializers.ChoiceField(choices=Session.State.choices, required=False)
    handle_type = serializers.CharField(max_length=32, required=False)
    handle_ref = serializers.CharField(max_length=128, required=False)


class OpenSessionRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    handle_type = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
    handle_ref = serializers.CharField(max_length=128, required=False, allow_blank=True, default="")
    data = serializers.DictField(
        required=False, help_text=f"Free keys (customer, notes…); {', '.join(RESERVED_DATA_KEYS)} are reserved."
    )
    items = serializers.ListField(
        child=ItemField(), required=False, max_length=MAX_ITEMS,
        help_text="add_line fields per item: the basket delivered at once (rev 1).",
    )


class ModifyRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    ops = serializers.ListField(child=OpField(), min_length=1, max_length=MAX_OPS)
    expected_rev = _expected_rev()


class CommitRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    idempotency_key = serializers.CharField(
        max_length=255, help_text="Minted once per commit intent and reused on every retry."
    )
    expected_rev = _expected_rev()


class SessionActionSerializer(serializers.Serializer):
    """Park, resume, close a table: the session's channel and, optionally, the rev you read."""

    channel_code = _channel_code()
    expected_rev = _expected_rev()


class ResolveRequestSerializer(serializers.Serializer):
    channel_code = _channel_code()
    issue_id = serializers.CharField(max_length=255)
    action_id = serializers.CharField(max_length=255)
    expected_rev = _expected_rev()


class OrderListQuerySerializer(serializers.Serializer):
    channel_code = _channel_code(required=False)
    status = serializers.CharField(max_length=32, required=False)
    created_after = serializers.DateTimeField(required=False, help_text="Created at or after (ISO 8601).")
    created_before = serializers.DateTimeField(required=False, help_text="Created before (ISO 8601).")
    updated_since = serializers.DateTimeField(
        required=False, help_text="Changed at or after (ISO 8601): poll with the largest updated_at you saw."
    )
    ordering = serializers.ChoiceField(choices=ORDER_ORDERINGS, required=False, default="-created_at")


class TransitionRequestSerializer(serializers.Serializer):
    status = serializers.CharField(max_length=32)
    expected_status = serializers.CharField(
        max_length=32, required=False, help_text="The status you saw; another one answers 409 stale_status."
    )
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


class ExternalItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=MAX_SKU_LENGTH)
    name = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False, allow_blank=True)
    qty = serializers.DecimalField(max_digits=10, decimal_places=3, min_value=Decimal("0.001"), max_value=Decimal("1000000"))
    unit_price_q = serializers.IntegerField(min_value=0, max_value=MAX_UNIT_PRICE_Q)
    notes = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class ExternalCustomerSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=64, required=False, allow_blank=True)


class ExternalOrderRequestSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128, help_text="The platform's order id: one order per id.")
    items = ExternalItemSerializer(many=True, allow_empty=False, max_length=MAX_ITEMS)
    customer = ExternalCustomerSerializer(required=False)
    notes = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    scheduled_for = serializers.DateTimeField(required=False, allow_null=True)
    status = serializers.CharField(
        max_length=64, required=False, allow_blank=True,
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
    status = serializers.CharField(max_length=64, help_text="The platform's status, mapped through the channel's status_map.")
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")


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

    def get_totals(self, session: Session) -> dict[str, int]:
        return session.totals

    def get_data(self, session: Session) -> dict[str, Any]:
        return {k: v for k, v in (session.data or {}).items() if k not in RESERVED_DATA_KEYS}

    def get_checks(self, session: Session) -> dict[str, Any]:
        return session.checks

    def get_issues(self, session: Session) -> list[dict[str, Any]]:
        return session.issues


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

    class Meta:
        model = Order
        fields = [
            "ref", "channel_code", "session_key", "handle_type", "handle_ref", "external_ref", "status",
            "allowed_transitions", "currency", "total_q", "items", "data", "created_at", "updated_at",
            *Order.STATUS_FIELDS[1:],
        ]

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
