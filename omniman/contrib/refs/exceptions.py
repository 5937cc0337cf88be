"""Errors of the refs app (codes documented in docs/contrib/refs.rst)."""

from __future__ import annotations

from omniman.exceptions import OmnimanError


class RefError(OmnimanError):
    """Codes: ``invalid_ref`` (empty or too long scope/key, nothing to bind to),
    ``ref_taken`` (the key points somewhere else), ``reserved_scope`` (tables
    and pickup tickets are managed by Omniman, not bound by hand),
    ``order_not_found``."""


__all__ = ["RefError"]
