"""State builders for the reports (issue #18): a sale at a given local day and hour, through the services.

Each sale commits an order (lines at kitchen stations), cooks it (the stations bump its items to ``ready``),
opens its bill, optionally voids a line and discounts the bill, takes a payment (method, actor, tip) and maybe
refunds part of it — then moves every timestamp of those rows to the moment asked (the services stamp "now").
The sale's figures are kept in a :class:`Book`, the test's own count of what it did.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from omniman.models import Bill, KitchenItem, Order, OrderEvent, Payment, Refund
from omniman.services import BillService, KitchenService, ModifyService, PaymentService, SessionService
from tests.factories import commit, make_channel

MANAGER = {"manager"}
PAYMENTS = {"methods": ["cash", "card", "pix"], "pix": {"key": "pix@cafe.example"}}
MENU = {
    "ESP": ("Espresso", 600, "bar"),
    "CAP": ("Cappuccino", 950, "bar"),
    "BURG": ("Burger", 3200, "kitchen"),
    "FRIES": ("Fries", 1400, "kitchen"),
    "CRO": ("Croissant", 1100, "pastry"),
}
_keys = itertools.count(1)


def channels(prefix: str = ""):
    """A counter and a tables channel, taking cash, card and Pix."""
    return (
        make_channel(f"{prefix}counter", name=f"{prefix.title()}Counter", pricing_policy="external", config={"payments": PAYMENTS}),
        make_channel(f"{prefix}tables", name=f"{prefix.title()}Tables", pricing_policy="external", config={"payments": PAYMENTS}),
    )


@dataclass
class Book:
    """What the sales did, counted apart from the reports."""

    sales_q: int = 0
    refunds_q: int = 0
    tips_q: int = 0
    discounts_q: int = 0
    voids_q: int = 0
    bills: int = 0
    by_method: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_staff: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    by_hour: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    by_sku_qty: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    kitchen_seconds: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def sell(
    channel,
    day: date,
    hour: int,
    *,
    lines: list[tuple[str, int]] = (("ESP", 1), ("BURG", 1)),
    method: str = "cash",
    actor: str = "user:ana",
    tip_q: int = 0,
    discount_q: int = 0,
    void_first: bool = False,
    refund_q: int = 0,
    cook_minutes: int = 10,
    book: Book | None = None,
    minute: int = 0,
) -> Bill:
    """One sale at ``day`` ``hour``:``minute`` (local), paid in full; its figures added to ``book``."""
    ops = [
        {"op": "add_line", "sku": sku, "qty": str(qty), "unit_price_q": MENU[sku][1], "name": MENU[sku][0],
         "meta": {"station": MENU[sku][2]}}
        for sku, qty in lines
    ]
    session = SessionService.open_session(channel.code)
    ModifyService.modify_session(session.session_key, channel.code, ops)
    order = Order.objects.get(ref=commit(session)["order_ref"])
    items = list(KitchenItem.objects.filter(order=order).select_related("item").order_by("id"))
    for item in items:  # each station cooks its item: queued → cooking → ready
        for status in ("queued", "cooking"):
            KitchenService.bump(item_ids=[item.pk], expected_status=status, actor="user:cook")
    bill = BillService.open(channel.code, order_ref=order.ref, actor=actor)
    if void_first:
        first = items[0].item
        bill = BillService.void_item(order.ref, first.line_id, reason="sent back", actor="user:boss", roles=MANAGER)
    if discount_q:
        bill = BillService.discount(bill.ref, expected_rev=bill.rev, amount_q=discount_q, reason="regular", actor="user:boss", roles=MANAGER)
    key = f"rk-{next(_keys)}"
    card = {"reference": f"AUTH-{key}", "brand": "visa"} if method == "card" else {}
    result = PaymentService.tender(bill.ref, method=method, tip_q=tip_q, expected_rev=bill.rev, idempotency_key=key, actor=actor, **card)
    bill = result.bill
    if refund_q:
        PaymentService.refund(result.payment.pk, amount_q=refund_q, reason="complaint", idempotency_key=f"rr-{next(_keys)}", actor="user:boss", roles=MANAGER)
    # Move every timestamp to the moment of the sale: ticket at T, ready at T + cook_minutes, paid at T + 30 min.
    moment = at(day, hour, minute)
    Order._base_manager.filter(pk=order.pk).update(created_at=moment, updated_at=moment)
    KitchenItem._base_manager.filter(order=order).update(created_at=moment)
    events = list(OrderEvent.objects.filter(order=order).order_by("id").values_list("pk", "type", "payload"))
    for pk, type_, payload in events:
        ready = type_ == "kitchen.bumped" and (payload or {}).get("to") == "ready"
        OrderEvent._base_manager.filter(pk=pk).update(created_at=moment + timedelta(minutes=cook_minutes if ready else 1))
    paid_at = moment + timedelta(minutes=30)
    Bill._base_manager.filter(pk=bill.pk).update(opened_at=moment, settled_at=paid_at)
    Payment._base_manager.filter(bill=bill).update(created_at=paid_at)
    Refund._base_manager.filter(payment__bill=bill).update(created_at=paid_at + timedelta(minutes=5))
    bill.refresh_from_db()
    if book is not None:
        book.bills += 1
        book.sales_q += bill.total_q - refund_q
        book.refunds_q += refund_q
        book.tips_q += tip_q
        book.discounts_q += discount_q
        book.by_method[method] += bill.total_q
        book.by_staff[actor] += bill.total_q
        book.by_hour[hour] += bill.total_q - refund_q
        for index, (sku, qty) in enumerate(lines):
            if void_first and index == 0:
                book.voids_q += qty * MENU[sku][1]
                continue
            book.by_sku_qty[sku] += qty
        for sku, _qty in lines:
            book.kitchen_seconds[MENU[sku][2]].append(cook_minutes * 60)
    return bill


def a_week(counter, tables, start: date, *, book: Book | None = None, per_day: int = 2) -> Book:
    """``per_day`` sales a day for 7 days from ``start``, with every kind of figure: tips, discounts, voids, refunds."""
    book = book if book is not None else Book()
    methods = ["cash", "card", "pix"]
    actors = ["user:ana", "user:bia"]
    n = 0
    for offset in range(7):
        day = start + timedelta(days=offset)
        for k in range(per_day):
            n += 1
            sell(
                tables if n % 2 else counter, day, 8 + (n % 12),
                lines=[("CAP", 1 + n % 2), ("BURG", 1), ("CRO", 1)] if n % 3 else [("ESP", 2), ("FRIES", 1)],
                method=methods[n % 3], actor=actors[n % 2], tip_q=100 * (n % 4 == 0), discount_q=200 * (n % 5 == 0),
                void_first=n % 7 == 0, refund_q=150 * (n % 6 == 0), cook_minutes=4 + n % 9, book=book, minute=k,
            )
    return book


def as_dict(book: Book) -> dict[str, Any]:
    return {key: (dict(value) if isinstance(value, defaultdict) else value) for key, value in book.__dict__.items()}
