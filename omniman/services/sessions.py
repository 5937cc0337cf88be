"""Session use cases: open, modify, park and resume, write a check, resolve an issue, abandon."""

from __future__ import annotations

import logging
from datetime import datetime, timezone as dt_timezone
from typing import Any

from django.db import IntegrityError, connection, connections, router, transaction
from django.db.models.signals import post_save, pre_save
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from omniman import engine, registry
from omniman.adjustments import apply_adjustments
from omniman.exceptions import IssueResolveError, OmnimanError, SessionError, ValidationError
from omniman.models import Channel, Directive, ModelRows, Session, kept_per_connection
from omniman.services import pipeline
from omniman.services._common import (
    ensure_data_size, ensure_json, find_session, lock_session, lock_session_with_sold_out, new_session_key, require_open,
)
from omniman.services.ops import RESERVED_DATA_KEYS
from omniman.signals import session_abandoned

logger = logging.getLogger("omniman.services")

SEVERITIES = ("blocking", "warning")
# ``data["parked"]``: left open for later (a draft on the list). Any change resumes it.
PARKED = "parked"


class SessionService:
    @staticmethod
    def open_session(
        channel_code: str,
        *,
        handle_type: str = "",
        handle_ref: str = "",
        session_key: str | None = None,
        data: dict[str, Any] | None = None,
        items: list[dict[str, Any]] | None = None,
        actor: str = "system",
    ) -> Session:
        """Get-or-open a session.

        With a handle (``handle_type``/``handle_ref``, e.g. ``"table"``/``"5"``)
        the open session of that handle is returned if there is one; two
        concurrent calls return the same session. ``items`` delivers a whole
        basket at once (one modification, so ``rev == 1``), even on a locked
        channel.

        The returned session carries ``created``: ``True`` only for the one
        call that inserted it (in a race of concurrent opens of one new
        handle, exactly one caller sees ``True``), ``False`` when an existing
        session was returned.
        """
        if session_key is None and items is None and not str(handle_ref or "").strip():
            # A new basket: nothing to get, nothing to race on (a key of its own) and nothing to price.
            return _open_basket(channel_code, handle_type=handle_type, data=data, actor=actor)
        channel = _active_channel(channel_code)
        handle_type, handle_ref, initial_data = _open_arguments(handle_type, handle_ref, data, items, session_key)

        with transaction.atomic():
            existing = _existing_session(channel, handle_type, handle_ref, session_key)
            if existing is not None:
                existing.created = False
                return existing
            session = Session(
                session_key=session_key or new_session_key(),
                channel=channel,
                handle_type=handle_type,
                handle_ref=handle_ref,
                pricing_policy=channel.pricing_policy,
                edit_policy=channel.edit_policy,
                data=initial_data,
            )
            if not (handle_ref or session_key):
                # Nothing to race on: a new key of its own (a clash is an error, as it would be after
                # a savepoint), so no savepoint around the insert.
                session.save(force_insert=True)
            else:
                try:
                    with transaction.atomic():
                        session.save(force_insert=True)
                except IntegrityError:
                    # Someone opened the same handle (or key) first: theirs is the session.
                    existing = _existing_session(channel, handle_type, handle_ref, session_key)
                    if existing is None:
                        raise
                    existing.created = False
                    return existing
            session.created = True
            if items:
                ops = [{**item, "op": "add_line"} for item in items]
                pipeline.modify(session, ops, ctx={"actor": actor}, allow_locked=True)
        logger.info(
            "session opened",
            extra={"session_key": session.session_key, "channel": channel.code, "actor": actor},
        )
        return session

    @staticmethod
    @transaction.atomic
    def park(
        session_key: str, channel_code: str, *, expected_rev: int | None = None, actor: str = "system"
    ) -> Session:
        """Leave an open session for later: ``data["parked"] = True`` (rev + 1, as any change).

        Parking a parked session changes nothing. The next modification of the
        session (an op, through ``ModifyService``) resumes it.
        """
        return _set_parked(session_key, channel_code, True, expected_rev=expected_rev, actor=actor)

    @staticmethod
    @transaction.atomic
    def resume(
        session_key: str, channel_code: str, *, expected_rev: int | None = None, actor: str = "system"
    ) -> Session:
        """Take a parked session back: ``data["parked"] = False`` (rev + 1). A session not parked is returned as it is."""
        return _set_parked(session_key, channel_code, False, expected_rev=expected_rev, actor=actor)

    @staticmethod
    def open_next(session_key: str, channel_code: str, *, actor: str = "system", replay: bool = False) -> Session | None:
        """The session that follows a committed one on the same screen.

        A handle's session (a table's tab) goes on with the handle's next round
        (get-or-open, so two screens land on the same one); a basket without a
        handle is followed by a new basket — except for a ``replay`` of the
        commit (a double click), whose first request already opened it
        (``None``: go back to the list). A session still open is its own next one.
        """
        committed = find_session(session_key, channel_code)
        if committed.state == Session.State.OPEN:
            return committed
        if committed.handle_ref:
            return SessionService.open_session(
                channel_code, handle_type=committed.handle_type, handle_ref=committed.handle_ref, actor=actor
            )
        if replay:
            return None
        return SessionService.open_session(channel_code, actor=actor)

    @staticmethod
    def as_checked(session: Session, *, reread=None) -> Session:
        """The session as its checks left it, for a change's answer (the API's modify, the POS's tap).

        A change's checks may run in its own request (``DISPATCH_ON_COMMIT``):
        in its transaction, on the session it returns (the stock hold writes its
        result on that object: nothing to read), or right after it commits (a
        handler with outside effects, or one that wrote its result on a copy of
        its own): they write the session's check results and issues, not its
        rev, so the object the change returned may not show them. While a
        required check is missing or stale on that object, the session is read
        again (``reread(session)``, else :func:`find_session`): one query, only
        on channels with checks. A check a worker runs later is still pending
        in what is read: the answer says so.
        """
        if session.pk is None or not any(check.blocks_commit for check in session.check_states()):
            return session
        if reread is not None:
            return reread(session) or session
        try:
            return find_session(session.session_key, session.channel.code)
        except SessionError:
            return session

    @staticmethod
    @transaction.atomic
    def recheck(session_key: str, channel_code: str, *, expected_rev: int | None = None) -> list[Directive]:
        """(Re-)enqueue the channel's check directives for the session's current rev.

        For a screen's "check now": after an expired hold, or when a check
        directive was lost. ``rev`` does not change; a check still queued for
        this rev is returned as it is (dedupe).
        """
        session = lock_session(session_key, channel_code)
        require_open(session)
        require_rev(session, expected_rev)
        return pipeline.enqueue_checks(session)

    @staticmethod
    @transaction.atomic
    def abandon_session(
        session_key: str, channel_code: str, *, actor: str = "system", stale_before: datetime | None = None
    ) -> Session:
        """Close an open session without an order. Abandoning twice is harmless.

        With ``stale_before`` (housekeeping), a session modified since then is
        left open and returned as it is.
        """
        session = lock_session(session_key, channel_code)
        if session.state == Session.State.ABANDONED:
            return session
        require_open(session)
        if stale_before is not None and session.updated_at >= stale_before:
            return session
        session.state = Session.State.ABANDONED
        session.save(update_fields=["state", "updated_at"])
        for topic in session.channel.on_abandon_directives:
            Directive.objects.enqueue(
                topic,
                {"session_key": session_key, "channel_code": channel_code},
                dedupe_key=f"{session_key}:abandoned:{topic}",
            )
        transaction.on_commit(lambda: session_abandoned.send(sender=Session, session=session, actor=actor))
        logger.info(
            "session abandoned",
            extra={"session_key": session_key, "channel": channel_code, "actor": actor},
        )
        return session


