"""External orders: a marketplace delivers a whole, priced order; the hub records it exactly once.

An external order becomes a session (handle ``external``/<external id>) opened
with its items, committed in the same transaction. Its session key is derived
from the channel and the external id, so a second delivery of the same order —
sequential or concurrent — finds the first one instead of making another. The
order's content is fingerprinted: the same external id with other content is
an ``IdempotencyError("conflict")``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from omniman.exceptions import IdempotencyError, InvalidTransition, SessionError, ValidationError
from omniman.models import Channel, Order
from omniman.services.commit import CommitService
from omniman.services.orders import apply_transition, lock_order
from omniman.services.sessions import SessionService

logger = logging.getLogger("omniman.services")

HANDLE_TYPE = "external"
MAX_EXTERNAL_ID_LENGTH = 128


def external_session_key(channel_code: str, external_id: str) -> str:
    """The session key of an external order: the same for every delivery of it."""
    digest = hashlib.sha256(f"{channel_code}\x1f{external_id}".encode()).hexdigest()
    return f"EXT-{digest[:40].upper()}"


def external_idempotency_key(channel_code: str, external_id: str) -> str:
    return f"ingest:{channel_code}:{external_id}"


def content_fingerprint(items: list[dict[str, Any]], data: dict[str, Any]) -> str:
    canonical = json.dumps({"items": items, "data": data}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def status_map(channel: Channel) -> dict[str, str]:
    """Platform status → the channel's status: ``config["ingestion"]["status_map"]`` over the identity of the flow's statuses."""
    mapping = {status: status for status in channel.order_flow.statuses}
    ingestion = (channel.config or {}).get("ingestion")
    configured = ingestion.get("status_map") if isinstance(ingestion, dict) else None
    if isinstance(configured, dict):
        mapping.update({str(k): str(v) for k, v in configured.items()})
    return mapping


def map_status(channel: Channel, platform_status: str) -> str:
    mapping = status_map(channel)
    target = mapping.get(platform_status)
    if target is None:
        raise ValidationError(
            "invalid_field",
            _("Unknown status %(platform_status)s for channel %(channel_code)s.")
            % {"platform_status": repr(platform_status), "channel_code": repr(channel.code)},
            {"field": "status", "status": platform_status, "allowed": sorted(mapping)},
        )
    return target


def _check_external_id(external_id: Any) -> str:
    if not isinstance(external_id, str) or not external_id.strip():
        raise ValidationError("missing_field", _("external_id is required."), {"field": "external_id"})
    external_id = external_id.strip()
    if len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise ValidationError(
            "invalid_field", _("external_id is at most %(max_external_id_length)s characters.")
                % {"max_external_id_length": MAX_EXTERNAL_ID_LENGTH}, {"field": "external_id"}
        )
    return external_id


def _active_channel(channel_code: str) -> Channel:
    channel = Channel.objects.filter(code=channel_code, is_active=True).first()
    if channel is None:
        raise SessionError("channel_not_found", context={"channel_code": channel_code})
    return channel


def _result(order: Order, *, idempotent: bool) -> dict[str, Any]:
    return {
        "order_ref": order.ref,
        "order_id": order.pk,
        "status": order.status,
        "total_q": order.total_q,
        "items_count": len((order.snapshot or {}).get("items") or []),
        "idempotent": idempotent,
    }


def _walk(order: Order, target: str, *, actor: str, reason: str) -> bool:
    """Move a locked order to ``target`` along the flow's shortest path; ``False`` if already there."""
    steps = order.channel.order_flow.path(order.status, target)
    if steps is None:
        raise InvalidTransition(
            "invalid_transition",
            _("Order %(order_ref)s cannot go from %(order_status)s to %(target)s.")
            % {"order_ref": order.ref, "order_status": repr(order.status), "target": repr(target)},
            {"order_ref": order.ref, "from": order.status, "to": target},
        )
    for step in steps:
        apply_transition(order, step, actor=actor, reason=reason)
    return bool(steps)


