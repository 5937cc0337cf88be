"""The floor's API (docs/api/floor.rst): the map of a table channel, moves between tables, the plan's placements.

Parse → one kernel service or selector → serialize; errors go to ``omniman.api.exceptions``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from omniman.api.permissions import CanRead, CanWriteSessions, RolePermission, actor
from omniman.api.serializers import SessionDetailSerializer, _channel_code, _expected_rev, _text
from omniman.api.views import _body, errors
from omniman.models import GRID_COLUMNS, GRID_ROWS, Channel, FloorTable
from omniman.roles import MANAGER
from omniman.services import FloorPlanService, FloorService, floor_tables


class CanPlaceTables(RolePermission):
    write_roles = (MANAGER,)


# -- serializers -------------------------------------------------------------------------------------------


class _MoveRequest(serializers.Serializer):
    channel_code = _channel_code()
    to_table = _text(32, help_text="The label (handle_ref) of the table to move to.")
    expected_rev = _expected_rev()
    to_expected_rev = serializers.IntegerField(
        required=False, allow_null=True, min_value=0,
        help_text="The rev you read of the target table's open tab (if it has one); 409 stale_rev (context.side "
        "= \"target\") if it moved on.",
    )


class TransferLinesRequestSerializer(_MoveRequest):
    line_ids = serializers.ListField(child=_text(64), allow_empty=False, min_length=1, max_length=500)


class MoveTabRequestSerializer(_MoveRequest):
    pass


class MergeTabsRequestSerializer(_MoveRequest):
    pass


class FloorMoveSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["lines", "tab", "merge"])
    from_table = serializers.CharField()
    to_table = serializers.CharField()
    line_ids = serializers.ListField(child=serializers.CharField())
    order_refs = serializers.ListField(child=serializers.CharField(), help_text="The rounds that moved (their kitchen tickets follow).")
    source = SessionDetailSerializer()
    target = SessionDetailSerializer()


class KitchenMarksSerializer(serializers.Serializer):
    waiting = serializers.IntegerField(help_text="Rounds in the kitchen, not ready yet.")
    ready = serializers.IntegerField(help_text="Rounds ready to serve.")


class FloorTableStateSerializer(serializers.Serializer):
    table = serializers.CharField()
    seats = serializers.IntegerField()
    x = serializers.IntegerField()
    y = serializers.IntegerField()
    w = serializers.IntegerField()
    h = serializers.IntegerField()
    placed = serializers.BooleanField(help_text="False for a table with a tab that is not on the plan.")
    occupied = serializers.BooleanField()
    session_key = serializers.CharField(help_text="The table's open tab (\"\" if none).")
    rev = serializers.IntegerField()
    lines = serializers.IntegerField()
    rounds = serializers.IntegerField()
    opened_at = serializers.DateTimeField(allow_null=True)
    minutes_open = serializers.IntegerField(allow_null=True)
    owed_q = serializers.IntegerField(help_text="Open round plus today's unpaid rounds (table_owed).")
    kitchen = KitchenMarksSerializer()


class FloorAreaStateSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="null: the tables with a tab that are not on the plan.")
    name = serializers.CharField()
    tables = FloorTableStateSerializer(many=True)


class FloorSerializer(serializers.Serializer):
    channel_code = serializers.CharField()
    version = serializers.CharField(help_text="Changes whenever the map would: poll with it.")
    areas = FloorAreaStateSerializer(many=True)


class PlacementSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    area_id = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    x = serializers.IntegerField(required=False, min_value=0, max_value=GRID_COLUMNS - 1)
    y = serializers.IntegerField(required=False, min_value=0, max_value=GRID_ROWS - 1)
    w = serializers.IntegerField(required=False, min_value=1, max_value=GRID_COLUMNS)
    h = serializers.IntegerField(required=False, min_value=1, max_value=GRID_ROWS)


class PlacementsRequestSerializer(serializers.Serializer):
    placements = PlacementSerializer(many=True)


class PlacedTableSerializer(serializers.ModelSerializer):
    class Meta:
        model = FloorTable
        fields = ["id", "area_id", "label", "seats", "x", "y", "w", "h", "is_active"]


# -- views -------------------------------------------------------------------------------------------------


def _floor_payload(channel: Channel) -> dict:
    state = floor_tables(channel)
    return {
        "channel_code": channel.code,
        "version": state.version,
        "areas": [
            {"id": area.id, "name": area.name, "tables": [table.as_dict() for table in area.tables]} for area in state.areas
        ],
    }


def _move_response(done) -> Response:
    body = done.as_dict()
    body["source"] = SessionDetailSerializer(done.source).data
    body["target"] = SessionDetailSerializer(done.target).data
    return Response(body)


class FloorView(APIView):
    permission_classes = [CanRead]

    @extend_schema(
        summary="The floor of a table channel: areas, tables, each table's tab now",
        description="Free/occupied, seats, minutes open, amount owed (`owed_q`: open round plus today's unpaid "
        "rounds), kitchen marks. Poll it with `version` (it changes whenever the map would).",
        responses={200: FloorSerializer, **errors(404)},
    )
    def get(self, request, code: str):
        channel = Channel.objects.filter(code=code, is_active=True).first()
        if channel is None or not channel.serves_tables:
            raise NotFound(f"No table channel {code!r}.")
        return Response(_floor_payload(channel))


class FloorPlacementsView(APIView):
    permission_classes = [CanPlaceTables]

    @extend_schema(
        summary="Place tables on the floor plan (managers)",
        description="All or nothing: 400 `off_grid` (a table that does not fit), `table_not_found`, `area_not_found`, "
        "`overlap`; 404 `channel_not_found`.",
        request=PlacementsRequestSerializer,
        responses={200: PlacedTableSerializer(many=True), **errors(404)},
    )
    def post(self, request, code: str):
        payload = _body(PlacementsRequestSerializer, request)
        tables = FloorPlanService.place_tables(code, [dict(p) for p in payload["placements"]], actor=actor(request))
        return Response(PlacedTableSerializer(tables, many=True).data)


class TransferLinesView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Transfer chosen lines of a table's open round to another table",
        description="Both tabs locked in one order, revs checked on both sides, one transaction, audited. "
        "400 `not_a_table`, `same_table`, `table_not_found`, `line_not_found`; 409 `stale_rev` (`context.side`), "
        "`already_committed`, `abandoned`, `locked`; 404 `not_found`.",
        request=TransferLinesRequestSerializer,
        responses={200: FloorMoveSerializer, **errors(404, 409)},
    )
    def post(self, request, key: str):
        p = _body(TransferLinesRequestSerializer, request)
        done = FloorService.transfer_lines(
            key, p["channel_code"], line_ids=p["line_ids"], to_table=p["to_table"], expected_rev=p.get("expected_rev"),
            to_expected_rev=p.get("to_expected_rev"), actor=actor(request),
        )
        return _move_response(done)


class MoveTabView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Move a whole tab to a free table (its sent rounds and kitchen tickets follow)",
        description="As transfer-lines, plus 409 `table_occupied` (merge instead) and 400 `nothing_to_move`.",
        request=MoveTabRequestSerializer,
        responses={200: FloorMoveSerializer, **errors(404, 409)},
    )
    def post(self, request, key: str):
        p = _body(MoveTabRequestSerializer, request)
        done = FloorService.move_tab(
            key, p["channel_code"], to_table=p["to_table"], expected_rev=p.get("expected_rev"),
            to_expected_rev=p.get("to_expected_rev"), actor=actor(request),
        )
        return _move_response(done)


class MergeTabsView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Merge a table's whole tab into another table's",
        description="As move-tab, but the target may be occupied.",
        request=MergeTabsRequestSerializer,
        responses={200: FloorMoveSerializer, **errors(404, 409)},
    )
    def post(self, request, key: str):
        p = _body(MergeTabsRequestSerializer, request)
        done = FloorService.merge_tabs(
            key, p["channel_code"], to_table=p["to_table"], expected_rev=p.get("expected_rev"),
            to_expected_rev=p.get("to_expected_rev"), actor=actor(request),
        )
        return _move_response(done)
