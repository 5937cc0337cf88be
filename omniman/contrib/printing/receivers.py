"""When a bill settles, its receipt is queued for the channel's receipt printer (if it has one)."""

from __future__ import annotations

import logging

from omniman.contrib.printing import RECEIPT, channel_printers
from omniman.contrib.printing.exceptions import PrintingError
from omniman.contrib.printing.handlers import RECEIPT_TOPIC
from omniman.models import Directive

logger = logging.getLogger("omniman.printing")


def queue_receipt(sender, *, bill, **kwargs) -> None:
    """``bill_settled``: enqueue ``print.receipt`` (in the settle's transaction) when a receipt printer is configured."""
    try:
        printers = channel_printers(bill.channel.config)
    except PrintingError as error:
        logger.warning("receipt not printed: bad printers config", extra={"bill_ref": bill.ref, "error": error.message})
        return
    if RECEIPT in printers:
        Directive.objects.enqueue(RECEIPT_TOPIC, {"bill_ref": bill.ref}, dedupe_key=f"{bill.ref}:{RECEIPT_TOPIC}")
