"""The bills' REST API (issue #15): open a bill, tender, split, discount, void, write off, refund.

Parse → one kernel service (``BillService`` / ``PaymentService``) → the bill (``bill_view``). The codes are the
services' (docs/api/billing.rst); a payment or a refund is idempotent by the ``Idempotency-Key`` header.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from omniman.api.permissions import CanRead, RolePermission, actor
from omniman.api.serializers import _PRESENT, ErrorSerializer, QtyField, _channel_code, _expected_rev, _text
from omniman.api.views import _approval, _body, _query
from omniman.channel_config import PAYMENT_METHODS
from omniman.exceptions import ValidationError as KernelValidationError
from omniman.models import Payment, Refund
from omniman.roles import MANAGER, POS, roles_of
from omniman.services import BillService, BillView, PaymentService, bill_view

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PATTERN = r"^[A-Za-z0-9._:\-]{1,255}$"
MAX_AMOUNT_Q = 10**12
MAX_PARTS = 50
# A percent in (0, 100] with at most 2 decimal places, as text (a discount).
DISCOUNT_PERCENT_PATTERN = r"^(?:100(?:\.0{1,2})?|0*[1-9][0-9]?(?:\.[0-9]{1,2})?|0*\.(?:[1-9][0-9]?|0[1-9])|0+\.(?:[1-9][0-9]?|0[1-9]))$"
# A percent in [0, 100] with at most 2 decimal places, as text (a tip).
TIP_PERCENT_PATTERN = r"^(?:100(?:\.0{1,2})?|[0-9]{1,2}(?:\.[0-9]{1,2})?)$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"


class CanPay(RolePermission):
    """Bills: read with any role; open, tender, split, discount, void, write off and refund as pos or manager
    (the services then ask for a manager where they must: ``forbidden`` / ``approval_required``, 403)."""

    write_roles = (POS, MANAGER)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    described = {
        400: "Refused input: `invalid` (`context.fields`) or the service's code (`overpayment`, `invalid_discount`…).",
        401: "Not authenticated.",
        403: "Without the role (`permission_denied`), or a manager's use case (`forbidden`, `approval_required`, "
        "`approval_failed`: the PIN given is not a manager's).",
        404: "`not_found` (bill, order, payment), `adjustment_not_found` or `channel_not_found`.",
        409: "The world changed: `stale_bill` (the fresh bill in `context.bill`), `already_paid`, `already_voided`, "
        "`conflict` (the idempotency key was used for something else).",
        413: "The body is too large (`payload_too_large`).",
        503: "`gateway_unavailable`: the payment gateway cannot be reached; retry with the same key.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=described[code]) for code in sorted({400, 401, 403, *codes})}


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=True,
    pattern=IDEMPOTENCY_PATTERN,
    description="Minted once per payment (refund) intent and reused on every retry: the same key answers the first "
    "result (200, `idempotent: true`) and writes nothing. 1-255 of A-Z a-z 0-9 . _ : -",
)


def _idempotency_key(request) -> str:
    key = request.headers.get(IDEMPOTENCY_HEADER, "")
    if not key:
        raise KernelValidationError("missing_idempotency_key", context={"header": IDEMPOTENCY_HEADER})
    if not re.fullmatch(IDEMPOTENCY_PATTERN, key):
        raise serializers.ValidationError({IDEMPOTENCY_HEADER: ["1-255 of A-Z a-z 0-9 . _ : -"]})
    return key


def _amount(minimum: int, **kwargs) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=minimum, max_value=MAX_AMOUNT_Q, **kwargs)


# -- requests -----------------------------------------------------------------------------


class BillOpenSerializer(serializers.Serializer):
    """A table's (a handle's) bill, or one order's: ``order_ref`` wins when both are given."""

    channel_code = _channel_code()
    handle_type = _text(32, present=False, required=False, default="")
    handle_ref = _text(128, present=False, required=False, default="", help_text="A table's number, say.")
    order_ref = _text(64, present=False, required=False, default="", help_text="One order's bill (a counter sale).")

    def validate(self, attrs):
        if not any(re.search(_PRESENT, attrs.get(name) or "") for name in ("order_ref", "handle_ref")):
            raise serializers.ValidationError({"handle_ref": ["Give handle_ref (with handle_type) or order_ref."]})
        return attrs


class TenderSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=PAYMENT_METHODS, help_text="One of the channel's `payments.methods`.")
    amount_q = _amount(1, required=False, allow_null=True, help_text="Applied to the bill; default: the due (or the part's).")
    tendered_q = _amount(1, required=False, allow_null=True, help_text="Cash handed over (change = tendered − amount − tip).")
    tip_q = _amount(0, required=False, default=0)
    tip_percent = serializers.CharField(
        required=False, allow_null=True, max_length=6, trim_whitespace=False, validators=[RegexValidator(TIP_PERCENT_PATTERN)],
        help_text="A tip of this percent of the amount (text, 0-100, 2 decimals), added to tip_q.",
    )
    reference = _text(128, present=False, required=False, default="", help_text="Card authorization code, Pix txid…")
    brand = _text(32, present=False, required=False, default="")
    part = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=MAX_PARTS - 1)
    currency = serializers.CharField(required=False, max_length=3, trim_whitespace=False, validators=[RegexValidator(CURRENCY_PATTERN)])
    expected_rev = _expected_rev()
    register = serializers.SlugField(max_length=64, required=False, trim_whitespace=False,
                                     help_text="The register whose open shift takes the payment (default: the channel's, else main).")


class SplitGroupLineSerializer(serializers.Serializer):
    order_ref = _text(64)
    line_id = _text(64)


class SplitSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=["equal", "items", "none"])
    parts = serializers.IntegerField(required=False, allow_null=True, min_value=2, max_value=MAX_PARTS)
    groups = serializers.ListField(
        child=serializers.ListField(child=SplitGroupLineSerializer(), min_length=1, max_length=500),
        required=False, allow_null=True, max_length=MAX_PARTS,
        help_text="items: each group's lines are one guest's part.",
    )
    rest_parts = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_PARTS)
    expected_rev = _expected_rev()


class BillDiscountSerializer(serializers.Serializer):
    """Exactly one of ``percent`` and ``amount_q``."""

    percent = serializers.CharField(
        required=False, max_length=8, trim_whitespace=False, validators=[RegexValidator(DISCOUNT_PERCENT_PATTERN)],
        help_text="More than 0, at most 100, 2 decimals, as text.",
    )
    amount_q = _amount(1, required=False)
    order_ref = _text(64, present=False, required=False, default="", help_text="With line_id: a line's discount.")
    line_id = _text(64, present=False, required=False, default="")
    reason = _text(255)
    expected_rev = _expected_rev()
    approved_by = _text(150, present=False, required=False, default="", help_text="A manager's username…")
    approval_pin = _text(8, present=False, required=False, default="", help_text="…and their PIN: their approval.")

    def validate(self, attrs):
        if ("percent" in attrs) == ("amount_q" in attrs):
            raise serializers.ValidationError({"percent": ["Give percent or amount_q (one of them)."]})
        return attrs


class ReasonSerializer(serializers.Serializer):
    reason = _text(255)
    expected_rev = _expected_rev()


class VoidSerializer(serializers.Serializer):
    qty = QtyField(required=False, help_text="How many to void (default: all that is left of the line).")
    reason = _text(255)
    approved_by = _text(150, present=False, required=False, default="", help_text="A manager's username…")
    approval_pin = _text(8, present=False, required=False, default="", help_text="…and their PIN: their approval.")


class RefundRequestSerializer(serializers.Serializer):
    amount_q = _amount(1)
    reason = _text(255)
    register = serializers.SlugField(max_length=64, required=False, trim_whitespace=False,
                                     help_text="The register whose drawer pays it out (default: the payment's).")


class RevQuerySerializer(serializers.Serializer):
    expected_rev = _expected_rev()


