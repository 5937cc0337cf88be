"""``/api/kitchen/…``: the kitchen's per-station items over HTTP (``KitchenService``).

Parse → one service call → serialize; errors are the kernel's codes through the
API's exception handler (409 ``stale_status``/``not_in_kitchen``/``item_held``/
``not_ready``/``undo_expired``, 400 ``invalid_transition``, 403
``forbidden_transition``, 404 ``not_found``).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from omniman.api.permissions import CanFireCourses, CanRead, CanWorkKitchen, actor
from omniman.api.views import errors
from omniman.roles import roles_of
from omniman.services import KitchenService, order_kitchen, sold_out_skus


class KitchenItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    line_id = serializers.CharField()
    station = serializers.CharField()
    status = serializers.CharField()
    held = serializers.BooleanField()
    voided_qty = serializers.CharField(help_text="Decimal string: how much of the line was voided.")
    void_pending = serializers.BooleanField(help_text="A void no cook acknowledged yet (the board shows VOID).")
    rev = serializers.IntegerField()


class KitchenResultSerializer(serializers.Serializer):
    order_ref = serializers.CharField()
    order_status = serializers.CharField(help_text="The order's status after its items moved (it follows them).")
    items = KitchenItemSerializer(many=True, help_text="The items this call moved.")


class OrderKitchenSerializer(serializers.Serializer):
    order_ref = serializers.CharField()
    order_status = serializers.CharField()
    items = KitchenItemSerializer(many=True)


class MoveRequestSerializer(serializers.Serializer):
    order_ref = serializers.CharField(max_length=64)
    item_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, min_length=1, max_length=200,
        help_text="Only these items of the order (they must be in expected_status); omitted: the station's items in it.",
    )
    station = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="A station's code; omitted or blank: the expo (every station)."
    )
    expected_status = serializers.CharField(max_length=32, help_text="The items' status as the caller saw it.")


class AcknowledgeRequestSerializer(serializers.Serializer):
    order_ref = serializers.CharField(max_length=64)
    item_ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False, min_length=1, max_length=200)
    station = serializers.CharField(required=False, allow_blank=True, max_length=32)


class FireRequestSerializer(serializers.Serializer):
    line_ids = serializers.ListField(
        child=serializers.CharField(max_length=64, allow_blank=True), required=False, max_length=200, help_text="Omitted: every held item."
    )
    hold = serializers.BooleanField(required=False, default=False, help_text="true: hold these lines instead (a later course).")


class SoldOutRequestSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    sold_out = serializers.BooleanField()


class SoldOutSerializer(serializers.Serializer):
    skus = serializers.ListField(child=serializers.CharField())


def _body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data if isinstance(request.data, dict) else {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _target(payload: dict) -> dict:
    return {"order_ref": payload["order_ref"], "item_ids": payload.get("item_ids"), "station": payload.get("station") or None}


class KitchenBumpView(APIView):
    permission_classes = [CanWorkKitchen]

    @extend_schema(
        summary="Bump kitchen items one step along their channel's kitchen flow",
        description="`item_ids`, or `order_ref` + `station` (that station's items in `expected_status`; no station: "
        "the expo, handing the order out). The order's status follows from its items.",
        request=MoveRequestSerializer,
        responses={200: KitchenResultSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request):
        payload = _body(MoveRequestSerializer, request)
        result = KitchenService.bump(
            **_target(payload), expected_status=payload["expected_status"], actor=actor(request), roles=roles_of(request.user)
        )
        return Response(result.as_dict())


class KitchenUndoView(APIView):
    permission_classes = [CanWorkKitchen]

    @extend_schema(
        summary="Undo the last bump of kitchen items (within the channel's undo_minutes)",
        request=MoveRequestSerializer,
        responses={200: KitchenResultSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request):
        payload = _body(MoveRequestSerializer, request)
        result = KitchenService.undo(
            **_target(payload), expected_status=payload["expected_status"], actor=actor(request), roles=roles_of(request.user)
        )
        return Response(result.as_dict())


class KitchenAcknowledgeView(APIView):
    permission_classes = [CanWorkKitchen]

    @extend_schema(summary="Acknowledge voided items (the VOID mark goes)", request=AcknowledgeRequestSerializer, responses={200: KitchenResultSerializer, **errors(400, 404, 409, 413)})
    def post(self, request):
        payload = _body(AcknowledgeRequestSerializer, request)
        result = KitchenService.acknowledge_void(**_target(payload), actor=actor(request))
        return Response(result.as_dict())


class KitchenSoldOutView(APIView):
    permission_classes = [CanWorkKitchen]

    @extend_schema(summary="The SKUs marked sold out (86)", responses={200: SoldOutSerializer, **errors()})
    def get(self, request):
        return Response({"skus": sorted(sold_out_skus())})

    @extend_schema(summary="Mark a SKU sold out (86) or back on", request=SoldOutRequestSerializer, responses={200: SoldOutSerializer, **errors(400, 413)})
    def post(self, request):
        payload = _body(SoldOutRequestSerializer, request)
        KitchenService.set_sold_out(payload["sku"], payload["sold_out"], actor=actor(request))
        return Response({"skus": sorted(sold_out_skus())})


class OrderKitchenView(APIView):
    permission_classes = [CanRead]

    @extend_schema(summary="An order's kitchen items (station, status, held, voids)", responses={200: OrderKitchenSerializer, **errors(404)})
    def get(self, request, ref: str):
        return Response(order_kitchen(ref).as_dict())


class OrderFireView(APIView):
    permission_classes = [CanFireCourses]

    @extend_schema(
        summary="Fire held lines to the kitchen (a course), or hold lines",
        request=FireRequestSerializer,
        responses={200: KitchenResultSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request, ref: str):
        payload = _body(FireRequestSerializer, request)
        if payload.get("hold"):
            result = KitchenService.hold(ref, line_ids=payload.get("line_ids") or [], actor=actor(request))
        else:
            result = KitchenService.fire(ref, line_ids=payload.get("line_ids"), actor=actor(request))
        return Response(result.as_dict())
