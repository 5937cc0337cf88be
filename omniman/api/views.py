"""API views: parse → one kernel service or selector → serialize. Errors go to ``omniman.api.exceptions``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from omniman.api import selectors, signatures
from omniman.api.pagination import Pagination
from omniman.api.permissions import (
    CanIngest,
    CanRead,
    CanTransitionOrders,
    CanWriteSessions,
    actor,
    can_override_prices,
)
from omniman.api.serializers import (
    AdjustmentQuerySerializer,
    ApiRootSerializer,
    ChannelSerializer,
    CommitRequestSerializer,
    CommitResultSerializer,
    DiscountRequestSerializer,
    ErrorSerializer,
    ExternalOrderRequestSerializer,
    ExternalOrderResultSerializer,
    ExternalStatusRequestSerializer,
    ExternalStatusResultSerializer,
    ModifyRequestSerializer,
    OpenSessionRequestSerializer,
    OrderDetailSerializer,
    OrderListQuerySerializer,
    OrderSerializer,
    ResolveRequestSerializer,
    SessionActionSerializer,
    SessionDetailSerializer,
    SessionListQuerySerializer,
    SessionQuerySerializer,
    SessionSerializer,
    TransitionRequestSerializer,
    fast_validated_data,
    session_detail,
)
from omniman.approvals import verify_pin
from omniman.roles import roles_of
from omniman.services import (
    AdjustmentService,
    CommitService,
    ExternalOrderService,
    ModifyService,
    OrderService,
    ResolveService,
    SessionService,
    TableService,
)

PRICE_OVERRIDE_OP = "override_price"


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """The error responses of an operation; 400 (the input guard: a control character in the path or query),
    401 and 403 are on every one."""
    described = {
        400: "Invalid input (code `invalid` with `context.fields`, or a kernel code such as `invalid_qty`).",
        413: "The body is larger than `OMNIMAN[\"API_MAX_BODY_BYTES\"]` (`payload_too_large`, `context.max_bytes`).",
        401: "Not authenticated (`not_authenticated`, `authentication_failed`, `invalid_signature`).",
        403: "Authenticated without the role (`permission_denied`), or a status change the role may not make (`forbidden_transition`).",
        404: "`not_found` or `channel_not_found`.",
        409: "The world changed under you: `stale_rev`, `already_committed`, `locked`, `conflict`…",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=described[code]) for code in sorted({400, 401, 403, *codes})}


def _query(serializer_class, request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    empty = {name: ["May not be empty."] for name in serializer.fields if request.query_params.get(name, None) == ""}
    if empty:
        raise serializers.ValidationError(empty)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _valid(serializer_class, request) -> serializers.Serializer:
    if not isinstance(request.data, dict):
        raise serializers.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer


def _body(serializer_class, request) -> dict[str, Any]:
    """The body's validated data: open/modify/commit's usual bodies by their fast path, the rest (and every
    error) by the serializer (``omniman.api.serializers.fast_validated_data``)."""
    payload = fast_validated_data(serializer_class, request.data)
    if payload is not None:
        return payload
    return _valid(serializer_class, request).validated_data


def _session_response(session, *, status_code: int = status.HTTP_200_OK) -> Response:
    """The session as ``SessionDetailSerializer`` shows it (its schema), built by ``session_detail``."""
    return Response(session_detail(session), status=status_code)


# -- root and unknown paths -----------------------------------------------------------


class ApiRootView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Links to the API's collections", responses={200: ApiRootSerializer, **errors()})
    def get(self, request):
        return Response(
            {
                "channels": reverse("api:channel-list", request=request),
                "sessions": reverse("api:session-list", request=request),
                "orders": reverse("api:order-list", request=request),
                "schema": reverse("api:schema", request=request),
                "docs": reverse("api:docs", request=request),
            }
        )


class UnknownPathView(APIView):
    """Any other path under ``/api/``: 401 without credentials, else a JSON 404."""

    permission_classes = [IsAuthenticated]
    schema = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise NotFound(f"No API endpoint at {request.path}.")


# -- channels -------------------------------------------------------------------------


class ChannelListView(generics.ListAPIView):
    permission_classes = [CanRead]
    serializer_class = ChannelSerializer
    pagination_class = Pagination

    def get_queryset(self):
        return selectors.channels()

    @extend_schema(summary="Active channels", responses={200: ChannelSerializer(many=True), **errors(400, 404)})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ChannelDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(summary="One channel", responses={200: ChannelSerializer, **errors(404)})
    def get(self, request, code: str):
        return Response(ChannelSerializer(selectors.channel(code)).data)


# -- sessions ---------------------------------------------------------------------------


class SessionListView(generics.ListAPIView):
    permission_classes = [CanWriteSessions]
    serializer_class = SessionSerializer
    pagination_class = Pagination

    def get_queryset(self):
        return selectors.sessions(**_query(SessionListQuerySerializer, self.request))

    @extend_schema(
        summary="Sessions, newest first",
        parameters=[SessionListQuerySerializer],
        responses={200: SessionSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Get-or-open a session",
        description="With a handle (handle_type/handle_ref), the open session of that handle is returned (200) "
        "if there is one; otherwise a new session is opened (201). Only the caller that created the session gets "
        "201, even when several open one new handle at once. `items` delivers a whole basket at once.",
        request=OpenSessionRequestSerializer,
        responses={201: SessionDetailSerializer, 200: SessionDetailSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request):
        payload = _body(OpenSessionRequestSerializer, request)
        session = SessionService.open_session(
            payload["channel_code"],
            handle_type=payload["handle_type"],
            handle_ref=payload["handle_ref"],
            data=payload.get("data"),
            items=payload.get("items"),
            actor=actor(request),
        )
        return _session_response(session, status_code=status.HTTP_201_CREATED if session.created else status.HTTP_200_OK)


class SessionDetailView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="One session with its items, totals, rev, checks and issues",
        description="Session keys are unique: `channel_code` is optional; given, it must be the session's channel "
        "(else 404 `not_found`, or `channel_not_found` for a code no channel has).",
        parameters=[SessionQuerySerializer],
        responses={200: SessionDetailSerializer, **errors(400, 404)},
    )
    def get(self, request, key: str):
        query = _query(SessionQuerySerializer, request)
        return _session_response(selectors.session(key, query.get("channel_code")))


class SessionModifyView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Apply ops atomically (rev + 1)",
        description="`override_price` needs the manager role; its actor is the caller, whatever the op says.",
        request=ModifyRequestSerializer,
        responses={200: SessionDetailSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request, key: str):
        payload = _body(ModifyRequestSerializer, request)
        who = actor(request)
        ops = payload["ops"]
        if any(op.get("op") == PRICE_OVERRIDE_OP for op in ops):
            if not can_override_prices(request.user):
                raise PermissionDenied("Only a manager may override a price.")
            ops = [{**op, "actor": who} if op.get("op") == PRICE_OVERRIDE_OP else op for op in ops]
        session = ModifyService.modify_session(
            key, payload["channel_code"], ops, ctx={"actor": who}, expected_rev=payload.get("expected_rev")
        )
        # The checks this change ran in the request (DISPATCH_ON_COMMIT) are in the answer.
        return _session_response(SessionService.as_checked(session))


class SessionCommitView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Commit the session into an Order",
        description="201 with the new order; a replay with the same idempotency_key answers 200 with the same "
        "result and `idempotent: true`.",
        request=CommitRequestSerializer,
        responses={201: CommitResultSerializer, 200: CommitResultSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request, key: str):
        payload = _body(CommitRequestSerializer, request)
        who = actor(request)
        result = CommitService.commit(
            key,
            payload["channel_code"],
            idempotency_key=payload["idempotency_key"],
            ctx={"actor": who},
            actor=who,
            expected_rev=payload.get("expected_rev"),
        )
        return Response(result, status=status.HTTP_200_OK if result["idempotent"] else status.HTTP_201_CREATED)


class SessionResolveView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Apply one of an issue's actions",
        request=ResolveRequestSerializer,
        responses={200: SessionDetailSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request, key: str):
        payload = _body(ResolveRequestSerializer, request)
        session = ResolveService.resolve(
            key,
            payload["channel_code"],
            issue_id=payload["issue_id"],
            action_id=payload["action_id"],
            ctx={"actor": actor(request)},
            expected_rev=payload.get("expected_rev"),
        )
        return _session_response(session)


class SessionParkView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Park the session (leave it open for later)",
        description="Sets `data.parked` (rev + 1); parking a parked session changes nothing. Any later change "
        "(modify) resumes it.",
        request=SessionActionSerializer,
        responses={200: SessionDetailSerializer, **errors(400, 404, 409)},
    )
    def post(self, request, key: str):
        payload = _body(SessionActionSerializer, request)
        session = SessionService.park(
            key, payload["channel_code"], expected_rev=payload.get("expected_rev"), actor=actor(request)
        )
        return _session_response(session)


class SessionResumeView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Resume a parked session",
        description="Clears `data.parked` (rev + 1); a session that is not parked is returned as it is.",
        request=SessionActionSerializer,
        responses={200: SessionDetailSerializer, **errors(400, 404, 409)},
    )
    def post(self, request, key: str):
        payload = _body(SessionActionSerializer, request)
        session = SessionService.resume(
            key, payload["channel_code"], expected_rev=payload.get("expected_rev"), actor=actor(request)
        )
        return _session_response(session)


class SessionCloseTableView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Close a table: complete its orders of today, abandon its empty round",
        description="All or nothing. 400 `not_a_table` (the session has no table handle), 400 `round_not_sent` "
        "(the open round has items), 409 `stale_rev`, 404 `not_found`, 403 `forbidden_transition` (the flow does not "
        "let the caller's roles complete the rounds). Answers the tab as it is now.",
        request=SessionActionSerializer,
        responses={200: SessionDetailSerializer, **errors(400, 404, 409)},
    )
    def post(self, request, key: str):
        payload = _body(SessionActionSerializer, request)
        session = TableService.close(
            key,
            payload["channel_code"],
            expected_rev=payload.get("expected_rev"),
            actor=actor(request),
            roles=roles_of(request.user),
        )
        return _session_response(session)


# -- adjustments: discounts and the service charge ---------------------------------------------


def _approval(payload: dict[str, Any]) -> dict[str, Any]:
    """``approved_by`` + ``approval_pin`` → the approver's username and roles (403 ``approval_failed`` if the PIN is not theirs)."""
    if not payload.get("approved_by") and not payload.get("approval_pin"):
        return {}
    approver = verify_pin(payload.get("approved_by") or "", payload.get("approval_pin") or "")
    return {"approved_by": approver.username, "approver_roles": approver.roles}