class ExternalOrderService:
    @staticmethod
    def ingest(
        channel_code: str,
        external_id: str,
        *,
        items: list[dict[str, Any]],
        data: dict[str, Any] | None = None,
        status: str = "",
        actor: str = "system",
    ) -> dict[str, Any]:
        """Record an external order once: open its session with ``items``, commit it, move it to ``status``.

        ``status`` is the platform's (mapped with ``status_map``); the flow's
        initial status is where every order starts, so it moves nothing.
        Returns the commit's result; a second delivery of the same order
        returns the existing order with ``"idempotent": True`` (its status is
        not moved: status changes go through ``update_status``). The same
        ``external_id`` with other items or data raises
        ``IdempotencyError("conflict")`` and writes nothing.
        """
        external_id = _check_external_id(external_id)
        channel = _active_channel(channel_code)
        if not isinstance(items, (list, tuple)) or not items:
            raise ValidationError("missing_field", _("An external order needs at least one item."), {"field": "items"})
        data = dict(data or {})
        target = map_status(channel, status) if status else ""
        fingerprint = content_fingerprint(list(items), data)
        session_key = external_session_key(channel.code, external_id)

        with transaction.atomic():
            existing = _existing_order(session_key, external_id, fingerprint)
            if existing is not None:
                return _result(existing, idempotent=True)
            try:
                session = SessionService.open_session(
                    channel.code,
                    session_key=session_key,
                    handle_type=HANDLE_TYPE,
                    handle_ref=external_id,
                    data={**data, "external_ref": external_id, "ingest": {"fingerprint": fingerprint}},
                    items=list(items),
                    actor=actor,
                )
            except SessionError as exc:
                if exc.code != "already_committed":
                    raise
                # A concurrent delivery committed it while this one waited on the row.
                existing = _existing_order(session_key, external_id, fingerprint)
                if existing is None:
                    raise
                return _result(existing, idempotent=True)
            if session.session_key != session_key or (session.data.get("ingest") or {}).get("fingerprint") != fingerprint:
                raise IdempotencyError(
                    "conflict",
                    _("Another open session holds external order %(external_id)s.")
                    % {"external_id": repr(external_id)},
                    {"external_id": external_id, "session_key": session.session_key},
                )
            result = CommitService.commit(
                session_key, channel.code, idempotency_key=external_idempotency_key(channel.code, external_id), actor=actor
            )
            if target and target != channel.order_flow.initial_status:
                order = lock_order(result["order_ref"])
                _walk(order, target, actor=actor, reason=f"external status {status}")
                result["status"] = order.status
        logger.info(
            "external order ingested",
            extra={"channel": channel.code, "external_id": external_id, "order_ref": result["order_ref"], "actor": actor},
        )
        return {**result, "idempotent": False}

    @staticmethod
    @transaction.atomic
    def update_status(
        channel_code: str, external_id: str, status: str, *, actor: str = "system", reason: str = ""
    ) -> tuple[Order, bool]:
        """Move an external order to the channel's status for the platform's ``status``.

        The platform status is mapped (``status_map``), then the order walks the
        flow's shortest path to it, one recorded transition per step. Returns
        the order and whether it moved (a repeated update is a no-op).
        """
        external_id = _check_external_id(external_id)
        channel = _active_channel(channel_code)
        if not isinstance(status, str) or not status:
            raise ValidationError("missing_field", _("status is required."), {"field": "status"})
        target = map_status(channel, status)
        order = lock_order(
            channel=channel,
            session_key=external_session_key(channel.code, external_id),
            missing=SessionError(
                "not_found",
                _("No external order %(external_id)s in channel %(channel_code)s.")
                % {"external_id": repr(external_id), "channel_code": repr(channel.code)},
                {"external_id": external_id, "channel_code": channel.code},
            ),
        )
        moved = _walk(order, target, actor=actor, reason=reason or f"external status {status}")
        return order, moved


def _existing_order(session_key: str, external_id: str, fingerprint: str) -> Order | None:
    order = Order.objects.select_related("channel").filter(session_key=session_key).first()
    if order is None:
        return None
    stored = ((order.snapshot or {}).get("data") or {}).get("ingest") or {}
    if stored.get("fingerprint") != fingerprint:
        raise IdempotencyError(
            "conflict",
            _("External order %(external_id)s was already delivered with other content.")
            % {"external_id": repr(external_id)},
            {"external_id": external_id, "order_ref": order.ref},
        )
    return order
