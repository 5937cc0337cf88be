"""Commit: a session becomes, exactly once, an immutable Order."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman import conf, engine
from omniman.exceptions import CommitError, IdempotencyError, OmnimanError, ValidationError
from omniman.flow import TIMESTAMPED_STATUSES
from omniman.models import Directive, IdempotencyKey, Order, OrderEvent, OrderItem, Session
from omniman.models.rows import ModelRows, insert_rows, kept_per_connection
from omniman.monetary import is_currency
from omniman.models.order import SNAPSHOT_VERSION
from omniman.services import events, kitchen, pipeline
from omniman.services._common import lock_session, random_code, require_open
from omniman.services.orders import on_enter_directives, require_transition
from omniman.services.sessions import require_rev
from omniman.signals import order_created, order_status_changed

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
        ``"idempotent": True``. One transaction: the session is locked; an
        open session is committed and the key written ``done`` with the result
        next to the order in one upsert (:func:`_keep_result`: a key another
        commit holds answers there — a conflict, a live ``in_progress`` — and
        the transaction rolls back); a session no longer open has its key read
        (a replay, or the key's answer, before the session's own error). A
        concurrent duplicate waits on the session's lock and then finds the
        session committed and the key ``done``. A failed commit marks its key
        ``failed`` afterwards (:func:`_fail_key`), or, when the key is
        another's, answers what the key answers.
        """
        if not isinstance(idempotency_key, str) or not idempotency_key.strip():
            raise ValidationError("missing_idempotency_key", context={"field": "idempotency_key"})
        if len(idempotency_key) > 255:
            raise ValidationError("invalid_field", _("idempotency_key is at most 255 characters."), {"field": "idempotency_key"})
        key = _Key(f"commit:{channel_code}", idempotency_key, session_key)
        owned = False  # set once the key lets this commit run: a failure after that marks it failed
        try:
            # The post-commit directives of database-only handlers (the ticket number) run in this transaction.
            with transaction.atomic(), engine.dispatch_before_commit() as block:
                session = lock_session(session_key, channel_code)  # not_found / channel_not_found: no key is written
                if not session.is_open:  # a replay finds its session committed: its key answers
                    cached = _read_key(key)
                    if cached is not None:
                        return {**cached, "idempotent": True}
                owned = True
                result = _commit(session, key, block, ctx=dict(ctx or {}), actor=actor, expected_rev=expected_rev)
        except _Replay as replay:
            return {**replay.result, "idempotent": True}
        except OmnimanError as exc:
            if owned and not _answered_by_key(exc) and not _fail_key(key, {"error": exc.as_dict()}):
                # The key is another commit's: its answer (conflict, in_progress, its result) comes first.
                cached = _read_key(key)
                if cached is not None:
                    return {**cached, "idempotent": True}
            raise
        except BaseException as exc:
            if owned:
                _fail_key(key, {"error": {"code": "internal_error", "message": type(exc).__name__, "context": {}}})
            raise
        return {**result, "idempotent": False}


# -- the idempotency key ------------------------------------------------------------------------
#
# Written once with the result, in the order's transaction: one upsert, no read before it. The
# session's lock serialises every commit of one session, so a duplicate of a commit (same key, same
# session) finds the session committed, and only then reads the key: ``done``, its result. A key
# another commit holds (another session's, a live ``in_progress``) is found by the upsert, which
# proposes no row: the key is read then and answers, and the whole transaction rolls back. A key
# used for two sessions at once is settled by the key's unique index when the second writes it: it
# waits for the first, finds its row, and rolls back (``conflict``). A commit that fails on its own
# (``stale_rev``, ``empty_session``…) marks the key ``failed`` with the same guarded upsert, and a
# key that is another's answers instead: the key's answer comes first, as when it was read first.
# No row is ever committed ``in_progress`` any more; one left by an earlier version is honoured
# (and its lease).


@dataclass(frozen=True)
class _Key:
    scope: str
    key: str
    fingerprint: str  # the session key


class _Replay(Exception):
    """The key turned out ``done`` when its result was written: roll back and answer the cached result."""

    def __init__(self, result: dict[str, Any]):
        super().__init__("replay")
        self.result = result


def _read_key(key: _Key) -> dict[str, Any] | None:
    """The cached result of a finished key; ``None`` when this commit may run (a new, failed or expired key)."""
    return _answer(key, _key_row(key), timezone.now())


def _answer(key: _Key, row: IdempotencyKey | None, now: datetime) -> dict[str, Any] | None:
    if row is None:
        return None
    expired = row.expires_at <= now
    if not expired and row.fingerprint != key.fingerprint:
        raise IdempotencyError(
            "conflict",
            _("This idempotency key was used to commit another session."),
            {"scope": key.scope, "key": key.key},
        )
    if expired:
        return None
    if row.status == IdempotencyKey.Status.DONE:
        return dict(row.response_body or {})
    if row.status == IdempotencyKey.Status.IN_PROGRESS and row.updated_at > now - _lease():
        raise CommitError("in_progress", context={"scope": key.scope, "key": key.key})
    return None  # failed, or an in-progress claim whose request died: taken over


