"""Reads for the operator screens. They own the queries; views and templates run none of their own.

Every selector's query count is fixed: it does not grow with lines, orders or catalog size.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.utils import timezone

from omniman.models import Bill, CheckState, Channel, KitchenItem, Order, Session, empty_sessions
from omniman.services import open_bill_credits, orders_of_handle_today, sold_out_skus, table_owed
from omniman.texts import localized

GRID_SIZE = 48


def unavailable_skus() -> set[str]:
    """SKUs the POS shows sold out: the kitchen's 86 list, and stock-tracked products with nothing on hand (two queries)."""
    from django.apps import apps

    skus = set(sold_out_skus())
    if apps.is_installed("omniman.contrib.stock"):
        from omniman.contrib.stock.models import StockLevel

        skus |= set(StockLevel.objects.filter(track=True, on_hand__lte=0).values_list("sku", flat=True))
    return skus


SEARCH_SIZE = 12


def active_channels() -> list[Channel]:
    return list(Channel.objects.filter(is_active=True).order_by("display_order", "code"))


def channel_or_none(code: str) -> Channel | None:
    return Channel.objects.filter(code=code, is_active=True).first()


def open_sessions(channel: Channel, query: str = "", limit: int = 200) -> list[Session]:
    """The channel's open sessions with something in them (a line, or parked), newest first; ``query`` matches
    the handle, customer name or phone. An empty tab or basket is not listed (the maintenance abandons it).

    Each carries ``owed_q``: what its handle owes — its rounds sent today and
    still active, plus the open session's own total (two queries in all).
    """
    sessions = with_owed(channel, _open_sessions(channel, query, limit))
    # An empty tab is listed while its table has rounds of today (sent, paid or not: it is not closed yet);
    # an empty basket, or a tab opened on the map and left empty, is not.
    return [s for s in sessions if s.lines or s.rounds_today or not _is_empty(s)]


def _is_empty(session: Session) -> bool:
    """``empty_sessions()`` on a loaded session: no line, customer or notes, and not parked."""
    data = session.data or {}
    return not session.lines and not data.get("parked") and "customer" not in data and "notes" not in data


def with_owed(channel: Channel, sessions: list[Session]) -> list[Session]:
    """Set ``rounds_owed_q`` and ``owed_q`` on each session: what its table still owes (the kernel's
    ``table_owed``: today's rounds not cancelled and not paid, less what their open bills took) — two queries
    for every handle on the page."""
    refs = {s.handle_ref for s in sessions if s.handle_ref}
    rounds: dict[str, list[Order]] = {}
    if refs:
        for order in (
            _today(channel)
            .filter(current_handle_ref__in=refs)
            .only("ref", "status", "total_q", "currency", "snapshot", "current_handle_ref", "handle_type", "bill_id")
            .order_by("created_at", "id")
        ):
            rounds.setdefault(order.current_handle_ref, []).append(order)
    credits = open_bill_credits([order for orders in rounds.values() for order in orders])
    for session in sessions:
        mine = [o for o in rounds.get(session.handle_ref, []) if o.handle_type == session.handle_type] if session.handle_ref else []
        session.rounds_today = len(mine)
        session.rounds_owed_q = table_owed(0, mine, channel, credits) if mine else 0
        session.owed_q = session.rounds_owed_q + (session.total_q if session.is_open else 0)
    return sessions


def _today(channel: Channel):
    """The channel's orders of today that count (not cancelled)."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = Order.objects.filter(channel=channel, created_at__gte=start)
    cancel = channel.order_flow.cancel_status
    return rows.exclude(status=cancel) if cancel else rows


def rounds_owed_q(channel: Channel, rounds: list[Order]) -> int:
    """What a table's rounds (loaded) still owe: the kernel's ``table_owed`` with nothing open (one query when a
    round is on a bill, none otherwise)."""
    return table_owed(0, rounds, channel)


def _open_sessions(channel: Channel, query: str, limit: int) -> list[Session]:
    sessions = (
        Session.objects.filter(channel=channel, state=Session.State.OPEN)
        .exclude(empty_sessions() & Q(handle_ref=""))  # empty tabs are sorted out once what their tables owe is known
        .select_related("channel")
    )
    query = (query or "").strip()
    if query:
        sessions = sessions.filter(
            Q(handle_ref__iexact=query)
            | Q(handle_ref__icontains=query)
            | Q(data__customer__name__icontains=query)
            | Q(data__customer__phone__icontains=query)
            | Q(session_key__iexact=query)
        )
        sessions = sessions.annotate(
            exact=Case(When(handle_ref__iexact=query, then=Value(0)), default=Value(1), output_field=IntegerField())
        ).order_by("exact", "-updated_at", "-id")
        return list(sessions[:limit])
    return list(sessions.order_by("-updated_at", "-id")[:limit])


def open_session_of_handle(channel: Channel, handle_type: str, handle_ref: str) -> Session | None:
    """The handle's open session (a table's current round), if it has one: one query."""
    if not handle_ref:
        return None
    rows = Session.objects.filter(
        channel=channel, handle_type=handle_type, handle_ref=handle_ref, state=Session.State.OPEN
    ).order_by()[:1]
    return next(iter(rows), None)


def session_on_screen(channel_code: str, session_key: str) -> Session | None:
    """A session addressed by its channel's code and its key (the channel active), with its channel: one query."""
    rows = (
        Session.objects.select_related("channel")
        .filter(channel__code=channel_code, channel__is_active=True, session_key=session_key)
        .order_by()[:1]  # the key is unique
    )
    return next(iter(rows), None)


