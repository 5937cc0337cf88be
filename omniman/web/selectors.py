"""Reads for the operator screens. They own the queries; views and templates run none of their own.

Every selector's query count is fixed: it does not grow with lines, orders or catalog size.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Case, Count, IntegerField, OuterRef, Q, Subquery, Value, When

from omniman.models import CheckState, Channel, KitchenItem, Order, Session
from omniman.services import orders_of_handle_today, sold_out_skus
from omniman.texts import localized

GRID_SIZE = 48


def unavailable_skus() -> set[str]:
    """SKUs the POS shows sold out: the kitchen's 86 list, and stock-tracked products with nothing on hand (two queries)."""
    from django.apps import apps

    skus = set(sold_out_skus())
    if apps.is_installed("omniman.contrib.stock"):
        from omniman.contrib.stock.models import StockLevel

        skus |= set(StockLevel.objects.filter(on_hand__lte=0).values_list("sku", flat=True))
    return skus
SEARCH_SIZE = 12


def active_channels() -> list[Channel]:
    return list(Channel.objects.filter(is_active=True).order_by("display_order", "code"))


def channel_or_none(code: str) -> Channel | None:
    return Channel.objects.filter(code=code, is_active=True).first()


def open_sessions(channel: Channel, query: str = "", limit: int = 200) -> list[Session]:
    """The channel's open sessions, newest first; ``query`` matches the handle, customer name or phone."""
    sessions = Session.objects.filter(channel=channel, state=Session.State.OPEN)
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
    def table_total_q(self) -> int:
        """What the table owes: the rounds sent and the round being composed, service included."""
        return self.rounds_total_q + int(self.totals.get("total_q", self.session.total_q))


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
        items=session.items,
        issues=issues,
        checks=checks,
        blocking=blocking,
        can_commit=session.state == Session.State.OPEN and bool(session.lines) and ready and not blocking,
        totals=totals,
        idempotency_key=uuid.uuid4().hex,
    )
    if with_rounds and session.handle_ref:
        screen.rounds = rounds_today(channel, session.handle_type, session.handle_ref)
        cancelled = channel.order_flow.cancel_status
        screen.rounds_total_q = sum(order.charged_q for order in screen.rounds if order.status != cancelled)
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


# The operator app's reads (one query per screen region, no write); the rest is private.
__all__ = [
    "GRID_SIZE",
    "SEARCH_SIZE",
    "active_channels",
    "channel_or_none",
    "open_sessions",
    "session_on_screen",
    "CheckState",
    "SessionScreen",
    "session_screen",
    "rounds_today",
]