# -- responses --------------------------------------------------------------------------------


class BillAdjustmentSerializer(serializers.Serializer):
    id = serializers.CharField()
    kind = serializers.CharField(help_text="discount, surcharge, service_charge, void or write_off.")
    label = serializers.CharField()
    line_id = serializers.CharField(help_text="`<order_ref>:<line_id>`, or empty for the whole bill.")
    percent = serializers.CharField(allow_null=True)
    amount_q = serializers.IntegerField(help_text="Signed: negative takes off.")
    reason = serializers.CharField()
    actor = serializers.CharField()
    approved_by = serializers.CharField()
    at = serializers.CharField()


class BillSplitPartSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    label = serializers.CharField()
    amount_q = serializers.IntegerField()
    paid_q = serializers.IntegerField()
    lines = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


class BillLineSerializer(serializers.Serializer):
    order_ref = serializers.CharField()
    line_id = serializers.CharField()
    sku = serializers.CharField()
    name = serializers.CharField()
    qty = serializers.SerializerMethodField()
    voided_qty = serializers.SerializerMethodField()
    unit_price_q = serializers.IntegerField()
    line_total_q = serializers.IntegerField()
    modifiers = serializers.CharField(help_text='The line\'s modifiers as one text ("Medium · Bacon"), "" without.')

    def get_qty(self, line) -> str:
        from omniman.monetary import qty_to_str

        return qty_to_str(line["qty"])

    def get_voided_qty(self, line) -> str:
        from omniman.monetary import qty_to_str

        return qty_to_str(line["voided_qty"])


class PaymentSerializer(serializers.ModelSerializer):
    shift_id = serializers.IntegerField(allow_null=True, help_text="The shift (drawer) it went into.")

    class Meta:
        model = Payment
        fields = [
            "id", "method", "amount_q", "tip_q", "tendered_q", "change_q", "currency", "reference", "brand", "part",
            "status", "actor", "created_at", "shift_id",
        ]


class RefundSerializer(serializers.ModelSerializer):
    payment_id = serializers.IntegerField()

    class Meta:
        model = Refund
        fields = ["id", "payment_id", "amount_q", "reason", "actor", "status", "reference", "created_at"]


class BillSerializer(serializers.Serializer):
    ref = serializers.CharField(source="bill.ref")
    channel_code = serializers.CharField(source="bill.channel.code")
    handle_type = serializers.CharField(source="bill.handle_type")
    handle_ref = serializers.CharField(source="bill.handle_ref")
    status = serializers.CharField(source="bill.status", help_text="open, settled or written_off.")
    rev = serializers.IntegerField(help_text="Pass it back as expected_rev: a bill that moved on answers 409 stale_bill.")
    currency = serializers.CharField(source="bill.currency")
    total_q = serializers.IntegerField(help_text="Its orders' totals plus the bill's adjustments.")
    paid_q = serializers.IntegerField(help_text="Sum of the payments' amount_q (tips apart).")
    due_q = serializers.IntegerField()
    tips_q = serializers.IntegerField()
    change_q = serializers.IntegerField()
    refunded_q = serializers.IntegerField()
    order_refs = serializers.SerializerMethodField()
    lines = BillLineSerializer(many=True)
    adjustments = BillAdjustmentSerializer(many=True)
    splits = BillSplitPartSerializer(many=True)
    payments = PaymentSerializer(many=True)
    refunds = RefundSerializer(many=True)
    opened_at = serializers.DateTimeField(source="bill.opened_at")
    settled_at = serializers.DateTimeField(source="bill.settled_at", allow_null=True)
    closed_by = serializers.CharField(source="bill.closed_by")

    def get_order_refs(self, view: BillView) -> list[str]:
        return [order.ref for order in view.orders]


class TenderResultSerializer(serializers.Serializer):
    payment = PaymentSerializer()
    bill = BillSerializer()
    idempotent = serializers.BooleanField(help_text="True when this is the replay of an earlier payment (same key).")


