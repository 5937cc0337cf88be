"""Pix "copia e cola": the BR Code payload (EMV® QRCPS merchant-presented mode) and its QR code.

A payload is a run of TLV fields (two-digit id, two-digit length, value),
ending with field ``63``: a CRC16-CCITT (polynomial 0x1021, initial value
0xFFFF, no reflection, no final XOR) over the whole payload up to and
including ``6304``, in four upper-case hex digits. The fields written
(Banco Central do Brasil, *Manual de Padrões para Iniciação do Pix*)::

    00 "01"                          payload format indicator
    26 00 "br.gov.bcb.pix"           merchant account: the Pix GUI,
       01 <key>                      the receiver's Pix key,
       02 <description>              an optional note (only when given)
    52 "0000"                        merchant category code
    53 "986"                         currency (BRL, ISO 4217 numeric)
    54 "12.50"                       amount (only when given)
    58 "BR"                          country
    59 <merchant name>               at most 25 characters (ASCII)
    60 <merchant city>               at most 15 characters (ASCII)
    62 05 <txid>                     the transaction id ("***": none), at most 25 letters/digits
    63 <CRC16>

The QR is drawn locally with ``segno`` as inline SVG (no external service).
Pure functions: no models, no settings; the POS asks :func:`brcode_for` with a
channel's ``config``.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from django.utils.translation import gettext as _

from omniman.exceptions import ValidationError

GUI = "br.gov.bcb.pix"
CURRENCY_BRL = "986"
MAX_NAME = 25
MAX_CITY = 15
MAX_TXID = 25
MAX_KEY = 77
NO_TXID = "***"

# Error codes (ValidationError: 400, or 422 on a form).
PIX_NOT_CONFIGURED = "pix_not_configured"
INVALID_PIX = "invalid_pix"


def crc16(data: str | bytes) -> str:
    """CRC16-CCITT-FALSE (0x1021, init 0xFFFF) of ``data`` as four upper-case hex digits ("123456789" → "29B1")."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    crc = 0xFFFF
    for byte in raw:
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return f"{crc:04X}"


def tlv(field_id: str, value: str) -> str:
    """One EMV field: id, two-digit length, value (at most 99 characters)."""
    if len(value) > 99:
        raise ValidationError(INVALID_PIX, _("A Pix field is longer than 99 characters."), {"field": field_id})
    return f"{field_id}{len(value):02d}{value}"


def ascii_text(text: str, limit: int) -> str:
    """``text`` without accents or characters outside printable ASCII, trimmed to ``limit`` characters."""
    plain = unicodedata.normalize("NFKD", str(text or "")).encode("ascii", "ignore").decode("ascii")
    plain = re.sub(r"[^\x20-\x7e]", "", plain)
    return " ".join(plain.split())[:limit].strip()


def clean_txid(txid: str) -> str:
    """The transaction id as Pix accepts it (letters and digits, at most 25), or ``***`` for none."""
    cleaned = re.sub(r"[^A-Za-z0-9]", "", str(txid or ""))[:MAX_TXID]
    return cleaned or NO_TXID


def amount_text(amount_q: int) -> str:
    """Cents as the payload writes them: ``1250`` → ``"12.50"``."""
    if isinstance(amount_q, bool) or not isinstance(amount_q, int) or amount_q <= 0:
        raise ValidationError(INVALID_PIX, _("A Pix amount must be a positive whole number of cents."), {"amount_q": amount_q})
    return f"{amount_q // 100}.{amount_q % 100:02d}"