def _answered_by_key(exc: OmnimanError) -> bool:
    """The key's own answers (``conflict``, ``in_progress``): they leave the key as it is."""
    return isinstance(exc, IdempotencyError) or (isinstance(exc, CommitError) and exc.code == "in_progress")


def _lease() -> timedelta:
    return timedelta(seconds=conf.get("IDEMPOTENCY_LEASE_SECONDS"))


def _keep_result(key: _Key, result: dict[str, Any]) -> None:
    """Write the key ``done`` with ``result``, in the order's transaction (one upsert).

    The row is inserted, or a row this commit may take over (failed, expired,
    a dead ``in_progress``) is updated; any other row is another commit's
    (written before this one started, or concurrently), and this one gives
    way: the key is read, its answer is raised and the transaction rolls back.
    The normal path is this one statement: the key is not read first.
    """
    for _ in range(2):
        if _write_key(key, IdempotencyKey.Status.DONE, CREATED, result):
            return
        cached = _answer(key, _key_row(key), timezone.now())
        if cached is not None:
            raise _Replay(cached)
    raise CommitError("in_progress", context={"scope": key.scope, "key": key.key})  # pragma: no cover  (the row kept changing)


def _fail_key(key: _Key, body: dict[str, Any]) -> bool:
    """After a failed commit (rolled back): the key ``failed`` with the error; ``False`` (nothing written) if it is another's."""
    return _write_key(key, IdempotencyKey.Status.FAILED, None, body)


def _key_row(key: _Key) -> IdempotencyKey | None:
    connection = connections[router.db_for_write(IdempotencyKey)]

    def build() -> tuple[str, ModelRows]:
        qn = connection.ops.quote_name
        rows = ModelRows.of(IdempotencyKey, connection, "k")
        meta = IdempotencyKey._meta
        sql = (
            f"SELECT {rows.columns} FROM {qn(meta.db_table)} k "
            f"WHERE k.{qn(meta.get_field('scope').column)} = %s AND k.{qn(meta.get_field('key').column)} = %s"
        )
        return sql, rows

    sql, rows = kept_per_connection(connection, ("commit.key_row",), build)
    with connection.cursor() as cursor:
        cursor.execute(sql, [key.scope, key.key])
        row = cursor.fetchone()
    return None if row is None else rows.load(connection.alias, row)