class RefundResultSerializer(serializers.Serializer):
    refund = RefundSerializer()
    bill = BillSerializer()
    idempotent = serializers.BooleanField()


def _bill(ref: str, *, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(BillSerializer(bill_view(ref)).data, status=status_code)


# -- views ----------------------------------------------------------------------------------------


class BillOpenView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Open (or get) the bill of a table or of one order",
        description="Get-or-open: a handle's open bill with every unpaid round of today joined to it, or the bill of "
        "`order_ref` (a counter sale). 201 when opened, 200 when it was there.",
        request=BillOpenSerializer,
        responses={201: BillSerializer, 200: BillSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request):
        payload = _body(BillOpenSerializer, request)
        bill = BillService.open(
            payload["channel_code"], handle_type=payload["handle_type"], handle_ref=payload["handle_ref"],
            order_ref=payload["order_ref"], actor=actor(request),
        )
        return _bill(bill.ref, status_code=status.HTTP_201_CREATED if bill.created else status.HTTP_200_OK)


class BillDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(summary="A bill: lines, adjustments, split plan, payments, refunds, what is due",
                   responses={200: BillSerializer, **_errors(404)})
    def get(self, request, bill_ref: str):
        return _bill(bill_ref)


class BillPaymentView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Record a payment (cash, card, Pix, gateway)",
        description="201 with the payment and the bill; the same `Idempotency-Key` again answers 200 with the first "
        "payment (`idempotent: true`). When payments cover the total the bill is settled. 400 `overpayment`, "
        "`insufficient_tender`, `unknown_method`, `reference_required` (card), `currency_mismatch`, `invalid_split`, "
        "`payment_declined`; 409 `stale_bill`, `already_paid`, `conflict`; 503 `gateway_unavailable`.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=TenderSerializer,
        responses={201: TenderResultSerializer, 200: TenderResultSerializer, **_errors(404, 409, 413, 503)},
    )
    def post(self, request, bill_ref: str):
        payload = _body(TenderSerializer, request)
        key = _idempotency_key(request)
        result = PaymentService.tender(
            bill_ref, idempotency_key=key, actor=actor(request), roles=roles_of(request.user), **payload
        )
        body = {
            "payment": PaymentSerializer(result.payment).data,
            "bill": BillSerializer(bill_view(result.bill.ref)).data,
            "idempotent": result.idempotent,
        }
        return Response(body, status=status.HTTP_200_OK if result.idempotent else status.HTTP_201_CREATED)


class BillSplitView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Plan how the bill is paid: equally, by items (and the rest equally), or not split",
        description="The parts add up exactly to the due. 400 `invalid_split`, `line_not_found`; 409 `stale_bill` "
        "(the fresh bill in `context.bill`), `already_paid`.",
        request=SplitSerializer,
        responses={200: BillSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request, bill_ref: str):
        payload = _body(SplitSerializer, request)
        bill = BillService.split(
            bill_ref, expected_rev=payload.get("expected_rev"), mode=payload["mode"], parts=payload.get("parts"),
            groups=payload.get("groups"), rest_parts=payload.get("rest_parts"), actor=actor(request),
        )
        return _bill(bill.ref)


class BillDiscountView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Discount a line or the whole bill (percent or amount, with a reason)",
        description="Over the channel's `discounts.approval_over_percent` (cumulative) a manager must ask, or "
        "`approved_by` + `approval_pin` be a manager's: 403 `approval_required`, `approval_failed`. 400 `invalid_discount`, `reason_required`, `line_not_found`; 409 `stale_bill`, `already_paid`.",
        request=BillDiscountSerializer,
        responses={200: BillSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request, bill_ref: str):
        payload = _body(BillDiscountSerializer, request)
        approval = _approval(payload)
        bill = BillService.discount(
            bill_ref, expected_rev=payload.get("expected_rev"), percent=payload.get("percent"),
            amount_q=payload.get("amount_q"), order_ref=payload["order_ref"], line_id=payload["line_id"],
            reason=payload["reason"], actor=actor(request), roles=roles_of(request.user), **approval,
        )
        return _bill(bill.ref)


