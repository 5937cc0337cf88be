"""When a bill settles and its customer gave an email address, the receipt is queued for each email backend."""

from __future__ import annotations

import hashlib
import logging

from omniman.contrib.notifications.handlers import TOPIC
from omniman.models import Directive, Order
from omniman.services import customer_of

logger = logging.getLogger("omniman.notifications")

RECEIPT_EVENT = "bill.receipt"


def queue_receipt_email(sender, *, bill, orders=None, **kwargs) -> None:
    """``bill_settled``: one ``notification.send`` per email backend of the channel (``event`` ``bill.receipt``),
    in the settle's transaction, when an order of the bill has ``data.customer.email``."""
    orders = list(orders) if orders is not None else list(Order.objects.filter(bill=bill).order_by("created_at", "id"))
    if not orders or not customer_of(orders)["email"]:
        return
    config = (bill.channel.config or {}).get("notifications") or {}
    specs = config.get("backends") if isinstance(config, dict) else None
    if not isinstance(specs, list):
        return
    occurrence = f"bill:{bill.ref}"
    short = hashlib.sha256(occurrence.encode()).hexdigest()[:16]
    for index, spec in enumerate(specs):
        if isinstance(spec, dict) and spec.get("backend") == "email":
            Directive.objects.enqueue(
                TOPIC,
                {"order_ref": orders[0].ref, "bill_ref": bill.ref, "event": RECEIPT_EVENT, "occurrence": occurrence, "backend": index},
                dedupe_key=f"{orders[0].ref}:{TOPIC}:{short}:{index}",
            )
