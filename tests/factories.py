"""Factories and state builders: make a channel, a session at rev N, an order at a status."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from omniman.models import Channel, Order, Session
from omniman.services import CommitService, ModifyService, OrderService, SessionService

_counter = itertools.count(1)


def make_channel(code: str | None = None, *, name: str = "", config: dict[str, Any] | None = None, **fields) -> Channel:
    code = code or f"ch-{next(_counter)}"
    return Channel.objects.create(code=code, name=name or code.upper(), config=config or {}, **fields)


def lines_ops(count: int, *, price: int = 1000, qty: str = "1", prefix: str = "SKU") -> list[dict[str, Any]]:
    return [
        {"op": "add_line", "sku": f"{prefix}-{i}", "qty": qty, "unit_price_q": price, "name": f"Item {i}"}
        for i in range(count)
    ]


def create_session_at(
    channel: Channel | None = None,
    *,
    lines: int = 1,
    rev: int | None = None,
    price: int = 1000,
    handle_type: str = "",
    handle_ref: str = "",
    data: dict[str, Any] | None = None,
) -> Session:
    """An open session with ``lines`` lines, modified until it reaches ``rev`` (at least 1 if lines)."""
    channel = channel or make_channel()
    session = SessionService.open_session(channel.code, handle_type=handle_type, handle_ref=handle_ref, data=data)
    if lines:
        session = ModifyService.modify_session(session.session_key, channel.code, lines_ops(lines, price=price))
    while rev is not None and session.rev < rev:
        session = ModifyService.modify_session(
            session.session_key, channel.code, [{"op": "set_data", "path": "touch", "value": session.rev}]
        )
    return session


def commit(session: Session, key: str | None = None, **kwargs) -> dict[str, Any]:
    return CommitService.commit(
        session.session_key, session.channel.code, idempotency_key=key or uuid.uuid4().hex, **kwargs
    )


def create_order_at(status: str = "new", channel: Channel | None = None, *, lines: int = 1, actor: str = "test") -> Order:
    """Commit a fresh session, then walk the channel's flow to ``status`` (shortest path)."""
    channel = channel or make_channel()
    session = create_session_at(channel, lines=lines)
    result = commit(session)
    order = Order.objects.get(ref=result["order_ref"])
    steps = channel.order_flow.path(order.status, status)
    if steps is None:
        raise ValueError(f"{status!r} is not reachable from {order.status!r} in channel {channel.code}")
    for step in steps:
        OrderService.transition(order.ref, step, actor=actor)
    return Order.objects.select_related("channel").get(pk=order.pk)


class DbState:
    """What a failed call must leave untouched: row counts and the session row."""

    def __init__(self, session: Session | None = None):
        self.session = session
        self.counts = self._counts()
        self.row = self._row() if session is not None else None

    @staticmethod
    def _counts() -> dict[str, int]:
        from omniman.models import Directive, OrderEvent, OrderItem

        return {
            "orders": Order.objects.count(),
            "items": OrderItem.objects.count(),
            "events": OrderEvent.objects.count(),
            "directives": Directive.objects.count(),
            "sessions": Session.objects.count(),
        }

    def _row(self):
        fresh = Session.objects.get(pk=self.session.pk)
        return (fresh.rev, fresh.lines, fresh.adjustments, fresh.data, fresh.state, fresh.total_q, fresh.updated_at)

    def assert_unchanged(self) -> None:
        assert self._counts() == self.counts
        if self.session is not None:
            assert self._row() == self.row
