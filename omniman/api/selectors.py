"""Reads for the API. Each list is one query (plus one per prefetched relation), whatever its length."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from omniman.exceptions import OmnimanError, SessionError
from omniman.models import Channel, Order, Session
from omniman.services import find_session

ORDER_ORDERINGS = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
    "-updated_at": ("-updated_at", "-id"),
    "updated_at": ("updated_at", "id"),
}


def channels() -> QuerySet[Channel]:
    return Channel.objects.filter(is_active=True).order_by("display_order", "code", "id")


def channel(code: str) -> Channel:
    found = channels().filter(code=code).first()
    if found is None:
        raise SessionError("channel_not_found", f"No active channel {code!r}.", {"channel_code": code})
    return found


def sessions(
    *, channel_code: str = "", state: str = "", handle_type: str = "", handle_ref: str = ""
) -> QuerySet[Session]:
    """Sessions, newest first, filtered by whatever is given."""
    rows = Session.objects.select_related("channel")
    if channel_code:
        rows = rows.filter(channel__code=channel_code)
    if state:
        rows = rows.filter(state=state)
    if handle_type:
        rows = rows.filter(handle_type=handle_type)
    if handle_ref:
        rows = rows.filter(handle_ref=handle_ref)
    return rows.order_by("-opened_at", "-id")


def session(session_key: str, channel_code: str) -> Session:
    """The session addressed by key *and* channel (``SessionError("not_found")`` otherwise)."""
    return find_session(session_key, channel_code)


def orders(
    *,
    channel_code: str = "",
    status: str = "",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    updated_since: datetime | None = None,
    ordering: str = "-created_at",
) -> QuerySet[Order]:
    """Orders with their items; ``updated_since`` (inclusive) is for polling."""
    rows = Order.objects.select_related("channel").prefetch_related("items")
    if channel_code:
        rows = rows.filter(channel__code=channel_code)
    if status:
        rows = rows.filter(status=status)
    if created_after is not None:
        rows = rows.filter(created_at__gte=created_after)
    if created_before is not None:
        rows = rows.filter(created_at__lt=created_before)
    if updated_since is not None:
        rows = rows.filter(updated_at__gte=updated_since)
    return rows.order_by(*ORDER_ORDERINGS.get(ordering, ORDER_ORDERINGS["-created_at"]))


def order(ref: str) -> Order:
    """One order with its items and events (three queries)."""
    found = Order.objects.select_related("channel").prefetch_related("items", "events").filter(ref=ref).first()
    if found is None:
        raise OmnimanError("not_found", f"No order {ref!r}.", {"order_ref": ref})
    return found



# The API's reads (a 404 with a stable code for what is missing); no write.
__all__ = ["ORDER_ORDERINGS", "channels", "channel", "sessions", "session", "orders", "order"]