def _set_parked(session_key: str, channel_code: str, parked: bool, *, expected_rev: Any, actor: str) -> Session:
    session = lock_session(session_key, channel_code)
    require_open(session)
    require_rev(session, expected_rev)
    if bool(session.data.get(PARKED)) == parked:
        return session
    session = pipeline.modify(session, [{"op": "set_data", "path": PARKED, "value": parked}], ctx={"actor": actor})
    logger.info(
        "session parked" if parked else "session resumed",
        extra={"session_key": session_key, "channel": channel_code, "actor": actor, "rev": session.rev},
    )
    return session


def _resuming(session: Session, ops: Any) -> Any:
    """``ops`` plus the resume of a parked session, unless the ops set ``parked`` themselves."""
    if not session.data.get(PARKED) or not isinstance(ops, (list, tuple)) or not ops:
        return ops  # not parked, or ops the pipeline refuses as they are
    if any(isinstance(op, dict) and op.get("op") == "set_data" and op.get("path") == PARKED for op in ops):
        return ops
    return [*ops, {"op": "set_data", "path": PARKED, "value": False}]


def _active_channel(channel_code: str) -> Channel:
    """The active channel ``channel_code`` names; ``SessionError("channel_not_found")`` otherwise."""
    channel = Channel.objects.filter(code=channel_code, is_active=True).first()
    if channel is None:
        raise SessionError("channel_not_found", context={"channel_code": channel_code})
    return channel


