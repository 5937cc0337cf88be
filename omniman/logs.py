"""Log formatters: JSON lines for production (``LOG_FORMAT=json``), plain text otherwise.

Both redact what must never reach a log: values under sensitive keys
(passwords, tokens, secrets, cookies, ``Authorization``, card data) at any
depth of a record's extra fields, card numbers (13–19 digits that pass the
Luhn check) and bearer tokens anywhere in a message or a value. The kernel's
services log with ``extra={"session_key", "order_ref", "channel", "actor"}``;
:class:`JSONFormatter` writes every extra field as a key of its own.

Standard library only: this module is loaded while logging is configured,
before Django's apps are.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

REDACTED = "[REDACTED]"

# Any key containing one of these is sensitive ("accessToken", "db_password", "X-CSRFToken").
SENSITIVE_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "csrf",
    "signature",
    "credential",
    "cardnumber",
    "card_number",
    "private",
    "apikey",
    "api_key",
    "sessionid",
)
# Short words are sensitive only as a whole word of the key ("card", "card_cvv", not "discard").
SENSITIVE_WORDS = frozenset({"auth", "card", "pan", "cvv", "cvc", "cvv2", "pin", "pwd", "iban", "expiry", "exp_month", "exp_year"})

CARD_NUMBER = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
BEARER = re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}")

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def is_sensitive_key(key: Any) -> bool:
    name = str(key).lower()
    if any(part in name for part in SENSITIVE_PARTS):
        return True
    return any(word in SENSITIVE_WORDS for word in re.split(r"[^a-z0-9]+", name))


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def redact_text(text: str) -> str:
    """``text`` with card numbers and bearer/basic credentials replaced."""

    def card(match: re.Match) -> str:
        digits = re.sub(r"\D", "", match.group())
        return REDACTED if _luhn(digits) else match.group()

    text = CARD_NUMBER.sub(card, text)
    return BEARER.sub(lambda match: f"{match.group(1)} {REDACTED}", text)


def redact(value: Any, key: Any = None) -> Any:
    """A JSON-ready copy of ``value`` with everything sensitive replaced by ``[REDACTED]``."""
    if key is not None and is_sensitive_key(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): redact(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "method") and hasattr(value, "path"):  # an HttpRequest: never its query string or headers
        return f"{value.method} {value.path}"
    return redact_text(str(value))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a ``logger.info(..., extra={...})`` call put on the record."""
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES and not key.startswith("_")}


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        for key, value in extra_fields(record).items():
            if key not in entry:
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exception"] = redact_text(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """The usual one-line text format, with card numbers and bearer tokens redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
