"""Helpers shared by the services: row locks, keys, the JSON guard."""

from __future__ import annotations

import json
import secrets
from typing import Any

from django.db import connections, router
from django.db.transaction import TransactionManagementError
from django.utils.translation import gettext as _

from omniman import conf
from omniman.exceptions import SessionError, ValidationError
from omniman.models import Channel, ModelRows, Session

# Unambiguous upper-case alphabet for human-facing references (no 0/O, 1/I/L).
REF_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def random_code(length: int) -> str:
    return "".join(secrets.choice(REF_ALPHABET) for _ in range(length))


def new_session_key() -> str:
    return f"{conf.get('SESSION_KEY_PREFIX')}{secrets.token_hex(10).upper()}"


def lock_session(session_key: str, channel_code: str) -> Session:
    """Lock and return the session addressed by key *and* channel (``not_found`` otherwise)."""
    return find_session(session_key, channel_code, lock=True)


def find_session(session_key: str, channel_code: str, *, lock: bool = False) -> Session:
    """The session addressed by key *and* channel, with its channel.

    ``SessionError("channel_not_found")`` when no channel has that code, else ``SessionError("not_found")``
    when the channel has no such session.
    """
    session = _read_session(session_key, channel_code, lock=lock)
    if session is None:
        if not Channel.objects.filter(code=channel_code).exists():
            raise SessionError("channel_not_found", f"No channel {channel_code!r}.", {"channel_code": channel_code})
        raise SessionError(
            "not_found",
            _("No session %(session_key)s in channel %(channel_code)s.")
            % {"session_key": repr(session_key), "channel_code": repr(channel_code)},
            {"session_key": session_key, "channel_code": channel_code},
        )
    return session


def _session_sql(connection, *, lock: bool) -> tuple[str, ModelRows, ModelRows]:
    """``Session.objects.select_related("channel").filter(session_key=…, channel__code=…)[:1]``
    (``select_for_update(of=("self",))`` when locking) as SQL, kept per connection.

    Every modify, check and commit runs it (often twice); the ORM spent about
    1 ms of CPU building and compiling it each time (``benchmarks/profile_api.py``).
    """
    statements = connection.__dict__.setdefault("_omniman_session_sql", {})
    statement = statements.get(lock)
    if statement is None:
        qn = connection.ops.quote_name
        sessions, channels = ModelRows.of(Session, connection, "s"), ModelRows.of(Channel, connection, "c")
        channel_fk = Session._meta.get_field("channel")
        sql = (
            f"SELECT {sessions.columns}, {channels.columns} FROM {qn(Session._meta.db_table)} s "
            f"INNER JOIN {qn(Channel._meta.db_table)} c ON s.{qn(channel_fk.column)} = c.{qn(Channel._meta.pk.column)} "
            f"WHERE s.{qn(Session._meta.get_field('session_key').column)} = %s "
            f"AND c.{qn(Channel._meta.get_field('code').column)} = %s LIMIT 1"
        )
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE OF s" if connection.features.has_select_for_update_of else " FOR UPDATE"
        statement = statements[lock] = (sql, sessions, channels)
    return statement


def _read_session(session_key: str, channel_code: str, *, lock: bool) -> Session | None:
    alias = router.db_for_write(Session) if lock else router.db_for_read(Session)
    connection = connections[alias]
    if lock and connection.features.has_select_for_update and connection.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    sql, sessions, channels = _session_sql(connection, lock=lock)
    with connection.cursor() as cursor:
        cursor.execute(sql, [session_key, channel_code])
        row = cursor.fetchone()
    if row is None:
        return None
    session = sessions.load(alias, row[: len(sessions)])
    Session._meta.get_field("channel").set_cached_value(session, channels.load(alias, row[len(sessions) :]))
    return session


def require_open(session: Session, error_class=SessionError) -> None:
    if session.state == Session.State.COMMITTED:
        raise error_class("already_committed", context={"session_key": session.session_key})
    if session.state == Session.State.ABANDONED:
        raise error_class("abandoned", context={"session_key": session.session_key})


def ensure_json(value: Any, field: str) -> Any:
    """Reject values that the JSON columns cannot store exactly (with a ``ValidationError``)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            "invalid_field", _("%(field)s must be JSON: %(exc)s") % {"field": field, "exc": exc}, {"field": field}
        ) from None
    return value


def ensure_data_size(data: dict[str, Any], field: str = "data") -> None:
    """Refuse session data larger than ``OMNIMAN["SESSION_DATA_MAX_BYTES"]`` (compact JSON, UTF-8 bytes).

    ``ValidationError("data_too_large")`` with ``context = {"field", "bytes", "max_bytes"}``.
    """
    limit = conf.get("SESSION_DATA_MAX_BYTES")
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ValidationError(
            "data_too_large",
            _("The session's data would be %(size)d bytes; at most %(limit)d are allowed.") % {"size": size, "limit": limit},
            {"field": field, "bytes": size, "max_bytes": limit},
        )


def parse_expected_rev(expected_rev: Any) -> int | None:
    """A caller's ``expected_rev`` as an int (``None``: no check); anything else is ``invalid_field``."""
    if expected_rev is None:
        return None
    if isinstance(expected_rev, bool):
        raise ValidationError("invalid_field", context={"field": "expected_rev"})
    try:
        return int(expected_rev)
    except (TypeError, ValueError):
        raise ValidationError("invalid_field", _("expected_rev must be an integer."), {"field": "expected_rev"}) from None