def _open_arguments(
    handle_type: Any, handle_ref: Any, data: Any, items: Any, session_key: Any
) -> tuple[str, str, dict[str, Any]]:
    """An open's handle (stripped) and initial data, checked; ``ValidationError`` for a bad argument."""
    handle_type = (handle_type or "").strip()
    handle_ref = str(handle_ref or "").strip()
    if handle_ref and not handle_type:
        raise ValidationError("missing_field", _("A handle_ref needs a handle_type."), {"field": "handle_type"})
    if len(handle_type) > 32 or len(handle_ref) > 128:
        raise ValidationError("invalid_field", _("The handle is too long."), {"field": "handle_ref"})
    initial_data = _initial_data(data)
    if items is not None and (not isinstance(items, (list, tuple)) or not all(isinstance(i, dict) for i in items)):
        raise ValidationError("invalid_field", _("items must be a list of objects."), {"field": "items"})
    if session_key is not None and (not isinstance(session_key, str) or not session_key.strip() or len(session_key) > 64):
        raise ValidationError("invalid_field", _("session_key must be 1-64 characters."), {"field": "session_key"})
    return handle_type, handle_ref, initial_data


def _open_basket(channel_code: str, *, handle_type: Any, data: Any, actor: str) -> Session:
    """``open_session`` without a handle, a key or items: a new session, inserted alone (no transaction of its own).

    On PostgreSQL the channel's read and the insert are one statement
    (:func:`_insert_basket`), autocommitted: a channel that is unknown or
    inactive inserts nothing and is ``channel_not_found``, told before a bad
    argument as the other opens tell it. The row is the one ``save()`` writes.
    """
    try:
        handle_type, _handle_ref, initial_data = _open_arguments(handle_type, "", data, None, None)
    except OmnimanError:
        _active_channel(channel_code)  # an unknown channel is told first
        raise
    session = Session(session_key=new_session_key(), handle_type=handle_type, data=initial_data)
    if not _insert_basket(session, channel_code):
        channel = _active_channel(channel_code)
        session.channel = channel
        session.pricing_policy, session.edit_policy = channel.pricing_policy, channel.edit_policy
        session.save(force_insert=True)
    session.created = True
    logger.info("session opened", extra={"session_key": session.session_key, "channel": channel_code, "actor": actor})
    return session


# The session's columns the channel fills in (its row, its policies): the rest are the new session's own values.
_FROM_CHANNEL = {"channel": "id", "pricing_policy": "pricing_policy", "edit_policy": "edit_policy"}


