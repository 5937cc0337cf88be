"""Commit: a session becomes, exactly once, an immutable Order."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman import conf, engine
from omniman.exceptions import CommitError, IdempotencyError, OmnimanError, ValidationError
from omniman.models import Directive, IdempotencyKey, Order, OrderItem, Session
from omniman.monetary import is_currency
from omniman.models.order import SNAPSHOT_VERSION
from omniman.services import events, kitchen, pipeline
from omniman.services._common import find_session, lock_session, random_code, require_open
from omniman.services.orders import apply_transition, enqueue_on_enter
from omniman.services.sessions import require_rev
from omniman.signals import order_created

logger = logging.getLogger("omniman.services")

CREATED = 201


class CommitService:
    @staticmethod
    def commit(
        session_key: str,
        channel_code: str,
        *,
        idempotency_key: str,
        ctx: dict[str, Any] | None = None,
        actor: str = "system",
        expected_rev: int | None = None,
    ) -> dict[str, Any]:
        """Turn an open session into an Order, exactly once per session and per key.

        With ``expected_rev`` (a screen that shows what it commits), a session
        that moved on since the caller read it raises ``SessionError("stale_rev")``.

        A replay of a finished key returns the first result with
        ``"idempotent": True``. The key is claimed in its own short
        transaction, so a concurrent request with the same key sees
        ``in_progress`` instead of waiting.
        """
        if not isinstance(idempotency_key, str) or not idempotency_key.strip():
            raise ValidationError("missing_idempotency_key", context={"field": "idempotency_key"})
        if len(idempotency_key) > 255:
            raise ValidationError("invalid_field", _("idempotency_key is at most 255 characters."), {"field": "idempotency_key"})
        find_session(session_key, channel_code)  # not_found / channel_not_found before a key is claimed
        scope = f"commit:{channel_code}"
        claimed = _claim_key(scope, idempotency_key, fingerprint=session_key)
        if isinstance(claimed, dict):
            return {**claimed, "idempotent": True}
        try:
            # The post-commit directives of database-only handlers (the ticket number) run in this transaction.
            with transaction.atomic(), engine.dispatch_before_commit():
                result = _commit(
                    session_key, channel_code, idempotency_key, ctx=dict(ctx or {}), actor=actor, expected_rev=expected_rev
                )
                IdempotencyKey.objects.filter(pk=claimed.pk).update(
                    status=IdempotencyKey.Status.DONE,
                    response_code=CREATED,
                    response_body=result,
                    updated_at=timezone.now(),
                )
        except OmnimanError as exc:
            _fail_key(claimed, {"error": exc.as_dict()})
            raise
        except BaseException as exc:
            _fail_key(claimed, {"error": {"code": "internal_error", "message": type(exc).__name__, "context": {}}})
            raise
        return {**result, "idempotent": False}


def _claim_key(scope: str, key: str, *, fingerprint: str) -> IdempotencyKey | dict[str, Any]:
    """Own the key (``in_progress``), or return the cached result of a finished one."""
    now = timezone.now()
    expires_at = now + timedelta(hours=conf.get("IDEMPOTENCY_TTL_HOURS"))
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                scope=scope, key=key, fingerprint=fingerprint, status=IdempotencyKey.Status.IN_PROGRESS, expires_at=expires_at
            )
    except IntegrityError:
        pass
    row = IdempotencyKey.objects.filter(scope=scope, key=key).first()
    if row is None:  # deleted by cleanup in between: claim afresh
        return _claim_key(scope, key, fingerprint=fingerprint)
    lease = timedelta(seconds=conf.get("IDEMPOTENCY_LEASE_SECONDS"))
    expired = row.expires_at <= now
    if not expired and row.fingerprint != fingerprint:
        raise IdempotencyError(
            "conflict",
            _("This idempotency key was used to commit another session."),
            {"scope": scope, "key": key},
        )
    if row.status == IdempotencyKey.Status.DONE and not expired:
        return dict(row.response_body or {})
    if row.status == IdempotencyKey.Status.IN_PROGRESS and not expired and row.updated_at > now - lease:
        raise CommitError("in_progress", context={"scope": scope, "key": key})
    # Failed, expired, or an in-progress claim whose request died: take it over,
    # unless another retry took it over first (the conditional UPDATE decides).
    taken = (
        IdempotencyKey.objects.filter(pk=row.pk, status=row.status, updated_at=row.updated_at)
        .update(
            status=IdempotencyKey.Status.IN_PROGRESS,
            fingerprint=fingerprint,
            response_code=None,
            response_body=None,
            expires_at=expires_at,
            updated_at=now,
        )
    )
    if not taken:
        raise CommitError("in_progress", context={"scope": scope, "key": key})
    row.refresh_from_db()
    return row


def _fail_key(row: IdempotencyKey, body: dict[str, Any]) -> None:
    IdempotencyKey.objects.filter(pk=row.pk, status=IdempotencyKey.Status.IN_PROGRESS).update(
        status=IdempotencyKey.Status.FAILED, response_body=body, updated_at=timezone.now()
    )


def _commit(
    session_key: str, channel_code: str, idempotency_key: str, *, ctx: dict[str, Any], actor: str, expected_rev: int | None
) -> dict[str, Any]:
    session = lock_session(session_key, channel_code)
    require_open(session, CommitError)
    require_rev(session, expected_rev)
    if not session.lines:
        raise CommitError("empty_session", context={"session_key": session_key})
    channel = session.channel
    if not is_currency(channel.currency):  # a config planted behind the model (system check omniman.W031)
        raise CommitError(
            "invalid_currency",
            _("This channel's currency %(currency)s is not an ISO 4217 code: a manager must correct the channel.")
            % {"currency": repr(channel.currency)[:40]},
            {"channel_code": channel.code, "currency": str(channel.currency)[:40]},
        )
    _require_checks(session)
    blocking = [issue for issue in session.data.get("issues", []) if issue.get("severity", "blocking") == "blocking"]
    if blocking:
        raise CommitError(
            "blocking_issues",
            _("%(count)s blocking issue(s) must be resolved first.") % {"count": len(blocking)},
            {"issues": blocking},
        )
    try:
        pipeline.run_validators(session, "commit", ctx)
    except ValidationError as exc:
        raise CommitError(
            "validation_failed", exc.message, {"validation": exc.as_dict()}
        ) from exc

    now = timezone.now()
    flow = channel.order_flow
    lines = session.lines
    snapshot = {
        "_v": SNAPSHOT_VERSION,
        "items": lines,
        "adjustments": session.adjustments,
        "data": session.data,
        "rev": session.rev,
        "channel_code": channel.code,
        "pricing_policy": session.pricing_policy,
        "edit_policy": session.edit_policy,
        "total_q": session.total_q,
        "currency": channel.currency,
        "session_key": session.session_key,
        "handle_type": session.handle_type,
        "handle_ref": session.handle_ref,
        "committed_at": now.isoformat(),
    }
    order = _create_order(
        channel=channel,
        session_key=session.session_key,
        handle_type=session.handle_type,
        handle_ref=session.handle_ref,
        external_ref=str(session.data.get("external_ref") or ctx.get("external_ref") or "")[:128],
        status=flow.initial_status,
        snapshot=snapshot,
        currency=channel.currency,
        total_q=session.total_q,
    )
    order_items = OrderItem.objects.bulk_create(
        [
            OrderItem(
                order=order,
                line_id=line["line_id"],
                sku=line["sku"],
                name=line.get("name") or "",
                qty=line["qty"],
                unit_price_q=line["unit_price_q"],
                line_total_q=line["line_total_q"],
                meta=line.get("meta") or {},
            )
            for line in lines
        ]
    )
    kitchen.create_items(order, order_items)
    events.order_created(order, actor=actor, session_key=session.session_key, rev=session.rev, items_count=len(lines))
    events.prices_overridden(order, lines)
    events.adjustments_applied(order, session.adjustments)

    session.state = Session.State.COMMITTED
    session.committed_at = now
    session.commit_token = idempotency_key
    session.save(update_fields=["state", "committed_at", "commit_token", "updated_at"])

    for topic in channel.post_commit_directives:
        Directive.objects.enqueue(
            topic,
            {"order_ref": order.ref, "channel_code": channel.code, "session_key": session.session_key},
            dedupe_key=f"{order.ref}:{topic}",
        )
    enqueue_on_enter(order, None, order.status, entry="created")
    on_create = flow.auto_transitions.get("on_create")
    if on_create and on_create != order.status:
        # Strict, unlike the handlers' apply_auto_transition: a flow whose on_create is not allowed fails every commit.
        apply_transition(order, on_create, actor=actor, reason="auto_transitions.on_create")

    transaction.on_commit(lambda: order_created.send(sender=Order, order=order))
    logger.info(
        "session committed",
        extra={"session_key": session_key, "order_ref": order.ref, "channel": channel.code, "actor": actor},
    )
    return {
        "order_ref": order.ref,
        "order_id": order.pk,
        "status": order.status,
        "total_q": order.total_q,
        "items_count": len(lines),
    }


def _require_checks(session: Session) -> None:
    """Every required check ran on this revision and its hold is live (``Session.check_states()``)."""
    for check in session.check_states():
        code = check.commit_error
        if code == "missing_check":
            raise CommitError(
                code, _("The %(code)s check has not run.") % {"code": repr(check.code)}, {"check_code": check.code}
            )
        if code == "stale_check":
            raise CommitError(
                code,
                _("The %(code)s check ran on rev %(check_rev)s, the session is at rev %(session_rev)s.")
                % {"code": repr(check.code), "check_rev": check.check.get("rev"), "session_rev": session.rev},
                {"check_code": check.code, "check_rev": check.check.get("rev"), "session_rev": session.rev},
            )
        if code == "hold_expired":
            expires_at = str(check.check.get("expires_at"))
            raise CommitError(
                code,
                _("The %(code)s check expired at %(expires_at)s.") % {"code": repr(check.code), "expires_at": expires_at},
                {"check_code": check.code, "expires_at": expires_at},
            )


def _create_order(**fields: Any) -> Order:
    """Insert the order under a fresh ``ref``, retrying on the (rare) collision."""
    prefix = conf.get("ORDER_REF_PREFIX")
    day = timezone.localdate().strftime("%Y%m%d")
    attempt = 0
    while True:
        order = Order(ref=f"{prefix}{day}-{random_code(6 if attempt < 3 else 10)}", **fields)
        try:
            with transaction.atomic():
                order.save(force_insert=True)
            return order
        except IntegrityError:
            attempt += 1
            if attempt > 5 or not Order.objects.filter(ref=order.ref).exists():
                raise
