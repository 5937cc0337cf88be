"""Errors of the printing app (codes documented in docs/operator/printing.rst)."""

from __future__ import annotations

from omniman.exceptions import OmnimanError


class PrintingError(OmnimanError):
    """Codes: ``printer_unreachable`` (no answer at the printer's address: the directive retries),
    ``printer_not_configured`` (the channel names no such printer), ``invalid_printer_config``,
    ``printer_driver_missing`` (python-escpos is not installed: ``pip install django-omniman[printing]``),
    ``order_not_found``, ``bill_not_found``."""


__all__ = ["PrintingError"]