class SessionDiscountView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Give a discount (a line or the whole), or set the service charge",
        description="`percent` or `amount_q`, with a `reason`; applied before the service charge. Above the "
        "channel's `discounts.approval_over_percent` (default 10 % of what it applies to, counting the discounts "
        "already there) a manager must approve: the caller is one, or `approved_by` + `approval_pin` are a manager's. "
        "`kind: service_charge` sets the service charge's percent (`\"0\"` waives it; always a manager's call). "
        "Answers 201 with the session (rev + 1, totals). Errors: 400 `invalid_discount`, `reason_required`, "
        "`line_not_found`, `invalid_adjustment`; 403 `approval_required` (context `threshold`, `percent`), "
        "`approval_failed`; 404 `not_found`; 409 `stale_rev`, `already_committed`. Nothing is written on an error.",
        request=DiscountRequestSerializer,
        responses={201: SessionDetailSerializer, **errors(400, 404, 409)},
    )
    def post(self, request, key: str):
        payload = _body(DiscountRequestSerializer, request)
        approval = _approval(payload)
        session = AdjustmentService.discount(
            key,
            payload["channel_code"],
            expected_rev=payload.get("expected_rev"),
            kind=payload["kind"],
            line_id=payload["line_id"],
            percent=payload.get("percent"),
            amount_q=payload.get("amount_q"),
            reason=payload["reason"],
            actor=actor(request),
            roles=roles_of(request.user),
            **approval,
        )
        return _session_response(session, status_code=status.HTTP_201_CREATED)