def _write_key(key: _Key, status: str, response_code: int | None, body: dict[str, Any]) -> bool:
    """Insert the key's row, or take over a row this commit may take over; ``False`` if the row is another's.

    One ``INSERT … ON CONFLICT (scope, key) DO UPDATE … WHERE`` (PostgreSQL
    and SQLite): the ``WHERE`` is :func:`_answer`'s "taken over" — expired, or
    this session's ``failed`` or dead ``in_progress`` row.
    """
    connection = connections[router.db_for_write(IdempotencyKey)]
    meta = IdempotencyKey._meta
    names = ("scope", "key", "fingerprint", "status", "response_code", "response_body", "expires_at", "created_at", "updated_at")

    def build() -> str:
        qn = connection.ops.quote_name
        table = qn(meta.db_table)
        column = {name: qn(meta.get_field(name).column) for name in names}
        updated = ("fingerprint", "status", "response_code", "response_body", "expires_at", "updated_at")
        return (
            f"INSERT INTO {table} ({', '.join(column[name] for name in names)}) VALUES ({', '.join(['%s'] * len(names))}) "
            f"ON CONFLICT ({column['scope']}, {column['key']}) DO UPDATE SET "
            f"{', '.join(f'{column[name]} = excluded.{column[name]}' for name in updated)} "
            f"WHERE {table}.{column['expires_at']} <= %s OR ({table}.{column['fingerprint']} = excluded.{column['fingerprint']} "
            f"AND ({table}.{column['status']} = %s OR ({table}.{column['status']} = %s AND {table}.{column['updated_at']} <= %s))) "
            f"RETURNING {qn(meta.pk.column)}"
        )

    sql = kept_per_connection(connection, ("commit.write_key",), build)
    now = timezone.now()
    values = {
        "scope": key.scope,
        "key": key.key,
        "fingerprint": key.fingerprint,
        "status": status,
        "response_code": response_code,
        "response_body": body,
        "expires_at": now + timedelta(hours=conf.get("IDEMPOTENCY_TTL_HOURS")),
        "created_at": now,
        "updated_at": now,
    }
    params = [meta.get_field(name).get_db_prep_save(values[name], connection) for name in names]
    at = meta.get_field("updated_at")
    params += [
        at.get_db_prep_save(now, connection),
        IdempotencyKey.Status.FAILED,
        IdempotencyKey.Status.IN_PROGRESS,
        at.get_db_prep_save(now - _lease(), connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


# -- the commit ---------------------------------------------------------------------------------


def _commit(
    session: Session, key: _Key, block: engine.BeforeCommit, *, ctx: dict[str, Any], actor: str, expected_rev: int | None
) -> dict[str, Any]:
    require_open(session, CommitError)
    require_rev(session, expected_rev)
    session_key = session.session_key
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
        "session_key": session_key,
        "handle_type": session.handle_type,
        "handle_ref": session.handle_ref,
        "committed_at": now.isoformat(),
    }
    order = Order(
        ref=_new_ref(0),
        channel=channel,
        session_key=session_key,
        handle_type=session.handle_type,
        handle_ref=session.handle_ref,
        current_handle_ref=session.handle_ref,
        external_ref=str(session.data.get("external_ref") or ctx.get("external_ref") or "")[:128],
        status=flow.initial_status,
        snapshot=snapshot,
        currency=channel.currency,
        total_q=session.total_q,
        created_at=now,
        updated_at=now,
    )
    # The order is written once, already in its ``auto_transitions.on_create`` status (stamped), with the
    # events of both moves; ``apply_transition``'s rules hold: a flow whose on_create is not allowed fails
    # every commit (strict, unlike the handlers' ``apply_auto_transition``).
    on_create = flow.auto_transitions.get("on_create")
    moved = bool(on_create and on_create != order.status)
    created = events.created_event(
        order, actor=actor, session_key=session_key, rev=session.rev, items_count=len(lines), status=order.status
    )
    initial = order.status
    if moved:
        require_transition(order, on_create)
        order.status = on_create
        if on_create in TIMESTAMPED_STATUSES:
            setattr(order, f"{on_create}_at", now)
    _insert_order(order)
    block.share(order=order)  # inserted by this transaction, so held: the ticket handler takes it as it is
    order_items = insert_rows(
        OrderItem,
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
    written = [created, *events.price_override_events(order, lines), *events.adjustment_events(order, session.adjustments)]
    moved_event = None
    if moved:
        reason = "auto_transitions.on_create"
        moved_event = events.status_changed_event(order, actor=actor, from_status=initial, to_status=on_create, reason=reason)
        if kitchen.follows_status(order, on_create):
            # The kitchen's post_save receiver moves or voids the new items: the event is saved on its own.
            insert_rows(OrderEvent, written)
            moved_event.save(force_insert=True)
            written = []
        else:
            written.append(moved_event)
    insert_rows(OrderEvent, written)

    session.state = Session.State.COMMITTED
    session.committed_at = now
    session.commit_token = key.key
    session.save(update_fields=["state", "committed_at", "commit_token", "updated_at"])

    directives = [
        (topic, {"order_ref": order.ref, "channel_code": channel.code, "session_key": session_key}, f"{order.ref}:{topic}")
        for topic in channel.post_commit_directives
    ]
    directives += on_enter_directives(order, None, initial, entry="created")
    if moved_event is not None:
        directives += on_enter_directives(order, initial, on_create, entry=str(moved_event.pk))
    Directive.objects.enqueue_many(directives)

    result = {
        "order_ref": order.ref,
        "order_id": order.pk,
        "status": order.status,
        "total_q": order.total_q,
        "items_count": len(lines),
    }
    _keep_result(key, result)

    transaction.on_commit(lambda: order_created.send(sender=Order, order=order))
    if moved:
        transaction.on_commit(
            lambda: order_status_changed.send(sender=Order, order=order, from_status=initial, to_status=on_create)
        )
    logger.info(
        "session committed",
        extra={"session_key": session_key, "order_ref": order.ref, "channel": channel.code, "actor": actor},
    )
    if moved:
        logger.info(
            "order status changed",
            extra={"order_ref": order.ref, "channel": channel.code, "actor": actor, "from": initial, "to": on_create},
        )
    return result


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


def _new_ref(attempt: int) -> str:
    prefix = conf.get("ORDER_REF_PREFIX")
    day = timezone.localdate().strftime("%Y%m%d")
    return f"{prefix}{day}-{random_code(6 if attempt < 3 else 10)}"


def _insert_order(order: Order) -> None:
    """Insert the order under a fresh ``ref`` (its own if it has one), another on the (rare) collision.

    One ``INSERT … ON CONFLICT (ref) DO NOTHING RETURNING id`` per try (PostgreSQL
    and SQLite): a taken ref returns no row, no savepoint needed; any other
    violation (a second order of the session) raises. Written as SQL once per
    connection, with the columns' own conversions (as ``Model.save()``); the
    timestamps are the commit's (``created_at == updated_at`` == the status stamp).
    """
    connection = connections[router.db_for_write(Order)]
    meta = Order._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]

    def build() -> str:
        qn = connection.ops.quote_name
        return (
            f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(field.column) for field in fields)}) "
            f"VALUES ({', '.join(['%s'] * len(fields))}) "
            f"ON CONFLICT ({qn(meta.get_field('ref').column)}) DO NOTHING RETURNING {qn(meta.pk.column)}"
        )

    sql = kept_per_connection(connection, ("commit.insert_order",), build)
    for attempt in range(6):
        if attempt:
            order.ref = _new_ref(attempt)
        params = [field.get_db_prep_save(getattr(order, field.attname), connection) for field in fields]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is not None:
            order.pk = row[0]
            order._state.adding = False
            order._state.db = connection.alias
            order._loaded_status = order.status
            return
    raise IntegrityError(f"no free order ref after {attempt + 1} tries")
