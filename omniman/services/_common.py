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
from omniman.models import Channel, ModelRows, Session, SoldOut, first_with_channel, kept_per_connection

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


def lock_session_with_sold_out(session_key: str, channel_code: str) -> tuple[Session, frozenset[str] | None]:
    """``lock_session`` and the SKUs the kitchen marked sold out (``sold_out_skus()``), in one statement.

    For a modification that adds a SKU (its ops refuse a sold-out one): on
    PostgreSQL and SQLite the 86 list is a column of the session's lock
    read (``ARRAY(SELECT sku FROM omniman_soldout WHERE sold_out)``), read
    by that statement, never kept. Elsewhere, or when the read finds no
    session (its error told as ``lock_session`` tells it), the list is
    ``None``: the caller reads it (``pipeline.modify`` does).
    """
    alias = router.db_for_write(Session)
    conn = connections[alias]
    if conn.vendor not in ("postgresql", "sqlite") or router.db_for_read(SoldOut) != alias:
        return lock_session(session_key, channel_code), None

    def build() -> tuple[str, ModelRows, ModelRows]:
        qn = conn.ops.quote_name
        rows, channels = ModelRows.of(Session, conn, "r"), ModelRows.of(Channel, conn, "c")
        meta, channel_meta, sold = Session._meta, Channel._meta, SoldOut._meta
        sku = f"x.{qn(sold.get_field('sku').column)}"
        listed = f"FROM {qn(sold.db_table)} x WHERE x.{qn(sold.get_field('sold_out').column)}"
        skus = f"ARRAY(SELECT {sku} {listed})" if conn.vendor == "postgresql" else f"(SELECT json_group_array({sku}) {listed})"
        sql = (
            f"SELECT {rows.columns}, {channels.columns}, {skus} FROM {qn(meta.db_table)} r "
            f"INNER JOIN {qn(channel_meta.db_table)} c "
            f"ON r.{qn(meta.get_field('channel').column)} = c.{qn(channel_meta.pk.column)} "
            f"WHERE r.{qn(meta.get_field('session_key').column)} = %s AND c.{qn(channel_meta.get_field('code').column)} = %s "
            "LIMIT 1"
        )
        if conn.features.has_select_for_update:
            sql += " FOR UPDATE OF r" if conn.features.has_select_for_update_of else " FOR UPDATE"
        return sql, rows, channels

    if conn.features.has_select_for_update and conn.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    sql, rows, channels = kept_per_connection(conn, "sessions.lock_with_sold_out", build)
    with conn.cursor() as cursor:
        cursor.execute(sql, [session_key, channel_code])
        row = cursor.fetchone()
    if row is None:
        return lock_session(session_key, channel_code), None  # tells channel_not_found / not_found (or finds it now)
    session = rows.load(alias, row[: len(rows)])
    Session._meta.get_field("channel").set_cached_value(session, channels.load(alias, row[len(rows) : -1]))
    skus = row[-1]
    return session, frozenset(json.loads(skus) if isinstance(skus, str) else skus or ())


def _read_session(session_key: str, channel_code: str, *, lock: bool) -> Session | None:
    # ``Session.objects.select_related("channel").filter(session_key=…, channel__code=…).first()``, as SQL kept
    # per connection: every modify, check and commit runs it (often twice), and the ORM spent about 1 ms of CPU
    # building and compiling it each time (``benchmarks/profile_api.py``).
    return first_with_channel(Session, _SESSION_WHERE, [session_key, channel_code], lock=lock)


_SESSION_WHERE = (("row", "session_key"), ("channel", "code"))


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