def brcode(
    *,
    key: str,
    merchant_name: str,
    merchant_city: str,
    amount_q: int | None = None,
    txid: str = "",
    description: str = "",
) -> str:
    """The BR Code payload ("copia e cola") for a payment of ``amount_q`` cents (BRL) to ``key``.

    ``amount_q=None`` leaves the amount to the payer. Name and city are written
    in ASCII and cut to the standard's limits; ``txid`` keeps its letters and
    digits (``***`` when empty). Refuses (``invalid_pix``) an empty key, name or
    city, a key longer than 77 characters, a non-positive amount.
    """
    key = str(key or "").strip()
    name = ascii_text(merchant_name, MAX_NAME)
    city = ascii_text(merchant_city, MAX_CITY)
    if not key or len(key) > MAX_KEY:
        raise ValidationError(INVALID_PIX, _("The Pix key must have 1 to 77 characters."), {"key": key})
    if not name or not city:
        raise ValidationError(INVALID_PIX, _("A Pix code needs the merchant's name and city."), {})
    account = tlv("00", GUI) + tlv("01", key)
    note = ascii_text(description, 99 - len(account) - 4)
    if note:
        account += tlv("02", note)
    payload = (
        tlv("00", "01")
        + tlv("26", account)
        + tlv("52", "0000")
        + tlv("53", CURRENCY_BRL)
        + (tlv("54", amount_text(amount_q)) if amount_q is not None else "")
        + tlv("58", "BR")
        + tlv("59", name)
        + tlv("60", city)
        + tlv("62", tlv("05", clean_txid(txid)))
        + "6304"
    )
    return payload + crc16(payload)


def parse(payload: str) -> dict[str, Any]:
    """The fields of a BR Code payload by id (templates 26 and 62 as dicts of their own), its CRC checked.

    Raises ``invalid_pix`` for a payload that does not parse or whose CRC is wrong.
    """

    def fields(text: str) -> dict[str, str]:
        out: dict[str, str] = {}
        at = 0
        while at < len(text):
            head = text[at : at + 4]
            if len(head) < 4 or not head.isdigit():
                raise ValidationError(INVALID_PIX, _("This is not a Pix code."), {"at": at})
            size = int(head[2:])
            value = text[at + 4 : at + 4 + size]
            if len(value) != size:
                raise ValidationError(INVALID_PIX, _("This is not a Pix code."), {"at": at})
            out[head[:2]] = value
            at += 4 + size
        return out

    payload = str(payload or "")
    if len(payload) < 8 or payload[-8:-4] != "6304" or crc16(payload[:-4]) != payload[-4:].upper():
        raise ValidationError(INVALID_PIX, _("The Pix code's checksum is wrong."), {})
    parsed: dict[str, Any] = dict(fields(payload))
    for template in ("26", "62"):
        if template in parsed:
            parsed[template] = fields(parsed[template])
    return parsed


def pix_settings(config: dict[str, Any] | None) -> dict[str, str]:
    """A channel's Pix receiver, ``config["payments"]["pix"]`` (``key``, ``merchant_name``, ``merchant_city``).

    Raises ``pix_not_configured`` when the channel has no Pix key.
    """
    payments = (config or {}).get("payments") or {}
    pix = payments.get("pix") if isinstance(payments, dict) else None
    if not isinstance(pix, dict) or not str(pix.get("key") or "").strip():
        raise ValidationError(PIX_NOT_CONFIGURED, _("This channel has no Pix key configured."), {})
    return {
        "key": str(pix["key"]).strip(),
        "merchant_name": str(pix.get("merchant_name") or ""),
        "merchant_city": str(pix.get("merchant_city") or ""),
    }


def brcode_for(config: dict[str, Any] | None, *, amount_q: int | None, txid: str = "", description: str = "") -> str:
    """The BR Code for a payment to the channel whose ``config`` is given (see :func:`pix_settings`)."""
    return brcode(**pix_settings(config), amount_q=amount_q, txid=txid, description=description)


def qr_svg(payload: str, *, scale: int = 4, border: int = 2, title: str = "") -> str:
    """The payload's QR code as an inline ``<svg>`` element (segno; error correction M, no XML declaration)."""
    import segno

    code = segno.make_qr(payload, error="m")
    return code.svg_inline(scale=scale, border=border, title=title or None, dark="#000", light="#fff")


__all__ = [
    "GUI",
    "INVALID_PIX",
    "PIX_NOT_CONFIGURED",
    "amount_text",
    "ascii_text",
    "brcode",
    "brcode_for",
    "clean_txid",
    "crc16",
    "parse",
    "pix_settings",
    "qr_svg",
    "tlv",
]
