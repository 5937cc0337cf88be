"""``print.kitchen_ticket`` and ``print.receipt``: ESC/POS prints as directives (at least once, never dropped).

``print.kitchen_ticket`` payload: a post-commit ``{"order_ref", "channel_code",
"session_key"}``; with more than one printer to serve, it splits into one
directive per printer (``"printer": name``), each retried on its own.

``print.receipt`` payload: ``{"bill_ref"}`` (a bill's receipt; with
``"preview": true`` the bill before payment, "not a receipt") or
``{"order_ref"}`` (one order's bill, before any payment); optional
``"printer"`` (default ``receipt``).

A printer that does not answer raises ``printer_unreachable``: the engine
retries with backoff. On the last attempt (``DIRECTIVE_MAX_ATTEMPTS``) the job is
handed to a fresh directive of the same topic and payload (``"handover"``
counts them) that waits ``DIRECTIVE_BACKOFF_MAX_SECONDS``: the ticket stays
queued until the printer is back, instead of ending ``failed``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.utils import timezone, translation
from django.utils.translation import gettext as _

from omniman import conf, registry
from omniman.contrib.printing import KITCHEN, RECEIPT, STATION_PREFIX, channel_printers, printer_named, send_rows
from omniman.contrib.printing.exceptions import PrintingError
from omniman.formatting import format_qty, format_time
from omniman.models import Channel, Directive, Order
from omniman.receipts import Row, receipt_rows
from omniman.services import order_receipt
from omniman.texts import handle_label

logger = logging.getLogger("omniman.printing")

KITCHEN_TOPIC = "print.kitchen_ticket"
RECEIPT_TOPIC = "print.receipt"


def _handover(message: Directive, ctx: dict[str, Any], error: PrintingError) -> bool:
    """On the last attempt, queue the same job again (later) instead of failing; ``True`` if handed over."""
    if int(ctx.get("attempt") or 0) < int(ctx.get("max_attempts") or conf.get("DIRECTIVE_MAX_ATTEMPTS")):
        return False
    payload = dict(message.payload or {})
    payload["handover"] = int(payload.get("handover") or 0) + 1
    payload["last_error"] = f"[{error.code}] {error.message}"[:500]
    base = message.dedupe_key.split(":handover:")[0]
    dedupe = f"{base}:handover:{payload['handover']}" if base else ""
    delay = float(conf.get("DIRECTIVE_BACKOFF_MAX_SECONDS"))
    successor = Directive.objects.enqueue(
        message.topic, payload, dedupe_key=dedupe, available_at=timezone.now() + timedelta(seconds=delay)
    )
    logger.warning(
        "printer still unreachable: job handed over",
        extra={"directive": message.pk, "successor": successor.pk, "topic": message.topic, "error": error.code},
    )
    return True


def _print(message: Directive, ctx: dict[str, Any], printer, rows: list[Row]) -> None:
    try:
        send_rows(printer, rows)
    except PrintingError as error:
        if error.code == "printer_unreachable" and _handover(message, ctx, error):
            return
        raise


def station_of(item, stations: dict[str, str]) -> str:
    return str((item.meta or {}).get("station") or stations.get(item.sku, "") or "")


def _catalog_stations(items) -> dict[str, str]:
    """Kitchen station per SKU from the catalog, for items without one (one query; none without a catalog)."""
    skus = sorted({item.sku for item in items if not (item.meta or {}).get("station")})
    if not skus:
        return {}
    from omniman.contrib.catalog import get_catalog

    return {sku: entry.station for sku, entry in get_catalog().get_many(skus).items()}


def kitchen_targets(order: Order) -> dict[str, list]:
    """The order's items by printer name: its station's printer, else the ``kitchen`` printer."""
    printers = channel_printers(order.channel.config)
    items = list(order.items.all())
    stations = _catalog_stations(items)
    targets: dict[str, list] = {}
    for item in items:
        station = station_of(item, stations)
        name = STATION_PREFIX + station if station and STATION_PREFIX + station in printers else KITCHEN
        if name in printers:
            targets.setdefault(name, []).append(item)
    return targets


def kitchen_rows(order: Order, items: list, *, printer_name: str, ticket: int | None = None) -> list[Row]:
    """A kitchen ticket: where it goes, who it is for, when; then each item large."""
    channel = order.channel
    with translation.override(channel.language):
        station = printer_name[len(STATION_PREFIX) :] if printer_name.startswith(STATION_PREFIX) else _("Kitchen")
        rows = [Row(station.upper(), align="center", bold=True, large=True)]
        if order.handle_ref and order.flow.is_table(order.handle_type):
            rows.append(Row(f"{handle_label(order.handle_type)} {order.handle_ref}", align="center", bold=True, large=True))
        elif order.handle_ref:
            rows.append(Row(order.handle_ref, align="center", bold=True))
        if ticket:
            rows.append(Row(f"#{ticket}", align="center", bold=True, large=True))
        rows.append(Row(f"{order.ref} · {format_time(order.created_at, time_zone=channel.time_zone)}", align="center"))
        rows.append(Row(channel.name or channel.code, align="center"))
        rows.append(Row(rule=True))
        for item in items:
            rows.append(Row(f"{format_qty(item.qty)} × {item.name or item.sku}", bold=True, large=True))
            note = (item.meta or {}).get("note")
            if note:
                rows.append(Row(f"  {note}"))
        rows.append(Row(rule=True))
    return rows


class KitchenTicketHandler:
    topic = KITCHEN_TOPIC

    def handle(self, *, message: Directive, ctx: dict[str, Any]) -> None:
        payload = dict(message.payload or {})
        order_ref = payload.get("order_ref") or ""
        order = Order.objects.select_related("channel").prefetch_related("items").filter(ref=order_ref).first()
        if order is None:
            raise PrintingError("order_not_found", f"No order {order_ref!r}.", {"order_ref": order_ref})
        targets = kitchen_targets(order)
        if "printer" in payload:
            name = str(payload["printer"])
            printer_named(order.channel.config, name)  # printer_not_configured if it was removed since
            targets = {name: targets.get(name, [])}
        elif len(targets) > 1:
            for name in sorted(targets):
                Directive.objects.enqueue(
                    KITCHEN_TOPIC, {**payload, "printer": name}, dedupe_key=f"{order.ref}:{KITCHEN_TOPIC}:{name}"
                )
            return
        if not targets:
            logger.info("no kitchen printer for this order", extra={"order_ref": order.ref})
            return
        ticket = registry.tickets_for([order.ref]).get(order.ref)
        for name, items in targets.items():
            if items:
                printer = printer_named(order.channel.config, name)
                _print(message, ctx, printer, kitchen_rows(order, items, printer_name=name, ticket=ticket))


class ReceiptHandler:
    topic = RECEIPT_TOPIC

    def handle(self, *, message: Directive, ctx: dict[str, Any]) -> None:
        payload = dict(message.payload or {})
        if payload.get("bill_ref"):
            from omniman.services import receipt_data

            receipt = receipt_data(str(payload["bill_ref"]), preview=bool(payload.get("preview")))
        elif payload.get("order_ref"):
            receipt = order_receipt(str(payload["order_ref"]))
        else:
            raise PrintingError("bill_not_found", "print.receipt needs a bill_ref or an order_ref.", {})
        config = Channel.objects.filter(code=receipt.channel_code).values_list("config", flat=True).first()
        printer = printer_named(config, str(payload.get("printer") or RECEIPT))
        _print(message, ctx, printer, receipt_rows(receipt))


HANDLERS = (KitchenTicketHandler, ReceiptHandler)