def _insert_basket(session: Session, channel_code: str) -> bool:
    """Insert the unsaved ``session`` into the active channel ``channel_code`` in one statement, its channel's
    row read by the same statement (``WITH c AS (SELECT … channel) , s AS (INSERT … SELECT … FROM c RETURNING id)
    SELECT s.id, c.* …``), kept per connection. ``SessionError("channel_not_found")`` when it inserted nothing.

    ``False`` (nothing done) where this cannot be one statement (a database other than PostgreSQL) or where
    ``save()`` would do more (``pre_save``/``post_save`` receivers of sessions): the caller saves it.
    """
    alias = router.db_for_write(Session)
    conn = connections[alias]
    if conn.vendor != "postgresql" or pre_save.has_listeners(Session) or post_save.has_listeners(Session):
        return False
    meta, channel_meta = Session._meta, Channel._meta
    own = [field for field in meta.concrete_fields if not field.primary_key and field.name not in _FROM_CHANNEL]

    def build() -> tuple[str, ModelRows]:
        qn = conn.ops.quote_name
        channels = ModelRows.of(Channel, conn, "c")
        names, values = [], []
        for field in meta.concrete_fields:
            if field.primary_key:
                continue
            names.append(qn(field.column))
            if field.name in _FROM_CHANNEL:
                values.append(f"c.{qn(channel_meta.get_field(_FROM_CHANNEL[field.name]).column)}")
            else:
                values.append("%s")
        sql = (
            f"WITH c AS (SELECT {channels.columns} FROM {qn(channel_meta.db_table)} c "
            f"WHERE c.{qn(channel_meta.get_field('code').column)} = %s AND c.{qn(channel_meta.get_field('is_active').column)}), "
            f"s AS (INSERT INTO {qn(meta.db_table)} ({', '.join(names)}) SELECT {', '.join(values)} FROM c "
            f"RETURNING {qn(meta.pk.column)}) "
            f"SELECT s.{qn(meta.pk.column)}, c.* FROM s CROSS JOIN c"
        )
        return sql, channels

    sql, channels = kept_per_connection(conn, "sessions.insert_basket", build)
    session.adjustments, totals = apply_adjustments(session.lines, session.adjustments or [])  # as save() derives them
    session.total_q = totals["total_q"]
    params = [field.get_db_prep_save(field.pre_save(session, True), conn) for field in own]
    with conn.cursor() as cursor:
        cursor.execute(sql, [channel_code, *params])
        row = cursor.fetchone()
    if row is None:
        raise SessionError("channel_not_found", context={"channel_code": channel_code})
    channel = channels.load(alias, row[1:])
    session.pk = row[0]
    session.channel = channel
    session.pricing_policy, session.edit_policy = channel.pricing_policy, channel.edit_policy
    session._state.adding = False
    session._state.db = alias
    return True


def _initial_data(data: Any) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValidationError("invalid_field", _("data must be an object."), {"field": "data"})
    for key in RESERVED_DATA_KEYS:
        if key in data:
            raise ValidationError("reserved_path", _("%(key)s is reserved.") % {"key": repr(key)}, {"path": key})
    data = ensure_json(dict(data), "data")
    ensure_data_size(data)
    return data


def _existing_session(channel: Channel, handle_type: str, handle_ref: str, session_key: str | None) -> Session | None:
    if session_key:
        found = Session.objects.select_related("channel").filter(session_key=session_key).first()
        if found is not None:
            if found.channel_id != channel.pk:
                raise SessionError("session_key_conflict", context={"session_key": session_key})
            require_open(found)
            return found
    if handle_ref:
        return (
            Session.objects.select_related("channel")
            .filter(channel=channel, handle_type=handle_type, handle_ref=handle_ref, state=Session.State.OPEN)
            .first()
        )
    return None


class ModifyService:
    @staticmethod
    def modify_session(
        session_key: str,
        channel_code: str,
        ops: list[dict[str, Any]],
        *,
        ctx: dict[str, Any] | None = None,
        expected_rev: int | None = None,
    ) -> Session:
        """Apply ``ops`` atomically; ``rev`` goes up by one; checks and issues clear.

        With ``expected_rev``, a session that moved on since the caller read it
        raises ``SessionError("stale_rev")`` and nothing is applied. A parked
        session is resumed by the change (``data["parked"]`` back to ``False``).

        The checks it enqueues whose topics are in ``DISPATCH_ON_COMMIT`` and
        whose handlers are ``database_only`` (the stock hold, pricing) run in
        its transaction, on the session it holds locked
        (:func:`omniman.engine.dispatch_before_commit`): the session returned
        carries their results. A check that fails leaves its directive queued
        for the workers; the change itself still commits.
        """
        ctx = dict(ctx or {})
        with transaction.atomic(), engine.dispatch_before_commit() as checks:
            ctx.pop(pipeline.SOLD_OUT_READ, None)  # only the list read here, never a caller's
            if pipeline.adds_skus(ops):
                # The kitchen's 86 list comes with the session's lock: one statement, read now, never kept.
                session, sold_out = lock_session_with_sold_out(session_key, channel_code)
                if sold_out is not None:
                    ctx[pipeline.SOLD_OUT_READ] = sold_out
            else:
                session = lock_session(session_key, channel_code)
            require_open(session)
            require_rev(session, expected_rev)
            session = pipeline.modify(session, _resuming(session, ops), ctx=ctx)
            checks.share(session=session)
        logger.info(
            "session modified",
            extra={
                "session_key": session_key,
                "channel": channel_code,
                "actor": ctx.get("actor", "system"),
                "rev": session.rev,
                "ops": [op.get("op") for op in ops if isinstance(op, dict)],
            },
        )
        return session


