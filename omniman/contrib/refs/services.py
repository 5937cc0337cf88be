"""Locators with scoped uniqueness: tables, marketplace order ids, daily pickup tickets."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, transaction
from django.utils import timezone

from omniman.contrib.refs.exceptions import RefError
from omniman.contrib.refs.models import Ref, TicketSequence
from omniman.models import Channel, Order, Session
from omniman.services import lock_order

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
    @transaction.atomic
    def next_ticket(channel_code: str, *, day: date | None = None) -> int:
        """The next pickup number of ``channel_code`` for ``day`` (default: today), from 1.

        The (scope, day) counter row is locked (``select_for_update``) for the
        rest of the caller's transaction, so concurrent callers get distinct,
        consecutive numbers; the first caller of the day creates the row, and
        a loser of that race retries on the winner's row.
        """
        if not channel_code:
            raise RefError("invalid_ref", "A ticket needs a channel code.", {"channel_code": channel_code})
        day = day or timezone.localdate()
        scope = ticket_scope(channel_code)
        for _ in range(5):
            counter = TicketSequence.objects.select_for_update().filter(scope=scope, day=day).first()
            if counter is None:
                try:
                    with transaction.atomic():
                        counter = TicketSequence.objects.create(scope=scope, day=day, last=0)
                except IntegrityError:
                    continue  # another transaction created it first: lock theirs
            counter.last += 1
            counter.save(update_fields=["last", "updated_at"])
            return counter.last
        raise RefError("invalid_ref", "Could not take a ticket number.", {"channel_code": channel_code})  # pragma: no cover

    @staticmethod
    @transaction.atomic
    def assign_ticket(order_ref: str, *, actor: str = "system") -> int:
        """The order's pickup number, taken once: later calls return the same number.

        Locks the order, looks for its ``ticket.assigned`` event, else takes
        the next number of the order's channel for the day the order was
        created, writes the ``pickup:<channel>:<day>`` ref and the event.
        """
        order = lock_order(order_ref, missing=RefError("order_not_found", f"No order {order_ref!r}.", {"order_ref": order_ref}))
        assigned = order.events.filter(type=TICKET_ASSIGNED).values_list("payload", flat=True).first()
        if assigned is not None:
            return int(assigned["ticket"])
        day = timezone.localdate(order.created_at)
        number = RefService.next_ticket(order.channel.code, day=day)
        Ref.objects.create(scope=pickup_scope(order.channel.code, day), key=str(number), order_ref=order.ref)
        order.emit_event(TICKET_ASSIGNED, actor=actor, payload={"ticket": number, "day": day.isoformat()})
        logger.info("pickup ticket assigned", extra={"order_ref": order.ref, "ticket": number})
        return number

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


__all__ = ["RefService", "Locator", "ticket_scope", "pickup_scope", "TICKET_ASSIGNED"]
