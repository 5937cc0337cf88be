"""The built-in notification backends: console, email (Django's mail), signed webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from django.core.mail import EmailMessage, send_mail
from django.utils import translation
from django.utils.translation import gettext

from omniman import conf
from omniman.contrib.notifications.exceptions import NotificationError
from omniman.formatting import format_money, format_qty
from omniman.models import Order
from omniman.receipts import receipt_pdf, receipt_text
from omniman.services import receipt_data

logger = logging.getLogger("omniman.notifications")

SIGNATURE_HEADER = "X-Omniman-Signature"
DEFAULT_WEBHOOK_TIMEOUT = 10.0


def order_message(*, event: str, order: Order, payload: dict[str, Any]) -> dict[str, Any]:
    """What every backend tells: the event and the order as it is now (JSON-able)."""
    data = (order.snapshot or {}).get("data") or {}
    message: dict[str, Any] = {
        "event": event,
        "delivery_id": payload.get("delivery_id", ""),
        "order": {
            "ref": order.ref,
            "channel": order.channel.code,
            "status": order.status,
            "total_q": order.total_q,
            "currency": order.currency,
            "created_at": order.created_at.isoformat() if order.created_at else None,
            "handle_type": order.handle_type,
            "handle_ref": order.handle_ref,
            "external_ref": order.external_ref,
            "customer": data.get("customer") or {},
            "items": [
                {
                    "sku": item.get("sku"),
                    "name": item.get("name", ""),
                    "qty": str(item.get("qty")),
                    "unit_price_q": item.get("unit_price_q"),
                    "line_total_q": item.get("line_total_q"),
                }
                for item in (order.snapshot or {}).get("items") or []
            ],
        },
    }
    if "to" in payload:
        message["transition"] = {"from": payload.get("from"), "to": payload.get("to")}
    return message


def _text(message: dict[str, Any], order: Order) -> str:
    """The email body, in the channel's language (``config["language"]``, else ``LANGUAGE_CODE``)."""
    channel = order.channel
    with translation.override(channel.language):
        lines = [
            f"{channel.term('order')} {order.ref} — {channel.term(order.status)}",
            f"{message['event']} · {channel.name or channel.code}",
            "",
        ]
        for item in message["order"]["items"]:
            lines.append(f"{format_qty(item['qty'])} × {item['name'] or item['sku']}")
        lines += ["", gettext("Total: %(total)s") % {"total": format_money(order.total_q, order.currency)}]
    return "\n".join(lines)


class ConsoleBackend:
    """Prints one line per notification to stdout (and logs it): for development."""

    def send(self, *, event, order, payload, config):
        line = f"[omniman] {event} {order.ref} {order.status} total_q={order.total_q}"
        stream = sys.stdout
        stream.write(line + "\n")
        stream.flush()
        logger.info("notification", extra={"event": event, "order_ref": order.ref, "backend": "console"})
        return {"printed": line}


class EmailBackend:
    """``django.core.mail.send_mail`` to ``config["to"]`` (a list), else the order's
    ``data.customer.email``; ``config["from"]`` defaults to ``DEFAULT_FROM_EMAIL``.

    No recipient at all is not an error: the delivery is recorded as skipped.
    """

    def send(self, *, event, order, payload, config):
        if payload.get("bill_ref"):
            return self.send_receipt(bill_ref=str(payload["bill_ref"]), config=config)
        recipients = config.get("to") or []
        if isinstance(recipients, str):
            recipients = [recipients]
        if not recipients:
            customer = ((order.snapshot or {}).get("data") or {}).get("customer") or {}
            email = customer.get("email") if isinstance(customer, dict) else None
            recipients = [email] if email else []
        if not recipients:
            return {"skipped": "no recipient"}
        message = order_message(event=event, order=order, payload=payload)
        with translation.override(order.channel.language):
            subject = config.get("subject") or f"{order.channel.term('order')} {order.ref}: {order.channel.term(order.status)}"
        sent = send_mail(subject, _text(message, order), config.get("from") or None, list(recipients), fail_silently=False)
        return {"to": list(recipients), "sent": sent}

    def send_receipt(self, *, bill_ref, config):
        """A settled bill's receipt to its customer's address (never to ``config["to"]``, the shop's own
        inbox): the receipt as text in the body, its PDF attached. No address: skipped."""
        receipt = receipt_data(bill_ref)
        if not receipt.customer_email:
            return {"skipped": "no recipient"}
        with translation.override(receipt.language):
            subject = gettext("Your receipt from %(merchant)s (%(ref)s)") % {"merchant": receipt.merchant, "ref": receipt.ref}
        paper = int(config.get("paper") or 80)
        mail = EmailMessage(subject, receipt_text(receipt, paper=paper), config.get("from") or None, [receipt.customer_email])
        mail.attach(f"receipt-{receipt.ref}.pdf", receipt_pdf(receipt, paper=paper), "application/pdf")
        sent = mail.send(fail_silently=False)
        return {"to": [receipt.customer_email], "sent": sent, "bill_ref": receipt.ref, "kind": receipt.kind}


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook answers 2xx or it failed: a redirect is not followed (it would turn the POST into a GET)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_RefuseRedirects)


def sign(body: bytes, secret: str) -> str:
    """The ``X-Omniman-Signature`` value: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookBackend:
    """POSTs the order message as JSON to ``config["url"]``, signed with HMAC-SHA256.

    ``config``: ``url`` (http or https), ``secret`` (or ``secret_env``: the
    name of an environment variable holding it), optional ``timeout``
    seconds (default ``OMNIMAN["NOTIFICATION_WEBHOOK_TIMEOUT"]``, 10).
    Anything but a 2xx answer, or no answer, raises: the directive retries.
    """

    def send(self, *, event, order, payload, config):
        url = config.get("url")
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise NotificationError("invalid_config", "A webhook needs an http(s) url.", {"url": url})
        secret = config.get("secret")
        if not secret and config.get("secret_env"):
            secret = os.environ.get(str(config["secret_env"]))
        if not isinstance(secret, str) or not secret:
            raise NotificationError("invalid_config", "A webhook needs a secret to sign its body.", {"url": url})
        timeout = float(config.get("timeout") or conf.get("NOTIFICATION_WEBHOOK_TIMEOUT", DEFAULT_WEBHOOK_TIMEOUT))
        body = json.dumps(
            order_message(event=event, order=order, payload=payload), sort_keys=True, separators=(",", ":"), default=str
        ).encode()
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Omniman-Webhook/1",
                "X-Omniman-Event": event,
                "X-Omniman-Delivery": str(payload.get("delivery_id", "")),
                SIGNATURE_HEADER: sign(body, secret),
            },
        )
        try:
            with _opener.open(request, timeout=timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise NotificationError(
                "webhook_failed", f"The webhook {url} answered HTTP {exc.code}.", {"url": url, "status": exc.code}
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NotificationError(
                "webhook_unreachable", f"The webhook {url} could not be reached: {reason}.", {"url": url}
            ) from None
        if not 200 <= status < 300:
            raise NotificationError("webhook_failed", f"The webhook {url} answered HTTP {status}.", {"url": url, "status": status})
        return {"url": url, "status": status}


__all__ = ["ConsoleBackend", "EmailBackend", "WebhookBackend", "order_message", "sign", "SIGNATURE_HEADER"]
