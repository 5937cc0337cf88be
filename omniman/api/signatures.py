"""Signed deliveries: ``X-Omniman-Signature`` is the hex HMAC-SHA256 of the raw body under the channel's secret."""

from __future__ import annotations

import hashlib
import hmac

from rest_framework.exceptions import AuthenticationFailed

from omniman.models import Channel

HEADER = "X-Omniman-Signature"
META_KEY = "HTTP_X_OMNIMAN_SIGNATURE"
PREFIX = "sha256="


def channel_secret(channel: Channel) -> str:
    """``config["ingestion"]["signature_secret"]`` (empty: deliveries are not signed)."""
    ingestion = (channel.config or {}).get("ingestion") or {}
    secret = ingestion.get("signature_secret") if isinstance(ingestion, dict) else ""
    return secret if isinstance(secret, str) else ""


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(channel: Channel, body: bytes, header: str | None) -> None:
    """Raise ``AuthenticationFailed("invalid_signature")`` unless the body carries the channel's signature.

    A channel without a secret accepts unsigned deliveries. The header may be
    the bare hex digest or ``sha256=<hex>``; the comparison is constant-time.
    """
    secret = channel_secret(channel)
    if not secret:
        return
    given = (header or "").strip()
    if given.lower().startswith(PREFIX):
        given = given[len(PREFIX):]
    expected = sign(secret, body)
    if not given or not hmac.compare_digest(expected.encode(), given.lower().encode("utf-8", "replace")):
        raise AuthenticationFailed(
            f"Missing or wrong {HEADER}: the hex HMAC-SHA256 of the raw body with the channel's secret.",
            code="invalid_signature",
        )
