"""The receipt selectors: a bill's (or one order's) :class:`omniman.receipts.Receipt`, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from omniman import pix, registry
from omniman.exceptions import OmnimanError, ValidationError
from omniman.models import Channel, Order
from omniman.receipts import PREVIEW, RECEIPT, Receipt, ReceiptAdjustment, ReceiptLine, ReceiptPayment, ReceiptRefund
from omniman.texts import handle_label

from omniman.services.billing import _bill_orders
from omniman.texts import modifiers_text


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
                modifiers=modifiers_text(meta),
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


def receipt_settings(channel: Channel) -> dict[str, Any]:
    """``config["receipt"]``: ``merchant`` (the name on top; default the channel's name), ``header`` and
    ``footer`` lines (a string or a list of strings)."""
    config = (channel.config or {}).get("receipt") or {}
    merchant = config.get("merchant") if isinstance(config, dict) else None
    out: dict[str, Any] = {"merchant": str(merchant).strip() if isinstance(merchant, str) and merchant.strip() else (channel.name or channel.code)}
    for key in ("header", "footer"):
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, str):
            value = value.splitlines()
        out[key] = tuple(str(text) for text in (value or []) if str(text).strip())
    return out


def pix_for(channel: Channel, due_q: int, currency: str, txid: str) -> str:
    """The Pix code for what a bill preview says is due: only in BRL, with ``pix`` among the channel's
    methods and a key set; ``""`` otherwise."""
    methods = ((channel.config or {}).get("payments") or {}).get("methods") or []
    if due_q <= 0 or currency != "BRL" or "pix" not in methods:
        return ""
    try:
        return pix.brcode_for(channel.config, amount_q=due_q, txid=txid)
    except ValidationError:
        return ""


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
        merchant=settings["merchant"],
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
        pix_payload=pix_for(channel, order.total_q, order.currency, order.ref),
    )


def _merged(adjustments: Iterable[ReceiptAdjustment]) -> list[ReceiptAdjustment]:
    """Adjustments alike (kind, label, percent, reason) as one row: a table's rounds each carry the
    service charge; the receipt shows one "Service charge 10%"."""
    merged: dict[tuple, ReceiptAdjustment] = {}
    for adjustment in adjustments:
        key = (adjustment.kind, adjustment.label, adjustment.percent, adjustment.reason)
        seen = merged.get(key)
        merged[key] = adjustment if seen is None else ReceiptAdjustment(
            kind=seen.kind, label=seen.label, amount_q=seen.amount_q + adjustment.amount_q, percent=seen.percent, reason=seen.reason
        )
    return [adjustment for adjustment in merged.values() if adjustment.amount_q]


def receipt_data(bill_ref: str, *, preview: bool = False) -> Receipt:
    """A bill's receipt: its orders' items (by round), their and the bill's adjustments, the payments
    (method, brand, authorization, tendered, tip, change), refunds, order refs and pickup numbers.

    An open bill — or ``preview=True`` — gives the bill before payment (``kind="preview"``, "not a
    receipt"). A fixed number of queries, however many orders and payments. ``not_found`` for an
    unknown bill.
    """
    from omniman.models import Bill, Payment, Refund

    bill = Bill.objects.select_related("channel").filter(ref=bill_ref).first()
    if bill is None:
        raise OmnimanError("not_found", context={"bill_ref": bill_ref})
    channel = bill.channel
    orders = _bill_orders(bill)  # not the cancelled ones: what the bill's total counts
    payments = list(Payment.objects.filter(bill=bill).order_by("created_at", "id"))
    refunds = list(Refund.objects.filter(payment__bill=bill).select_related("payment").order_by("created_at", "id"))
    tickets = registry.tickets_for([order.ref for order in orders])
    numbers = tuple(tickets[order.ref] for order in orders if order.ref in tickets)
    lines = [line for order in orders for line in _lines(order)]
    adjustments = [adjustment for order in orders for adjustment in order_adjustments(order)]
    adjustments += [_adjustment(raw) for raw in bill.adjustments or []]
    paid_q = sum(payment.amount_q for payment in payments)
    customer = customer_of(orders)
    settings = receipt_settings(channel)
    settled = bill.status != Bill.Status.OPEN
    due_q = max(bill.total_q - paid_q, 0) if not settled else 0
    kind = PREVIEW if preview or not settled else RECEIPT
    return Receipt(
        ref=bill.ref,
        kind=kind,
        merchant=settings["merchant"],
        channel_code=channel.code,
        currency=bill.currency,
        issued_at=bill.settled_at if settled and bill.settled_at else timezone.now(),
        language=channel.language,
        time_zone=channel.time_zone,
        status=bill.status,
        handle_label=label_for(channel, bill.handle_type, bill.handle_ref, numbers),
        order_refs=tuple(order.ref for order in orders),
        tickets=numbers,
        lines=tuple(lines),
        adjustments=tuple(_merged(adjustments)),
        payments=tuple(
            ReceiptPayment(
                method=payment.method,
                amount_q=payment.amount_q,
                tip_q=payment.tip_q,
                tendered_q=payment.tendered_q,
                change_q=payment.change_q,
                brand=payment.brand[:1].upper() + payment.brand[1:],  # "mastercard" → "Mastercard"
                reference=payment.reference,
                at=payment.created_at,
            )
            for payment in payments
        ),
        refunds=tuple(
            ReceiptRefund(amount_q=refund.amount_q, reason=refund.reason, method=refund.payment.method, at=refund.created_at)
            for refund in refunds
        ),
        items_q=sum(line.total_q for line in lines),
        total_q=bill.total_q,
        paid_q=paid_q,
        due_q=due_q,
        tips_q=sum(payment.tip_q for payment in payments),
        change_q=sum(payment.change_q for payment in payments),
        customer_name=customer["name"],
        customer_email=customer["email"],
        header=settings["header"],
        footer=settings["footer"],
        pix_payload=pix_for(channel, due_q, bill.currency, bill.ref) if kind == PREVIEW else "",
    )


__all__ = ["receipt_data", "order_receipt", "order_adjustments", "customer_of", "receipt_settings", "label_for"]