def require_rev(session: Session, expected_rev: Any) -> None:
    """``stale_rev`` unless the caller saw this revision (``None``: the caller doesn't care)."""
    if expected_rev is not None and _as_rev(expected_rev) != session.rev:
        raise SessionError(
            "stale_rev",
            _("The session is at rev %(session_rev)s, not %(expected_rev)s.")
            % {"session_rev": session.rev, "expected_rev": expected_rev},
            {"session_key": session.session_key, "expected_rev": expected_rev, "current_rev": session.rev},
        )


def _as_rev(value: Any) -> int:
    """``expected_rev`` as an int (``"3"`` is accepted, as forms send it); anything else is ``invalid_field``."""
    if not isinstance(value, bool):
        try:
            return int(value)
        except (TypeError, ValueError):
            pass
    raise ValidationError("invalid_field", _("expected_rev must be an integer."), {"field": "expected_rev"})


class SessionWriteService:
    @staticmethod
    def write_check(
        session_key: str,
        channel_code: str,
        *,
        check_code: str,
        expected_rev: int,
        result: Any,
        status: str = "ok",
        issues: list[dict[str, Any]] | None = None,
        session: Session | None = None,
    ) -> bool:
        """Record a check's outcome for ``expected_rev``; ``False`` (and no write) if the session moved on.

        The check's issues replace the issues of the same source; a result's
        ``expires_at`` (ISO 8601) is kept on the check so the commit can refuse
        an expired hold. ``rev`` never changes here.

        ``session``: the session itself, when the caller holds it locked in its
        open transaction (a check handler that locked it first, or ran in the
        transaction that changed it): it is not read again, and the object
        carries the check once written (one ``UPDATE``).
        """
        if not isinstance(check_code, str) or not check_code:
            raise ValidationError("missing_field", _("check_code is required."), {"field": "check_code"})
        expected_rev = _as_rev(expected_rev)
        if session is None:
            with transaction.atomic():
                return _write_check(lock_session(session_key, channel_code), check_code, expected_rev, result, status, issues)
        if session.session_key != session_key or session.channel.code != channel_code:
            raise ValueError("write_check: the session given is not the one addressed")
        if not connection.in_atomic_block:
            raise transaction.TransactionManagementError("write_check(session=...) needs the transaction that locked it")
        return _write_check(session, check_code, expected_rev, result, status, issues)


def _write_check(
    session: Session, check_code: str, expected_rev: int, result: Any, status: str, issues: list[dict[str, Any]] | None
) -> bool:
    if session.state != Session.State.OPEN or session.rev != expected_rev:
        return False
    ensure_json(result, "result")
    normalized = [_normalize_issue(issue, check_code, index) for index, issue in enumerate(issues or [])]
    entry: dict[str, Any] = {
        "rev": expected_rev,
        "status": status,
        "result": result,
        "checked_at": timezone.now().isoformat(),
    }
    expires_at = result.get("expires_at") if isinstance(result, dict) else None
    if expires_at:
        parsed = parse_datetime(str(expires_at)) if not isinstance(expires_at, datetime) else expires_at
        if parsed is None:
            raise ValidationError("invalid_field", _("expires_at must be ISO 8601."), {"field": "expires_at"})
        if timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, dt_timezone.utc)
        entry["expires_at"] = parsed.isoformat()
    data = session.data
    data.setdefault("checks", {})[check_code] = entry
    kept = [issue for issue in data.get("issues", []) if issue.get("source") != check_code]
    taken = {issue["id"] for issue in kept}
    for issue in normalized:
        while issue["id"] in taken:
            issue["id"] += "+"
        taken.add(issue["id"])
    data["issues"] = kept + normalized
    session.save(update_fields=["data", "updated_at"])
    return True


