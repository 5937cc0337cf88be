"""Locators with scoped uniqueness: tables, marketplace order ids, daily pickup tickets."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from omniman.contrib.refs.exceptions import RefError
from omniman.contrib.refs.models import Ref, TicketSequence
from omniman.models import Channel, Order, OrderEvent, Session, insert_rows, kept_per_connection

logger = logging.getLogger("omniman.refs")

TICKET_ASSIGNED = "ticket.assigned"
# Scopes whose refs Omniman writes itself: "table:<channel>" is read from the
# sessions' handles, "pickup:<channel>:<day>" by assign_ticket().
RESERVED_KINDS = ("table", "pickup")


@dataclass(frozen=True)
class Locator:
    """What a (scope, key) points at now."""

    scope: str
    key: str
    session_key: str = ""
    order_ref: str = ""


def _kind(scope: str) -> str:
    return scope.split(":", 1)[0]


def _check(scope: str, key: str) -> tuple[str, str]:
    scope, key = (scope or "").strip(), str(key or "").strip()
    if not scope or not key or len(scope) > 128 or len(key) > 128:
        raise RefError("invalid_ref", "A ref needs a scope and a key (at most 128 characters each).", {"scope": scope, "key": key})
    return scope, key


def ticket_scope(channel_code: str) -> str:
    return f"pickup:{channel_code}"


def pickup_scope(channel_code: str, day: date) -> str:
    return f"pickup:{channel_code}:{day.isoformat()}"


class RefService:
    # -- bind / resolve / release ----------------------------------------------------

    @staticmethod
    @transaction.atomic
    def bind(scope: str, key: str, *, session_key: str = "", order_ref: str = "") -> Ref:
        """Point ``key`` (within ``scope``) at a session and/or an order; idempotent.

        Binding again with the same targets, or adding the missing one (the
        session first, its order after the commit), returns the same ref. A key
        that points elsewhere raises ``ref_taken``; a key whose session was
        abandoned is free again (the old ref is released on the way).
        """
        scope, key = _check(scope, key)
        if _kind(scope) in RESERVED_KINDS:
            raise RefError("reserved_scope", f"Refs in {_kind(scope)!r} scopes are managed by Omniman.", {"scope": scope})
        session_key, order_ref = (session_key or "").strip(), (order_ref or "").strip()
        if not session_key and not order_ref:
            raise RefError("invalid_ref", "Bind a key to a session_key, an order_ref, or both.", {"scope": scope, "key": key})
        for _ in range(3):
            existing = Ref.objects.select_for_update().filter(scope=scope, key=key, released_at__isnull=True).first()
            if existing is not None:
                target = _target(existing)
                if target is None:  # its session was abandoned: the key is free again
                    existing.released_at = timezone.now()
                    existing.save(update_fields=["released_at"])
                else:
                    return _merge(existing, target, session_key=session_key, order_ref=order_ref)
            try:
                with transaction.atomic():
                    return Ref.objects.create(scope=scope, key=key, session_key=session_key, order_ref=order_ref)
            except IntegrityError:
                continue  # bound concurrently: compare with the winner's ref
        raise RefError("ref_taken", "The key is being bound concurrently; try again.", {"scope": scope, "key": key})

    @staticmethod
    def resolve(scope: str, key: str) -> Locator | None:
        """Where ``key`` points now, or ``None``.

        ``table:<channel>`` scopes are read from the kernel's sessions: the open
        session whose handle is a table of the channel's flow
        (``order_flow.table_handle_types``, default ``"table"``) and ``key``. A ref bound to a session
        resolves to the session's order once it is committed, and to nothing
        once it is abandoned.
        """
        scope, key = _check(scope, key)
        if _kind(scope) == "table":
            channel_code = scope.split(":", 1)[1] if ":" in scope else ""
            channel = Channel.objects.filter(code=channel_code).only("config").first()
            tables = channel.order_flow.table_handle_types if channel is not None else []
            session_key = (
                Session.objects.filter(channel=channel, handle_type__in=tables, handle_ref=key, state=Session.State.OPEN)
                .values_list("session_key", flat=True)
                .first()
                if tables
                else None
            )
            return Locator(scope, key, session_key=session_key) if session_key else None
        ref = Ref.objects.filter(scope=scope, key=key, released_at__isnull=True).first()
        if ref is None:
            return None
        target = _target(ref)
        if target is None:
            return None
        return Locator(scope, key, session_key=ref.session_key, order_ref=target)

    @staticmethod
    @transaction.atomic
    def release(scope: str, key: str) -> bool:
        """Free ``key`` in ``scope`` (the history stays); ``False`` if it was not bound."""
        scope, key = _check(scope, key)
        if _kind(scope) in RESERVED_KINDS:
            raise RefError("reserved_scope", f"Refs in {_kind(scope)!r} scopes are managed by Omniman.", {"scope": scope})
        return bool(Ref.objects.filter(scope=scope, key=key, released_at__isnull=True).update(released_at=timezone.now()))

    # -- pickup tickets -----------------------------------------------------------------

    @staticmethod
    def next_ticket(channel_code: str, *, day: date | None = None) -> int:
        """The next pickup number of ``channel_code`` for ``day`` (default: today), from 1.

        One statement: the (scope, day) counter row is inserted at 1 or bumped
        (``INSERT … ON CONFLICT DO UPDATE SET last = last + 1 RETURNING last``),
        and stays locked for the rest of the caller's transaction, so
        concurrent callers get distinct, consecutive numbers.
        """
        if not channel_code:
            raise RefError("invalid_ref", "A ticket needs a channel code.", {"channel_code": channel_code})
        return int(_bump_ticket(ticket_scope(channel_code), day or timezone.localdate()) or 0)  # never None unguarded

    @staticmethod
    def assign_ticket(order_ref: str, *, actor: str = "system", held: Order | None = None) -> int:
        """The order's pickup number, taken once: later calls return the same number.

        Locks the order; takes the next number of the order's channel for the
        day the order was created unless the order has its ``ticket.assigned``
        event (then its number is returned); writes the
        ``pickup:<channel>:<day>`` ref and the event. In the caller's
        transaction if there is one (the directive engine's), without a
        savepoint; else in its own.

        ``held``: the order itself, when the caller's transaction holds its row
        (the commit that inserted it, :func:`omniman.engine.dispatch_before_commit`):
        it is not read nor locked again (one statement less).
        """
        if transaction.get_connection(router.db_for_write(Order)).in_atomic_block:
            return _assign_ticket(order_ref, actor=actor, held=held)
        with transaction.atomic(using=router.db_for_write(Order)):
            return _assign_ticket(order_ref, actor=actor, held=held)

    @staticmethod
    def tickets_for(order_refs: Iterable[str]) -> dict[str, int]:
        """Pickup numbers by order ref, in one query (orders without one are left out)."""
        rows = Ref.objects.filter(order_ref__in=list(order_refs), scope__startswith="pickup:").values_list("order_ref", "key")
        return {order_ref: int(key) for order_ref, key in rows}

    @staticmethod
    def ticket_for(order_ref: str) -> int | None:
        return RefService.tickets_for([order_ref]).get(order_ref)

    @staticmethod
    def order_for_ticket(channel_code: str, number: int, *, day: date | None = None) -> str | None:
        """The order ref that got pickup ``number`` on ``day`` (default: today)."""
        scope = pickup_scope(channel_code, day or timezone.localdate())
        return Ref.objects.filter(scope=scope, key=str(number)).values_list("order_ref", flat=True).first()


class PickupTicketSource:
    """The kernel's ``TicketSource`` (registered in ``RefsConfig.ready()``): the pickup numbers ``RefService`` allots."""

    def tickets_for(self, order_refs: list[str]) -> dict[str, int]:
        return RefService.tickets_for(order_refs)


def _target(ref: Ref) -> str | None:
    """The ref's order ref ("" while its session is open), or ``None`` if it lapsed."""
    if ref.order_ref:
        return ref.order_ref
    session = Session.objects.filter(session_key=ref.session_key).values_list("state", flat=True).first()
    if session == Session.State.OPEN:
        return ""
    if session == Session.State.COMMITTED:
        return Order.objects.filter(session_key=ref.session_key).values_list("ref", flat=True).first() or ""
    return None


def _merge(ref: Ref, current_order: str, *, session_key: str, order_ref: str) -> Ref:
    clash = (session_key and ref.session_key and session_key != ref.session_key) or (
        order_ref and current_order and order_ref != current_order
    )
    if session_key and not ref.session_key and current_order:
        # Bound to an order only: a session may join it only if it is the order's own.
        own = Order.objects.filter(ref=current_order).values_list("session_key", flat=True).first()
        clash = clash or bool(own and own != session_key)
    if clash:
        raise RefError(
            "ref_taken",
            f"{ref.scope}/{ref.key} already points elsewhere.",
            {"scope": ref.scope, "key": ref.key, "session_key": ref.session_key, "order_ref": current_order},
        )
    changed = []
    if session_key and not ref.session_key:
        ref.session_key = session_key
        changed.append("session_key")
    if (order_ref or current_order) and not ref.order_ref:
        ref.order_ref = order_ref or current_order
        changed.append("order_ref")
    if changed:
        ref.save(update_fields=changed)
    return ref


def _assign_ticket(order_ref: str, *, actor: str, held: Order | None = None) -> int:
    """Four statements: lock the order (its id, creation time and channel), bump the day's counter unless the
    order already has its ticket, insert the ref and the event (``benchmarks/profile_api.py``: the handler runs
    after every commit of a channel with pickup numbers). Three with the ``held`` order: no lock to take. On
    PostgreSQL the bump, the ref and the event are one statement (:func:`_take_ticket`)."""
    if held is not None and held.ref == order_ref:
        locked = (held.pk, held.created_at, held.channel.code)  # the caller's transaction holds its row
    else:
        locked = _lock_order(order_ref)
    if locked is None:
        raise RefError("order_not_found", f"No order {order_ref!r}.", {"order_ref": order_ref})
    order_id, created_at, channel_code = locked
    day = timezone.localdate(created_at)
    # Read after the lock: a concurrent assignment of this order committed its event before letting go of it.
    if connections[router.db_for_write(TicketSequence)].vendor == "postgresql":
        number = _take_ticket(channel_code, day, order_id=order_id, order_ref=order_ref, actor=actor)
        if number is not None:
            logger.info("pickup ticket assigned", extra={"order_ref": order_ref, "ticket": number})
            return number
    else:
        number = _bump_ticket(ticket_scope(channel_code), day, unless_assigned=order_id)
    if number is None:
        assigned = (
            OrderEvent.objects.filter(order_id=order_id, type=TICKET_ASSIGNED)
            .order_by("created_at", "id")
            .values_list("payload", flat=True)
            .first()
        )
        return int(assigned["ticket"])
    # Two single-row INSERTs kept per connection (no signal receiver watches these rows' creation).
    insert_rows(Ref, [Ref(scope=pickup_scope(channel_code, day), key=str(number), order_ref=order_ref)])
    insert_rows(OrderEvent, [OrderEvent(order_id=order_id, type=TICKET_ASSIGNED, actor=actor, payload={"ticket": number, "day": day.isoformat()})])
    logger.info("pickup ticket assigned", extra={"order_ref": order_ref, "ticket": number})
    return number


def _lock_order(order_ref: str) -> tuple[int, datetime, str] | None:
    """``(id, created_at, channel code)`` of the order, its row locked (``FOR UPDATE OF``); SQL written once per connection."""
    connection = connections[router.db_for_write(Order)]
    if connection.features.has_select_for_update and connection.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    created_field = Order._meta.get_field("created_at")

    def build() -> tuple[str, Any, list[Any]]:
        qn = connection.ops.quote_name
        order, channel = Order._meta, Channel._meta
        sql = (
            f"SELECT o.{qn(order.pk.column)}, o.{qn(created_field.column)}, c.{qn(channel.get_field('code').column)} "
            f"FROM {qn(order.db_table)} o INNER JOIN {qn(channel.db_table)} c "
            f"ON o.{qn(order.get_field('channel').column)} = c.{qn(channel.pk.column)} "
            f"WHERE o.{qn(order.get_field('ref').column)} = %s"
        )
        if connection.features.has_select_for_update:
            sql += " FOR UPDATE OF o" if connection.features.has_select_for_update_of else " FOR UPDATE"
        column = created_field.get_col(order.db_table)
        return sql, column, [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]

    sql, column, converters = kept_per_connection(connection, ("refs.lock_order",), build)
    with connection.cursor() as cursor:
        cursor.execute(sql, [order_ref or ""])
        row = cursor.fetchone()
    if row is None:
        return None
    created_at = row[1]
    for converter in converters:
        created_at = converter(created_at, column, connection)
    return row[0], created_at, row[2]


def _bump_ticket(scope: str, day: date, *, unless_assigned: int | None = None) -> int | None:
    """The (scope, day) counter inserted at 1 or bumped, in one statement; its new ``last``.

    With ``unless_assigned`` (an order id), nothing happens and ``None`` is
    returned when that order already has its ``ticket.assigned`` event (the
    ``INSERT … SELECT … WHERE NOT EXISTS`` proposes no row).
    """
    connection = connections[router.db_for_write(TicketSequence)]
    guarded = unless_assigned is not None
    sql = kept_per_connection(connection, ("refs.bump_ticket", guarded), lambda: _bump_sql(connection, guarded=guarded))
    with connection.cursor() as cursor:
        cursor.execute(sql, _bump_params(connection, scope, day, unless_assigned))
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _bump_sql(connection, *, guarded: bool) -> str:
    """``INSERT … SELECT … ON CONFLICT (scope, day) DO UPDATE SET last = last + 1 RETURNING last`` (``guarded``: unless
    the order has its event); parameters from :func:`_bump_params`."""
    qn = connection.ops.quote_name
    meta, event = TicketSequence._meta, OrderEvent._meta
    table = qn(meta.db_table)
    scope_col, day_col, last, updated = (qn(meta.get_field(name).column) for name in ("scope", "day", "last", "updated_at"))
    where = "WHERE 1 = 1"  # SQLite needs a WHERE to tell the SELECT's end from ON CONFLICT
    if guarded:
        where = (
            f"WHERE NOT EXISTS (SELECT 1 FROM {qn(event.db_table)} e WHERE e.{qn(event.get_field('order').column)} = %s "
            f"AND e.{qn(event.get_field('type').column)} = %s)"
        )
    return (
        f"INSERT INTO {table} ({scope_col}, {day_col}, {last}, {updated}) SELECT %s, %s, 1, %s {where} "
        f"ON CONFLICT ({scope_col}, {day_col}) DO UPDATE SET {last} = {table}.{last} + 1, {updated} = excluded.{updated} "
        f"RETURNING {last}"
    )


def _bump_params(connection, scope: str, day: date, unless_assigned: int | None) -> list[Any]:
    meta = TicketSequence._meta
    params = [scope, meta.get_field("day").get_db_prep_save(day, connection), meta.get_field("updated_at").get_db_prep_save(timezone.now(), connection)]
    if unless_assigned is not None:
        params += [unless_assigned, TICKET_ASSIGNED]
    return params


def _take_ticket(channel_code: str, day: date, *, order_id: int, order_ref: str, actor: str) -> int | None:
    """PostgreSQL: the guarded counter bump, the ref and the ``ticket.assigned`` event in **one** statement; the number.

    The bump is a data-modifying ``WITH``; the ref and the event are inserted
    from its ``RETURNING`` row — the same rows :func:`_assign_ticket` writes
    elsewhere in three statements (the event's payload built by
    ``jsonb_build_object``). When the order already has its event the bump
    proposes no row, nothing is written, and ``None`` is returned. SQL kept per
    connection; no signal receiver watches these rows' creation.
    """
    connection = connections[router.db_for_write(TicketSequence)]

    def build() -> str:
        qn = connection.ops.quote_name
        ref, event = Ref._meta, OrderEvent._meta
        ref_columns = ", ".join(qn(ref.get_field(name).column) for name in ("scope", "key", "session_key", "order_ref", "created_at"))
        event_columns = ", ".join(qn(event.get_field(name).column) for name in ("order", "type", "actor", "payload", "created_at"))
        last = qn(TicketSequence._meta.get_field("last").column)
        return (
            f"WITH n AS ({_bump_sql(connection, guarded=True)}), "
            f"r AS (INSERT INTO {qn(ref.db_table)} ({ref_columns}) SELECT %s, n.{last}::text, '', %s, %s FROM n) "
            f"INSERT INTO {qn(event.db_table)} ({event_columns}) "
            f"SELECT %s, %s, %s, jsonb_build_object('ticket', n.{last}, 'day', %s::text), %s FROM n "
            f"RETURNING (SELECT n.{last} FROM n)"
        )

    sql = kept_per_connection(connection, ("refs.take_ticket",), build)
    now = timezone.now()
    ref_now = Ref._meta.get_field("created_at").get_db_prep_save(now, connection)
    event_now = OrderEvent._meta.get_field("created_at").get_db_prep_save(now, connection)
    params = _bump_params(connection, ticket_scope(channel_code), day, order_id)
    params += [pickup_scope(channel_code, day), order_ref, ref_now]
    params += [order_id, TICKET_ASSIGNED, actor, day.isoformat(), event_now]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else int(row[0])


__all__ = ["RefService", "Locator", "ticket_scope", "pickup_scope", "TICKET_ASSIGNED"]
