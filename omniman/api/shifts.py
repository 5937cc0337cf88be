"""The shifts' REST API (issue #18): registers, open a shift, cash in/out, close, the Z-report.

Parse → one kernel service (``ShiftService``) or selector → serialize. The codes are the services'
(docs/api/shifts.rst). Reading and writing need the ``pos`` or ``manager`` role (the drawer is not the
kitchen's business); a difference over the threshold needs a manager (``approved_by`` + ``approval_pin``).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from omniman.api.bills import IDEMPOTENCY_HEADER, IDEMPOTENCY_PATTERN, MAX_AMOUNT_Q, _idempotency_key
from omniman.api.permissions import RolePermission, actor
from omniman.api.serializers import ErrorSerializer, _expected_rev, _text
from omniman.api.views import _approval, _body
from omniman.models import CashMovement, Shift, ShiftEvent
from omniman.roles import MANAGER, POS, roles_of
from omniman.services import ShiftService, denominations, difference_threshold_q, registers, shift_detail, z_report

MAX_COUNT = 10**5
MAX_DENOMINATIONS = 30
MAX_DENOMINATION_Q = 10**6


class CanRunShifts(RolePermission):
    """Registers and shifts: read and write as pos or manager."""

    read_roles = (POS, MANAGER)
    write_roles = (POS, MANAGER)


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    described = {
        400: "Refused input: `invalid` (`context.fields`), `missing_field`, `invalid_amount`, `invalid_count`, "
        "`reason_required`, `missing_idempotency_key`.",
        401: "Not authenticated.",
        403: "Without the role (`permission_denied`); `difference_needs_approval` (the drawer is off by more than the "
        "register's threshold: a manager closes, or `approved_by` + `approval_pin` are a manager's); `approval_failed`.",
        404: "`register_not_found` or `shift_not_found`.",
        409: "`shift_already_open` (context `shift_id`), `shift_closed`, `stale_shift`, `conflict` (the idempotency key "
        "was used for something else).",
        413: "The body is too large (`payload_too_large`).",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=described[code]) for code in sorted({400, 401, 403, *codes})}


OPTIONAL_IDEMPOTENCY = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False, pattern=IDEMPOTENCY_PATTERN,
    description="Optional: the same key again answers the shift it opened (200) and writes nothing.",
)
REQUIRED_IDEMPOTENCY = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=True, pattern=IDEMPOTENCY_PATTERN,
    description="Minted once per movement and reused on every retry: the same key answers the first movement (200).",
)


class CountLineSerializer(serializers.Serializer):
    denomination_q = serializers.IntegerField(min_value=1, max_value=MAX_DENOMINATION_Q, help_text="A note or coin, in cents.")
    count = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, help_text="How many of it.")


def _count_field(**kwargs) -> serializers.ListField:
    return serializers.ListField(
        child=CountLineSerializer(), min_length=1, max_length=MAX_DENOMINATIONS, required=False,
        help_text="The notes and coins counted, one line per denomination (a denomination twice adds up). Its total is "
        "the amount; the shift stores it as {\"<denomination in cents>\": count}.", **kwargs,
    )


def _one_of(attrs: dict[str, Any], total: str, count: str) -> dict[str, Any]:
    if (total in attrs) == (count in attrs):
        raise serializers.ValidationError({total: [f"Give {total} or {count} (one of them)."]})
    return attrs


def _as_count(lines: list[dict[str, int]] | None) -> dict[str, int] | None:
    """``[{"denomination_q", "count"}]`` → ``{"<denomination>": count}`` (what the service takes)."""
    if lines is None:
        return None
    count: dict[str, int] = {}
    for line in lines:
        key = str(line["denomination_q"])
        count[key] = count.get(key, 0) + line["count"]
    return count


# -- requests -----------------------------------------------------------------------------


class ShiftOpenSerializer(serializers.Serializer):
    register = serializers.SlugField(max_length=64, trim_whitespace=False, help_text="The register's code.")
    opening_float_q = serializers.IntegerField(min_value=0, max_value=MAX_AMOUNT_Q, required=False,
                                               help_text="The float as a total (or give opening_count).")
    opening_count = _count_field()

    def validate(self, attrs):
        return _one_of(attrs, "opening_float_q", "opening_count")


class CashMovementRequestSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["in", "out"])
    amount_q = serializers.IntegerField(min_value=1, max_value=MAX_AMOUNT_Q)
    reason = _text(255)


class ShiftCloseSerializer(serializers.Serializer):
    counted_q = serializers.IntegerField(min_value=0, max_value=MAX_AMOUNT_Q, required=False,
                                         help_text="The drawer counted, as a total (or give closing_count).")
    closing_count = _count_field()
    expected_rev = _expected_rev()
    reason = _text(255, present=False, required=False, default="", help_text="Why the drawer is off (kept with the difference).")
    approved_by = _text(150, present=False, required=False, default="", help_text="A manager's username…")
    approval_pin = _text(8, present=False, required=False, default="", help_text="…and their PIN: they accept the difference.")

    def validate(self, attrs):
        return _one_of(attrs, "counted_q", "closing_count")


# -- responses --------------------------------------------------------------------------------


class CashMovementSerializer(serializers.ModelSerializer):
    shift_id = serializers.IntegerField()

    class Meta:
        model = CashMovement
        fields = ["id", "shift_id", "kind", "amount_q", "reason", "actor", "created_at"]


class ShiftEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = ShiftEvent
        fields = ["type", "actor", "reason", "payload", "created_at"]


class ShiftSerializer(serializers.ModelSerializer):
    register = serializers.CharField(source="register.code")
    opening_count = serializers.DictField(child=serializers.IntegerField())
    closing_count = serializers.DictField(child=serializers.IntegerField())

    class Meta:
        model = Shift
        fields = [
            "id", "register", "status", "currency", "opening_float_q", "opening_count", "opened_by", "opened_at",
            "auto_opened", "closed_by", "closed_at", "counted_q", "closing_count", "expected_cash_q", "difference_q",
            "difference_approved_by", "difference_reason", "rev",
        ]


class ShiftDetailSerializer(ShiftSerializer):
    cash_movements = CashMovementSerializer(many=True, source="movements")
    events = ShiftEventSerializer(many=True, source="audit")

    class Meta(ShiftSerializer.Meta):
        fields = [*ShiftSerializer.Meta.fields, "cash_movements", "events"]


class RegisterSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    denominations = serializers.SerializerMethodField(help_text="The notes and coins of its count form, in cents.")
    difference_threshold_q = serializers.SerializerMethodField(help_text="The largest difference a cashier closes alone.")
    open_shift_id = serializers.SerializerMethodField()

    def get_denominations(self, register) -> list[int]:
        return denominations(register)

    def get_difference_threshold_q(self, register) -> int:
        return difference_threshold_q(register)

    def get_open_shift_id(self, register) -> int | None:
        return register.open_shift.pk if register.open_shift else None


class MethodFiguresSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    amount_q = serializers.IntegerField()
    tip_q = serializers.IntegerField(required=False)
    change_q = serializers.IntegerField(required=False)


class CashSummarySerializer(serializers.Serializer):
    float_q = serializers.IntegerField()
    cash_sales_q = serializers.IntegerField()
    cash_tips_q = serializers.IntegerField()
    cash_in_q = serializers.IntegerField()
    cash_out_q = serializers.IntegerField()
    cash_refunds_q = serializers.IntegerField()
    expected_q = serializers.IntegerField(help_text="float + cash sales + cash tips + cash in − cash out − cash refunds")
    counted_q = serializers.IntegerField(allow_null=True)
    difference_q = serializers.IntegerField(allow_null=True, help_text="counted − expected (null while open).")
    difference_approved_by = serializers.CharField()
    difference_reason = serializers.CharField()
    threshold_q = serializers.IntegerField()


class OpenBillsSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    paid_q = serializers.IntegerField()


class ZReportSerializer(serializers.Serializer):
    shift_id = serializers.IntegerField()
    register = serializers.CharField()
    register_name = serializers.CharField()
    status = serializers.CharField()
    currency = serializers.CharField()
    opened_at = serializers.CharField()
    opened_by = serializers.CharField()
    auto_opened = serializers.BooleanField()
    closed_at = serializers.CharField(allow_null=True)
    closed_by = serializers.CharField()
    by_method = serializers.DictField(child=MethodFiguresSerializer())
    payments_q = serializers.IntegerField()
    tips_q = serializers.IntegerField()
    change_q = serializers.IntegerField()
    refunds = serializers.DictField(child=MethodFiguresSerializer())
    refunds_q = serializers.IntegerField()
    bills = serializers.IntegerField(help_text="Bills closed in the shift (their last payment is in it).")
    order_count = serializers.IntegerField()
    sales_q = serializers.IntegerField()
    average_ticket_q = serializers.IntegerField()
    discounts_q = serializers.IntegerField()
    voids_q = serializers.IntegerField()
    service_q = serializers.IntegerField()
    written_off_q = serializers.IntegerField()
    open_bills = OpenBillsSerializer()
    cash = CashSummarySerializer()


def _shift(shift_id: Any, *, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(ShiftDetailSerializer(shift_detail(shift_id)).data, status=status_code)


def _optional_key(request) -> str:
    if not request.headers.get(IDEMPOTENCY_HEADER, ""):
        return ""
    return _idempotency_key(request)


# -- views ----------------------------------------------------------------------------------------


class RegisterListView(APIView):
    permission_classes = [CanRunShifts]

    @extend_schema(summary="The active registers, each with its open shift", responses={200: RegisterSerializer(many=True),
                                                                                        **_errors()})
    def get(self, request):
        return Response(RegisterSerializer(registers(), many=True).data)


class ShiftOpenView(APIView):
    permission_classes = [CanRunShifts]

    @extend_schema(
        summary="Open a register's shift with a float (counted by denomination or as a total)",
        description="201 with the shift. 409 `shift_already_open` (context `shift_id`): the register has one open (of two "
        "opens racing, one wins). 400 `missing_field` (neither a total nor a count), `invalid_count`.",
        parameters=[OPTIONAL_IDEMPOTENCY],
        request=ShiftOpenSerializer,
        responses={201: ShiftDetailSerializer, 200: ShiftDetailSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request):
        payload = _body(ShiftOpenSerializer, request)
        shift = ShiftService.open(
            payload["register"], opening_float_q=payload.get("opening_float_q"), opening_count=_as_count(payload.get("opening_count")),
            actor=actor(request), idempotency_key=_optional_key(request),
        )
        return _shift(shift.pk, status_code=status.HTTP_200_OK if shift.idempotent else status.HTTP_201_CREATED)


class ShiftDetailView(APIView):
    permission_classes = [CanRunShifts]

    @extend_schema(summary="A shift, its cash movements and its audit events", responses={200: ShiftDetailSerializer,
                                                                                             **_errors(404)})
    def get(self, request, shift_id: int):
        return _shift(shift_id)


class CashMovementView(APIView):
    permission_classes = [CanRunShifts]

    @extend_schema(
        summary="Put cash into (in) or take it out of (out) the drawer, with a reason",
        description="201 with the movement; the same `Idempotency-Key` again answers 200 with the first one. 400 "
        "`reason_required`, `invalid_amount`; 409 `shift_closed`, `conflict`.",
        parameters=[REQUIRED_IDEMPOTENCY],
        request=CashMovementRequestSerializer,
        responses={201: CashMovementSerializer, 200: CashMovementSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request, shift_id: int):
        payload = _body(CashMovementRequestSerializer, request)
        key = _idempotency_key(request)
        move = ShiftService.cash_in if payload["kind"] == "in" else ShiftService.cash_out
        movement = move(shift_id, amount_q=payload["amount_q"], reason=payload["reason"], actor=actor(request), idempotency_key=key)
        return Response(CashMovementSerializer(movement).data,
                        status=status.HTTP_200_OK if movement.idempotent else status.HTTP_201_CREATED)


class ShiftCloseView(APIView):
    permission_classes = [CanRunShifts]

    @extend_schema(
        summary="Close the shift with the drawer counted: expected vs counted, the difference",
        description="200 with the closed shift (`expected_cash_q`, `counted_q`, `difference_q`). A difference over the "
        "register's threshold needs a manager: 403 `difference_needs_approval` (context `expected_q`, `counted_q`, "
        "`difference_q`, `threshold_q`) unless the caller is one or `approved_by` + `approval_pin` are a manager's. "
        "409 `shift_closed`, `stale_shift`. The Z-report is emailed to the managers.",
        request=ShiftCloseSerializer,
        responses={200: ShiftDetailSerializer, **_errors(404, 409, 413)},
    )
    def post(self, request, shift_id: int):
        payload = _body(ShiftCloseSerializer, request)
        approval = _approval(payload)
        shift = ShiftService.close(
            shift_id, counted_q=payload.get("counted_q"), closing_count=_as_count(payload.get("closing_count")),
            expected_rev=payload.get("expected_rev"), actor=actor(request), roles=roles_of(request.user),
            reason=payload["reason"], **approval,
        )
        return _shift(shift.pk)


class ZReportView(APIView):
    permission_classes = [CanRunShifts]

    @extend_schema(
        summary="The shift's Z-report (an X-report while it is open)",
        description="Sales by payment method, tips, refunds, the bills closed (sales, orders, average ticket, discounts, "
        "voids, service charge, write-offs), bills still open, and the cash drawer. Definitions: docs/api/shifts.rst.",
        responses={200: ZReportSerializer, **_errors(404)},
    )
    def get(self, request, shift_id: int):
        return Response(ZReportSerializer(z_report(shift_id)).data)


def postprocess(result: dict[str, Any]) -> None:
    """What the serializers cannot say: a total or a count (one of them)."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, total, count in (("ShiftOpenRequest", "opening_float_q", "opening_count"),
                               ("ShiftCloseRequest", "counted_q", "closing_count")):
        schema = schemas.get(name)
        if schema is None:
            continue
        schema["oneOf"] = [{"required": [total]}, {"required": [count]}]
    # A close with no body has neither: the body is required (the serializers alone leave it optional).
    close = result.get("paths", {}).get("/api/shifts/{shift_id}/close/", {}).get("post", {})
    if "requestBody" in close:
        close["requestBody"]["required"] = True
