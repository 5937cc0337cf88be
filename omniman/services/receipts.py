"""The receipt selectors: a bill's (or one order's) :class:`omniman.receipts.Receipt`, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from omniman import registry
from omniman.exceptions import OmnimanError
from omniman.models import Channel, Order
from omniman.receipts import PREVIEW, Receipt, ReceiptAdjustment, ReceiptLine
from omniman.texts import handle_label


def _lines(order: Order) -> list[ReceiptLine]:
    lines = []
    for item in (order.snapshot or {}).get("items") or []:
        meta = item.get("meta") or {}
        lines.append(
            ReceiptLine(
                name=str(item.get("name") or item.get("sku") or ""),
                qty=str(item.get("qty")),
                unit_price_q=int(item.get("unit_price_q") or 0),
                total_q=int(item.get("line_total_q") or 0),
                order_ref=order.ref,
                line_id=str(item.get("line_id") or ""),
                note=str(meta.get("note") or ""),
            )
        )
    return lines


def _adjustment(raw: dict[str, Any]) -> ReceiptAdjustment:
    return ReceiptAdjustment(
        kind=str(raw.get("kind") or ""),
        label=str(raw.get("label") or ""),
        amount_q=int(raw.get("amount_q") or 0),
        percent=(str(raw["percent"]) if raw.get("percent") not in (None, "") else None),
        reason=str(raw.get("reason") or ""),
    )


def order_adjustments(order: Order) -> list[ReceiptAdjustment]:
    """An order's adjustments: its snapshot's ``adjustments`` (service charge, discounts), else the
    service charge of old orders' stored totals (``data.totals``)."""
    snapshot = order.snapshot or {}
    if "adjustments" in snapshot:
        return [_adjustment(raw) for raw in snapshot.get("adjustments") or [] if int(raw.get("amount_q") or 0)]
    totals = order.totals
    found = []
    if int(totals.get("discount_q") or 0):
        found.append(ReceiptAdjustment(kind="discount", label="", amount_q=-int(totals["discount_q"])))
    if int(totals.get("service_q") or 0):
        found.append(
            ReceiptAdjustment(
                kind="service_charge", label="", amount_q=int(totals["service_q"]), percent=str(totals.get("service_percent") or "") or None
            )
        )
    return found


def customer_of(orders: Iterable[Order]) -> dict[str, str]:
    """The first customer (name, email) the orders' snapshots carry (``data.customer``)."""
    for order in orders:
        customer = ((order.snapshot or {}).get("data") or {}).get("customer") or {}
        if isinstance(customer, dict) and (customer.get("email") or customer.get("name")):
            return {"name": str(customer.get("name") or ""), "email": str(customer.get("email") or "")}
    return {"name": "", "email": ""}


def receipt_settings(channel: Channel) -> dict[str, tuple[str, ...]]:
    """``config["receipt"]``: ``header`` and ``footer`` lines (a string or a list of strings)."""
    config = (channel.config or {}).get("receipt") or {}
    out = {}
    for key in ("header", "footer"):
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, str):
            value = value.splitlines()
        out[key] = tuple(str(text) for text in (value or []) if str(text).strip())
    return out


def label_for(channel: Channel, handle_type: str, handle_ref: str, tickets: Iterable[int] = ()) -> str:
    """How the receipt names who pays: the table ("Table 4"), else the pickup number, else the handle."""
    if handle_ref and channel.order_flow.is_table(handle_type):
        return f"{handle_label(handle_type)} {handle_ref}"
    tickets = list(tickets)
    if tickets:
        return ""  # the pickup number has a row of its own
    return handle_ref


def order_receipt(order_ref: str) -> Receipt:
    """One order's bill before (or without) a bill row: its items and adjustments, nothing paid — a
    preview, "not a receipt" (2 queries, 1 more with a ticket source).

    Raises ``not_found`` for an unknown order.
    """
    order = Order.objects.select_related("channel").filter(ref=order_ref).first()
    if order is None:
        raise OmnimanError("not_found", context={"order_ref": order_ref})
    channel = order.channel
    tickets = registry.tickets_for([order.ref])
    numbers = tuple(tickets[ref] for ref in [order.ref] if ref in tickets)
    lines = _lines(order)
    items_q = sum(line.total_q for line in lines)
    customer = customer_of([order])
    settings = receipt_settings(channel)
    return Receipt(
        ref=order.ref,
        kind=PREVIEW,
        merchant=channel.name or channel.code,
        channel_code=channel.code,
        currency=order.currency,
        issued_at=timezone.now(),
        language=channel.language,
        time_zone=channel.time_zone,
        status=order.status,
        handle_label=label_for(channel, order.handle_type, order.handle_ref, numbers),
        order_refs=(order.ref,),
        tickets=numbers,
        lines=tuple(lines),
        adjustments=tuple(order_adjustments(order)),
        items_q=items_q,
        total_q=order.total_q,
        due_q=order.total_q,
        customer_name=customer["name"],
        customer_email=customer["email"],
        header=settings["header"],
        footer=settings["footer"],
    )


__all__ = ["order_receipt", "order_adjustments", "customer_of", "receipt_settings", "label_for"]
