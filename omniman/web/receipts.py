"""The receipt of a bill: HTML to print (``@media print``, 58 or 80 mm) and a PDF download.

``pos:receipt`` (``<channel>/bills/<ref>/receipt/``) and ``pos:receipt_pdf``
(``…/receipt.pdf``) render the selector ``receipt_data(bill_ref)``; an open
bill (or ``?preview=1``) is the bill before payment — the "conta" — marked
"not a receipt", with the channel's Pix QR for what is due when Pix is set up.
``?paper=58|80`` picks the roll (default: the channel's receipt printer's, else 80).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from omniman import pix
from omniman.exceptions import GONE_CODES, OmnimanError
from omniman.formatting import format_datetime
from omniman.receipts import PAPERS, Receipt, adjustment_label, method_label, receipt_pdf
from omniman.roles import MANAGER, POS
from omniman.services import receipt_data
from omniman.web import selectors
from omniman.web.roles import role_required

pos_required = role_required(POS, MANAGER)


def _paper(request, channel) -> int:
    """``?paper=58|80``, else the channel's receipt printer's paper, else 80."""
    asked = request.GET.get("paper", "")
    if asked.isdigit() and int(asked) in PAPERS:
        return int(asked)
    printer = ((channel.config or {}).get("printers") or {}).get("receipt")
    if isinstance(printer, dict) and str(printer.get("paper", "")).isdigit() and int(printer["paper"]) in PAPERS:
        return int(printer["paper"])
    return 80


def _receipt(request, channel_code: str, bill_ref: str):
    channel = selectors.channel_or_none(channel_code)
    if channel is None:
        raise Http404("No such channel")
    try:
        receipt = receipt_data(bill_ref, preview=request.GET.get("preview") == "1")
    except OmnimanError as error:
        if error.code in GONE_CODES:
            raise Http404("No such bill") from None
        raise
    if receipt.channel_code != channel.code:
        raise Http404("No such bill")
    return channel, receipt


def _bill_url(channel_code: str, bill_ref: str) -> str:
    """The bill screen (h-settleui's ``pos:bill``), if the URLconf has it."""
    try:
        return reverse("pos:bill", args=[channel_code, bill_ref])
    except NoReverseMatch:
        return ""


def _pix_svg(receipt: Receipt) -> str:
    """The QR code of a preview's Pix code (the selector sets it when something is due and the channel takes Pix)."""
    return pix.qr_svg(receipt.pix_payload, title=_("Pix QR code")) if receipt.pix_payload else ""


@require_GET
@pos_required
def receipt(request, channel_code, bill_ref):
    channel, data = _receipt(request, channel_code, bill_ref)
    paper = _paper(request, channel)
    query = {key: value for key, value in request.GET.items() if key in ("preview",)}
    context = {
        "receipt": data,
        "channel": channel,
        "paper": paper,
        "paper_css": f"css/receipt-{paper}.css",
        "issued_at": format_datetime(data.issued_at, time_zone=data.time_zone),
        "adjustments": [(adjustment, adjustment_label(adjustment)) for adjustment in data.adjustments],
        "payments": [(payment, method_label(payment.method)) for payment in data.payments],
        "query_58": urlencode({**query, "paper": 58}),
        "query_80": urlencode({**query, "paper": 80}),
        "pdf_url": reverse("pos:receipt_pdf", args=[channel.code, data.ref]) + "?" + urlencode({**query, "paper": paper}),
        "back_url": _bill_url(channel.code, data.ref),
        "pix_payload": data.pix_payload,
        "pix_svg": _pix_svg(data),
    }
    return render(request, "pos/receipt.html", context)


@require_GET
@pos_required
def receipt_pdf_view(request, channel_code, bill_ref):
    channel, data = _receipt(request, channel_code, bill_ref)
    body = receipt_pdf(data, paper=_paper(request, channel))
    response = HttpResponse(body, content_type="application/pdf")
    name = ("bill" if data.is_preview else "receipt") + f"-{data.ref}.pdf"
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response