class BillAdjustmentView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Take a discount (or surcharge) off the bill",
        description="400 `not_removable` (a void or a write-off); 404 `not_found`; 409 `stale_bill`, `already_paid`.",
        parameters=[RevQuerySerializer],
        responses={200: BillSerializer, **_errors(404, 409)},
    )
    def delete(self, request, bill_ref: str, adjustment_id: str):
        query = _query(RevQuerySerializer, request)
        bill = BillService.remove_adjustment(
            bill_ref, adjustment_id, expected_rev=query.get("expected_rev"), actor=actor(request), roles=roles_of(request.user)
        )
        return _bill(bill.ref)


class BillWriteOffView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Write off what is still due (a manager, with a reason)",
        description="403 `forbidden` (not a manager); 400 `reason_required`; 409 `stale_bill`, `already_paid`.",
        request=ReasonSerializer,
        responses={200: BillSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request, bill_ref: str):
        payload = _body(ReasonSerializer, request)
        bill = BillService.write_off(
            bill_ref, expected_rev=payload.get("expected_rev"), reason=payload["reason"], actor=actor(request),
            roles=roles_of(request.user),
        )
        return _bill(bill.ref)


class OrderLineVoidView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Void (part of) a sent line: the kitchen board shows it, the bill drops it (a manager)",
        description="A manager, or `approved_by` + `approval_pin` a manager's: 403 `approval_required`, "
        "`approval_failed`; 400 `line_not_found`, `over_void`, `reason_required`; 409 "
        "`already_voided`, `already_paid` (refund instead).",
        request=VoidSerializer,
        responses={200: BillSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request, ref: str, line_id: str):
        payload = _body(VoidSerializer, request)
        approval = _approval(payload)
        bill = BillService.void_item(
            ref, line_id, qty=payload.get("qty"), reason=payload["reason"], actor=actor(request),
            roles=roles_of(request.user), **approval,
        )
        return _bill(bill.ref)


class PaymentRefundView(APIView):
    permission_classes = [CanPay]

    @extend_schema(
        summary="Refund (part of) a payment (a manager)",
        description="201 with the refund; the same `Idempotency-Key` again answers 200 (`idempotent: true`). 403 "
        "`forbidden`; 400 `over_refund`, `reason_required`; 409 `conflict`; 503 `gateway_unavailable`.",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=RefundRequestSerializer,
        responses={201: RefundResultSerializer, 200: RefundResultSerializer, **_errors(404, 409, 413, 503)},
    )
    def post(self, request, payment_id: int):
        payload = _body(RefundRequestSerializer, request)
        key = _idempotency_key(request)
        refund = PaymentService.refund(
            payment_id, amount_q=payload["amount_q"], reason=payload["reason"], idempotency_key=key,
            actor=actor(request), roles=roles_of(request.user), register=payload.get("register", ""),
        )
        bill_ref = Payment.objects.filter(pk=refund.payment_id).values_list("bill__ref", flat=True).get()
        body = {"refund": RefundSerializer(refund).data, "bill": BillSerializer(bill_view(bill_ref)).data,
                "idempotent": refund.idempotent}
        return Response(body, status=status.HTTP_200_OK if refund.idempotent else status.HTTP_201_CREATED)


def postprocess(result: dict[str, Any]) -> None:
    """What the serializers cannot say: which of the bill-opening and discount fields go together."""
    schemas = result.get("components", {}).get("schemas", {})
    present = {"type": "string", "minLength": 1, "pattern": _PRESENT}
    opening = schemas.get("BillOpenRequest")
    if opening is not None:
        opening["anyOf"] = [
            {"required": ["order_ref"], "properties": {"order_ref": present}},
            {"required": ["handle_ref"], "properties": {"handle_ref": present}},
        ]
    discount = schemas.get("BillDiscountRequest")
    if discount is not None:
        discount["oneOf"] = [{"required": ["percent"]}, {"required": ["amount_q"]}]