def _normalize_issue(issue: Any, check_code: str, index: int) -> dict[str, Any]:
    def bad(why: str) -> ValidationError:
        return ValidationError("invalid_issue", _("Issue %(index)s: %(why)s.")
            % {"index": index, "why": why}, {"index": index})

    if not isinstance(issue, dict):
        raise bad(_("not an object"))
    code = issue.get("code")
    if not isinstance(code, str) or not code:
        raise bad(_("a code is required"))
    severity = issue.get("severity", "blocking")
    if severity not in SEVERITIES:
        raise bad(_("severity must be one of %(severities)s") % {"severities": SEVERITIES})
    actions = issue.get("actions") or []
    if not isinstance(actions, list):
        raise bad(_("actions must be a list"))
    normalized_actions = []
    for position, action in enumerate(actions):
        if not isinstance(action, dict) or not action.get("id"):
            raise bad(_("action %(position)s needs an id") % {"position": position})
        ops = action.get("ops") or []
        if not isinstance(ops, list):
            raise bad(_("action %(action_id)s: ops must be a list") % {"action_id": repr(action["id"])})
        normalized_actions.append(
            {**action, "id": str(action["id"]), "label": str(action.get("label") or action["id"]), "ops": ops}
        )
    source = issue.get("source") or check_code
    line_part = issue.get("line_id") or issue.get("sku") or str(index)
    normalized = {
        **issue,
        "id": str(issue.get("id") or f"{source}:{code}:{line_part}"),
        "source": source,
        "code": code,
        "message": str(issue.get("message") or code),
        "severity": severity,
        "context": issue.get("context") or {},
        "actions": normalized_actions,
    }
    return ensure_json(normalized, "issues")


class ResolveService:
    @staticmethod
    @transaction.atomic
    def resolve(
        session_key: str,
        channel_code: str,
        *,
        issue_id: str,
        action_id: str,
        ctx: dict[str, Any] | None = None,
        expected_rev: int | None = None,
    ) -> Session:
        """Apply one of an issue's actions.

        The resolver registered for the issue's ``source`` decides, if any;
        otherwise the action's ``ops`` go through ``ModifyService`` (so ``rev``
        goes up and the issues clear).
        """
        ctx = dict(ctx or {})
        session = lock_session(session_key, channel_code)
        require_open(session)
        require_rev(session, expected_rev)
        issue = next((i for i in session.data.get("issues", []) if i.get("id") == issue_id), None)
        if issue is None:
            raise IssueResolveError("issue_not_found", context={"issue_id": issue_id})
        action = next((a for a in issue.get("actions", []) if a.get("id") == action_id), None)
        if action is None:
            raise IssueResolveError("action_not_found", context={"issue_id": issue_id, "action_id": action_id})
        log_extra = {
            "session_key": session_key,
            "channel": channel_code,
            "actor": ctx.get("actor", "system"),
            "issue": issue.get("code", ""),
            "action": action_id,
        }
        resolver = registry.get_issue_resolver(issue.get("source", ""))
        if resolver is None:
            session = pipeline.modify(session, action.get("ops") or [], ctx=ctx)
            logger.info("issue resolved", extra={**log_extra, "rev": session.rev})
            return session
        try:
            resolved = resolver.resolve(session=session, issue=issue, action=action, ctx=ctx)
        except OmnimanError:
            raise
        except Exception as exc:
            raise IssueResolveError(
                "resolver_error",
                _("The %(source)s resolver failed: %(type)s: %(exc)s")
                % {"source": repr(issue.get('source')), "type": type(exc).__name__, "exc": exc},
                {"issue_id": issue_id, "action_id": action_id, "source": issue.get("source")},
            ) from exc
        if not isinstance(resolved, Session):
            raise IssueResolveError(
                "resolver_error",
                _("The %(source)s resolver did not return a Session.") % {"source": repr(issue.get('source'))},
                {"issue_id": issue_id, "action_id": action_id, "source": issue.get("source")},
            )
        logger.info("issue resolved", extra={**log_extra, "rev": resolved.rev, "resolver": issue.get("source", "")})
        return resolved