@dataclass
class SessionScreen:
    session: Session
    channel: Channel
    items: list[dict[str, Any]]
    issues: list[dict[str, Any]]
    checks: list[CheckState]
    blocking: bool
    can_commit: bool
    totals: dict[str, Any]
    idempotency_key: str
    rounds: list[Order] = field(default_factory=list)
    rounds_total_q: int = 0

    @property
    def issue_lines(self) -> set[str]:
        return {issue.get("line_id") for issue in self.issues if issue.get("line_id")}

    @property
    def pending_checks(self) -> bool:
        """A required check must (re)run before the commit: missing, stale or expired."""
        return any(c.blocks_commit for c in self.checks)

    @property
    def adjustment_rows(self) -> list[dict[str, Any]]:
        """The adjustments to list under the items (a waived service charge included), each with its line's name."""
        names = {item["line_id"]: item.get("name") or item.get("sku") for item in self.items}
        return [{**a, "line_name": names.get(a.get("line_id"), "")} for a in self.totals.get("adjustments") or []]

    @property
    def table_total_q(self) -> int:
        """What the table owes: its rounds sent today not yet paid (on no bill, or on its open bill less what was
        paid), plus the round being composed (if it is still open: a round sent is counted once, as its order),
        service and discounts included."""
        return self.rounds_total_q + (int(self.totals["total_q"]) if self.session.is_open else 0)


def session_screen(session: Session, *, with_rounds: bool = True) -> SessionScreen:
    """Everything the session screen shows: lines, checks, issues, totals, the table's rounds."""
    channel = session.channel
    issues = [localized(issue) for issue in session.issues if isinstance(issue, dict)]
    checks = session.check_states()
    blocking = any(i.get("severity", "blocking") == "blocking" for i in issues)
    ready = not any(c.blocks_commit for c in checks)
    totals = session.totals
    screen = SessionScreen(
        session=session,
        channel=channel,
        # A round already sent (a stale tab, a reload of its URL) has no cart: its lines are its order's.
        items=session.items if session.is_open else [],
        issues=issues,
        checks=checks,
        blocking=blocking,
        can_commit=session.state == Session.State.OPEN and bool(session.lines) and ready and not blocking,
        totals=totals,
        idempotency_key=uuid.uuid4().hex,
    )
    if with_rounds and session.handle_ref:
        screen.rounds = rounds_today(channel, session.handle_type, session.handle_ref)
        screen.rounds_total_q = rounds_owed_q(channel, screen.rounds)
    return screen


def rounds_today(channel: Channel, handle_type: str, handle_ref: str) -> list[Order]:
    """The table's rounds of today with their items and how many of them are held (two queries)."""
    held = (
        KitchenItem.objects.filter(order=OuterRef("pk"), held=True)
        .order_by()
        .values("order")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rounds = orders_of_handle_today(channel, handle_type, handle_ref).annotate(held_count=Subquery(held))
    return list(rounds.prefetch_related("items"))


def table_tab(channel: Channel, handle_type: str, handle_ref: str) -> Session | None:
    """A table's current tab: its open round, else its last one (one query)."""
    rows = (
        Session.objects.filter(channel=channel, handle_type=handle_type, handle_ref=handle_ref)
        .annotate(open_first=Case(When(state=Session.State.OPEN, then=Value(0)), default=Value(1), output_field=IntegerField()))
        .order_by("open_first", "-opened_at", "-id")[:1]
    )
    return next(iter(rows), None)


def sold_out(skus: list[str]) -> set[str]:
    """The SKUs the stock app says have nothing free now (advisory, no lock; two queries). Empty without it."""
    from django.apps import apps

    if not skus or not apps.is_installed("omniman.contrib.stock"):
        return set()
    from omniman.contrib.stock import get_stock_backend

    available = get_stock_backend().check_availability({sku: Decimal(1) for sku in skus}, lock=False)
    return {sku for sku, free in available.items() if free <= 0}


# The operator app's reads (one query per screen region, no write); the rest is private.
__all__ = [
    "GRID_SIZE",
    "SEARCH_SIZE",
    "active_channels",
    "channel_or_none",
    "open_sessions",
    "session_on_screen",
    "open_session_of_handle",
    "with_owed",
    "rounds_owed_q",
    "CheckState",
    "SessionScreen",
    "session_screen",
    "rounds_today",
    "table_tab",
    "sold_out",
]