class SessionAdjustmentView(APIView):
    permission_classes = [CanWriteSessions]

    @extend_schema(
        summary="Remove a discount (or a waiver of the service charge)",
        description="`channel_code` (and optionally `expected_rev`) in the query string. The channel's automatic "
        "service charge is waived, not removed (400 `invalid_adjustment`). 404 `adjustment_not_found`, 409 `stale_rev`.",
        parameters=[AdjustmentQuerySerializer],
        responses={200: SessionDetailSerializer, **errors(400, 404, 409)},
    )
    def delete(self, request, key: str, adjustment_id: str):
        payload = _query(AdjustmentQuerySerializer, request)
        session = AdjustmentService.remove(
            key,
            payload["channel_code"],
            adjustment_id,
            expected_rev=payload.get("expected_rev"),
            actor=actor(request),
            roles=roles_of(request.user),
        )
        return _session_response(session)


# -- orders -----------------------------------------------------------------------------


class OrderListView(generics.ListAPIView):
    permission_classes = [CanRead]
    serializer_class = OrderSerializer
    pagination_class = Pagination

    def get_queryset(self):
        return selectors.orders(**_query(OrderListQuerySerializer, self.request))

    @extend_schema(
        summary="Orders with their items (newest first, or by updated_at for polling)",
        parameters=[OrderListQuerySerializer],
        responses={200: OrderSerializer(many=True), **errors(400, 404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class OrderDetailView(APIView):
    permission_classes = [CanRead]

    @extend_schema(summary="One order with its items and events", responses={200: OrderDetailSerializer, **errors(404)})
    def get(self, request, ref: str):
        return Response(OrderDetailSerializer(selectors.order(ref)).data)


class OrderTransitionView(APIView):
    permission_classes = [CanTransitionOrders]

    @extend_schema(
        summary="Move the order to another status of its channel's flow",
        description="The move must be allowed by the channel's flow (`invalid_transition`, 400) and given to the "
        "caller's role by the flow's `permissions` (`forbidden_transition`, 403): by default the kitchen makes the "
        "kitchen's moves only, and only a manager cancels.",
        request=TransitionRequestSerializer,
        responses={200: OrderDetailSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request, ref: str):
        payload = _body(TransitionRequestSerializer, request)
        OrderService.transition(
            ref,
            payload["status"],
            actor=actor(request),
            expected_status=payload.get("expected_status"),
            reason=payload["reason"],
            roles=roles_of(request.user),
        )
        return Response(OrderDetailSerializer(selectors.order(ref)).data)


# -- external orders (marketplace ingestion) ---------------------------------------------


SIGNATURE_PARAMETER = OpenApiParameter(
    signatures.HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Hex HMAC-SHA256 of the raw body with the channel's `ingestion.signature_secret` "
    "(required when the channel has one).",
)


class ExternalOrderView(APIView):
    permission_classes = [CanIngest]

    @extend_schema(
        summary="Deliver an external (marketplace) order",
        description="The order becomes a session with these items, committed at once. 201 the first time; "
        "the same delivery again answers 200 with the same order; the same external_id with other "
        "content answers 409 `conflict`.",
        request=ExternalOrderRequestSerializer,
        parameters=[SIGNATURE_PARAMETER],
        responses={201: ExternalOrderResultSerializer, 200: ExternalOrderResultSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request, code: str):
        channel = selectors.channel(code)
        signatures.verify(channel, request.body, request.META.get(signatures.META_KEY))
        order = _valid(ExternalOrderRequestSerializer, request).to_kernel()
        result = ExternalOrderService.ingest(
            channel.code,
            order["external_id"],
            items=order["items"],
            data=order["data"],
            status=order["status"],
            actor=actor(request),
        )
        body = {**result, "external_id": order["external_id"]}
        return Response(body, status=status.HTTP_200_OK if result["idempotent"] else status.HTTP_201_CREATED)


class ExternalOrderStatusView(APIView):
    permission_classes = [CanIngest]

    @extend_schema(
        summary="Report an external order's new status",
        description="The platform status is mapped through the channel's status_map, then the order walks its "
        "flow to it (one status_changed event per step). Repeating an update changes nothing (changed: false).",
        request=ExternalStatusRequestSerializer,
        parameters=[SIGNATURE_PARAMETER],
        responses={200: ExternalStatusResultSerializer, **errors(400, 404, 409, 413)},
    )
    def post(self, request, code: str, external_id: str):
        channel = selectors.channel(code)
        signatures.verify(channel, request.body, request.META.get(signatures.META_KEY))
        payload = _body(ExternalStatusRequestSerializer, request)
        order, changed = ExternalOrderService.update_status(
            channel.code, external_id, payload["status"], actor=actor(request), reason=payload["reason"]
        )
        return Response(
            {"external_id": external_id, "changed": changed, "order": OrderDetailSerializer(selectors.order(order.ref)).data}
        )
