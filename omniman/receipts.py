"""Receipts: one plain data structure, drawn as rows of text, a PDF, an ESC/POS print or HTML.

:class:`Receipt` is what a receipt says — items, adjustments, payments, change,
tips, the order refs and pickup numbers — built by the selector
``omniman.services.receipt_data(bill_ref)`` (or :func:`order_receipt` for one
order before any bill). Everything here is a pure function of it: no queries.

* :func:`receipt_rows` — the receipt as :class:`Row` s (left text, right text,
  alignment, emphasis), in the receipt's language, money by locale;
* :func:`render_text` — rows as fixed-width text (32 columns on 58 mm paper,
  48 on 80 mm): the email body, and what a printer prints;
* :func:`receipt_pdf` — the PDF download (fpdf2), the paper's width, as long as
  the receipt.

A *preview* (``kind="preview"``: the bill before payment, the "conta") says so
on top and at the bottom: it is not a receipt.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from omniman.formatting import format_datetime, format_money, format_qty

RECEIPT = "receipt"
PREVIEW = "preview"
# Columns of text per paper width (a 58 mm printer's font A prints 32, an 80 mm one 48).
PAPER_COLUMNS = {58: 32, 80: 48}
PAPERS = tuple(PAPER_COLUMNS)


@dataclass(frozen=True)
class ReceiptLine:
    name: str
    qty: str  # a Decimal as text ("2", "0.5")
    unit_price_q: int
    total_q: int
    order_ref: str = ""
    line_id: str = ""
    note: str = ""
    modifiers: str = ""  # the chosen options, one text ("Medium · Bacon · No onions")

    @property
    def several(self) -> bool:
        """More (or less) than one unit: the receipt shows the unit price too."""
        try:
            return Decimal(self.qty) != 1
        except (InvalidOperation, ValueError):
            return False


@dataclass(frozen=True)
class ReceiptAdjustment:
    kind: str  # service_charge | discount | surcharge | write_off | void
    label: str
    amount_q: int  # signed: negative takes off
    percent: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class ReceiptPayment:
    method: str  # cash | card | pix | gateway | …
    amount_q: int
    tip_q: int = 0
    tendered_q: int = 0
    change_q: int = 0
    brand: str = ""
    reference: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class ReceiptRefund:
    amount_q: int
    reason: str = ""
    method: str = ""
    at: datetime | None = None


@dataclass(frozen=True)
class Receipt:
    """What a receipt (or a bill's preview) says; money in integer cents of ``currency``."""

    ref: str  # the bill's ref (or the order's, for an order's receipt)
    kind: str  # RECEIPT or PREVIEW
    merchant: str  # the channel's name
    channel_code: str
    currency: str
    issued_at: datetime
    language: str = "en"
    time_zone: str = "UTC"
    status: str = ""  # the bill's status: open, settled, written_off
    handle_label: str = ""  # "Table 4", "#17", …
    order_refs: tuple[str, ...] = ()
    tickets: tuple[int, ...] = ()  # pickup numbers
    lines: tuple[ReceiptLine, ...] = ()
    adjustments: tuple[ReceiptAdjustment, ...] = ()
    payments: tuple[ReceiptPayment, ...] = ()
    refunds: tuple[ReceiptRefund, ...] = ()
    items_q: int = 0
    total_q: int = 0
    paid_q: int = 0
    due_q: int = 0
    tips_q: int = 0
    change_q: int = 0
    customer_name: str = ""
    customer_email: str = ""
    header: tuple[str, ...] = ()  # config["receipt"]["header"]: address, tax id…
    footer: tuple[str, ...] = ()  # config["receipt"]["footer"]: "Thank you!"
    pix_payload: str = ""  # a preview's Pix BR Code for what is due (the channel takes Pix)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_preview(self) -> bool:
        return self.kind == PREVIEW

    @property
    def refunded_q(self) -> int:
        return sum(refund.amount_q for refund in self.refunds)


@dataclass(frozen=True)
class Row:
    """One row of a receipt: ``left`` and ``right`` text (``right`` flush right), or centred text."""

    left: str = ""
    right: str = ""
    align: str = "left"  # left | center
    bold: bool = False
    large: bool = False
    rule: bool = False  # a dashed line across
    qr: str = ""  # a QR code of this text (printed as a QR, written out as text)


def method_label(method: str) -> str:
    """A payment method's name in the active language."""
    labels = {
        "cash": pgettext("payment method", "Cash"),
        "card": pgettext("payment method", "Card"),
        "pix": pgettext("payment method", "Pix"),
        "gateway": pgettext("payment method", "Online"),
    }
    return labels.get(method, method.replace("_", " ").capitalize())


_DEFAULT_LABELS = {"service charge", "discount", "surcharge", "write-off", "write off", "written off", "void"}


def adjustment_label(adjustment: ReceiptAdjustment) -> str:
    """An adjustment's own label, or its kind's name (with its percent) in the active language — also when
    the stored label is only the kind's English name (written by a service under another language)."""
    if adjustment.label and adjustment.label.strip().lower() not in _DEFAULT_LABELS:
        return adjustment.label
    names = {
        "service_charge": _("Service charge"),
        "discount": _("Discount"),
        "surcharge": _("Surcharge"),
        "write_off": _("Written off"),
        "void": _("Void"),
    }
    name = names.get(adjustment.kind, adjustment.kind.replace("_", " ").capitalize())
    return f"{name} {adjustment.percent}%" if adjustment.percent not in (None, "", "0") else name


def receipt_rows(receipt: Receipt) -> list[Row]:
    """The receipt as rows, in ``receipt.language`` (money, quantities and dates by its locale)."""
    with translation.override(receipt.language):
        return _rows(receipt)


def _rows(receipt: Receipt) -> list[Row]:
    money = lambda q: format_money(q, receipt.currency)  # noqa: E731
    rows: list[Row] = [Row(receipt.merchant, align="center", bold=True, large=True)]
    rows += [Row(text, align="center") for text in receipt.header]
    if receipt.is_preview:
        rows.append(Row(_("BILL — NOT A RECEIPT"), align="center", bold=True))
    else:
        rows.append(Row(_("RECEIPT"), align="center", bold=True))
    rows.append(Row(format_datetime(receipt.issued_at, time_zone=receipt.time_zone), align="center"))
    rows.append(Row(receipt.ref, align="center"))
    if receipt.handle_label:
        rows.append(Row(receipt.handle_label, align="center", bold=True))
    if receipt.tickets:
        rows.append(
            Row(_("Pickup number: %(numbers)s") % {"numbers": ", ".join(f"#{n}" for n in receipt.tickets)}, align="center", bold=True)
        )
    if receipt.order_refs:
        rows.append(Row(_("Orders: %(refs)s") % {"refs": ", ".join(receipt.order_refs)}, align="center"))
    rows.append(Row(rule=True))
    for line in receipt.lines:
        rows.append(Row(f"{format_qty(line.qty)} × {line.name}", money(line.total_q)))
        if line.several and line.unit_price_q:
            rows.append(Row("   " + _("%(price)s each") % {"price": money(line.unit_price_q)}))
        if line.modifiers:
            rows.append(Row(f"   {line.modifiers}"))
        if line.note:
            rows.append(Row(f"   {line.note}"))
    rows.append(Row(rule=True))
    rows.append(Row(_("Subtotal"), money(receipt.items_q)))
    for adjustment in receipt.adjustments:
        rows.append(Row(adjustment_label(adjustment), money(adjustment.amount_q)))
        if adjustment.reason:
            rows.append(Row(f"   {adjustment.reason}"))
    rows.append(Row(_("Total"), money(receipt.total_q), bold=True, large=True))
    if receipt.payments:
        rows.append(Row(rule=True))
        for payment in receipt.payments:
            rows.append(Row(method_label(payment.method), money(payment.amount_q)))
            detail = " ".join(part for part in (payment.brand, payment.reference and _("auth %(code)s") % {"code": payment.reference}) if part)
            if detail:
                rows.append(Row(f"   {detail}"))
            if payment.method == "cash" and payment.tendered_q:
                rows.append(Row("   " + _("Tendered"), money(payment.tendered_q)))
            if payment.tip_q:
                rows.append(Row("   " + _("Tip"), money(payment.tip_q)))
            if payment.change_q:
                rows.append(Row("   " + pgettext("money given back", "Change"), money(payment.change_q), bold=True))
        rows.append(Row(_("Paid"), money(receipt.paid_q), bold=True))
        if receipt.tips_q:
            rows.append(Row(_("Tips"), money(receipt.tips_q)))
        if receipt.change_q:
            rows.append(Row(pgettext("money given back", "Change"), money(receipt.change_q), bold=True))
    for refund in receipt.refunds:
        rows.append(Row(_("Refund"), money(-refund.amount_q)))
        if refund.reason:
            rows.append(Row(f"   {refund.reason}"))
    if receipt.due_q:
        rows.append(Row(pgettext("amount still to pay", "Due"), money(receipt.due_q), bold=True, large=True))
    if receipt.pix_payload:
        rows.append(Row(_("Pay with Pix: scan the code or copy it"), align="center"))
        rows.append(Row(align="center", qr=receipt.pix_payload))
    rows.append(Row(rule=True))
    if receipt.is_preview:
        rows.append(Row(_("This is not a receipt."), align="center", bold=True))
    rows += [Row(text, align="center") for text in receipt.footer]
    return rows


def render_text(rows: list[Row], width: int = 48) -> str:
    """Rows as fixed-width text: ``right`` flush right (the left text cut to fit), centred rows centred."""
    out: list[str] = []
    for row in rows:
        if row.rule:
            out.append("-" * width)
        elif row.qr:
            out += [row.qr[at : at + width] for at in range(0, len(row.qr), width)]
        elif row.align == "center":
            out += [part.center(width).rstrip() for part in textwrap.wrap(row.left, width, break_on_hyphens=False)]
        elif row.right:
            room = max(width - len(row.right) - 1, 1)
            left = row.left if len(row.left) <= room else row.left[: room - 1] + "…"
            out.append(left + " " * (width - len(left) - len(row.right)) + row.right)
        else:
            out.append(row.left[:width])
    return "\n".join(out) + "\n"


def receipt_text(receipt: Receipt, *, paper: int = 80) -> str:
    """The receipt as text for ``paper`` mm (58 or 80)."""
    return render_text(receipt_rows(receipt), PAPER_COLUMNS.get(paper, 48))


# -- PDF --------------------------------------------------------------------------------------

# The PDF's built-in fonts speak Latin-1: what else a locale writes is replaced by its nearest.
_PDF_REPLACEMENTS = {"\u202f": " ", "\u2009": " ", "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u2019": "'", "\u201c": '"', "\u201d": '"'}


def _latin1(text: str) -> str:
    text = "".join(_PDF_REPLACEMENTS.get(ch, ch) for ch in text)
    return text.encode("latin-1", "replace").decode("latin-1")


def _qr_png(text: str):
    """A QR code of ``text`` as PNG bytes (segno: no Pillow needed to draw it)."""
    import io

    import segno

    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="png", scale=8, border=2)
    buffer.seek(0)
    return buffer


def receipt_pdf(receipt: Receipt, *, paper: int = 80) -> bytes:
    """The receipt as a one-page PDF as wide as the paper (58 or 80 mm) and as long as the receipt."""
    return rows_pdf(receipt_rows(receipt), title=f"{receipt.merchant} {receipt.ref}", paper=paper)


def rows_pdf(rows: list[Row], *, title: str, paper: int = 80) -> bytes:
    """Rows (a receipt's, a Z-report's) as a one-page PDF as wide as the paper (58 or 80 mm) and as long as the rows."""
    from fpdf import FPDF

    width = float(paper if paper in PAPER_COLUMNS else 80)
    margin = 3.0
    line_height = 4.2
    height = margin * 2 + sum(min(width - 2 * margin, 40.0) if row.qr else line_height * (1.5 if row.large else 1) for row in rows) + 4
    pdf = FPDF(orientation="P", unit="mm", format=(width, max(height, 40.0)))
    pdf.set_auto_page_break(False)
    pdf.set_margins(margin, margin, margin)
    pdf.set_title(_latin1(title))
    pdf.set_creator("Omniman")
    pdf.add_page()
    inner = width - 2 * margin
    for row in rows:
        size = 11 if row.large else 8
        h = line_height * (1.5 if row.large else 1)
        pdf.set_font("Helvetica", "B" if row.bold else "", size)
        if row.rule:
            y = pdf.get_y() + h / 2
            pdf.set_dash_pattern(dash=1, gap=1)
            pdf.line(margin, y, width - margin, y)
            pdf.set_dash_pattern()
            pdf.ln(h)
            continue
        if row.qr:
            side = min(inner, 40.0)
            pdf.image(_qr_png(row.qr), x=(width - side) / 2, y=pdf.get_y(), w=side, h=side)
            pdf.set_y(pdf.get_y() + side)
            continue
        if row.align == "center":
            pdf.multi_cell(inner, h, _latin1(row.left), align="C", new_x="LMARGIN", new_y="NEXT")
            continue
        right = _latin1(row.right)
        right_width = pdf.get_string_width(right) + 1 if right else 0
        left = _latin1(row.left)
        while left and pdf.get_string_width(left) > inner - right_width - 1:
            left = left[:-1]
        pdf.cell(inner - right_width, h, left, new_x="RIGHT", new_y="TOP")
        pdf.cell(right_width, h, right, align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# -- the Z-report (a shift's closing report: omniman.services.z_report) ----------------------------


def z_report_rows(report: dict[str, Any]) -> list[Row]:
    """A Z-report (the dict of ``omniman.services.z_report``) as rows, in the active language."""
    currency = report["currency"]

    def money(amount: Any) -> str:
        return format_money(int(amount or 0), currency)

    def when(value: str | None) -> str:
        return format_datetime(datetime.fromisoformat(value)) if value else ""

    cash = report["cash"]
    title = _("Z-report") if report["status"] == "closed" else _("X-report (shift still open)")
    rows = [
        Row(title, align="center", bold=True, large=True),
        Row(report["register_name"] or report["register"], align="center"),
        Row(_("Shift %(id)s") % {"id": report["shift_id"]}, align="center"),
        Row(rule=True),
        Row(_("Opened"), when(report["opened_at"])),
        Row(_("Opened by"), report["opened_by"] or "-"),
    ]
    if report["auto_opened"]:
        rows.append(Row(_("Opened automatically by a payment")))
    if report["closed_at"]:
        rows += [Row(_("Closed"), when(report["closed_at"])), Row(_("Closed by"), report["closed_by"] or "-")]
    rows += [Row(rule=True), Row(_("Sales by payment method"), bold=True)]
    for method, figures in report["by_method"].items():
        rows.append(Row(f"{method_label(method)} ({figures['count']})", money(figures["amount_q"])))
        if figures["tip_q"]:
            rows.append(Row("  " + _("Tips"), money(figures["tip_q"])))
    if not report["by_method"]:
        rows.append(Row(_("No payments")))
    rows += [
        Row(_("Payments"), money(report["payments_q"]), bold=True),
        Row(_("Tips"), money(report["tips_q"])),
        Row(_("Refunds"), money(report["refunds_q"])),
    ]
    for method, figures in report["refunds"].items():
        rows.append(Row(f"  {method_label(method)} ({figures['count']})", money(figures["amount_q"])))
    rows += [
        Row(rule=True),
        Row(_("Bills closed"), str(report["bills"])),
        Row(_("Orders"), str(report["order_count"])),
        Row(_("Sales"), money(report["sales_q"]), bold=True),
        Row(_("Average ticket"), money(report["average_ticket_q"])),
        Row(_("Discounts"), money(report["discounts_q"])),
        Row(_("Voids"), money(report["voids_q"])),
        Row(_("Service charge"), money(report["service_q"])),
        Row(_("Written off"), money(report["written_off_q"])),
    ]
    if report["open_bills"]["count"]:
        rows.append(Row(_("Bills still open (%(count)s), paid in this shift") % {"count": report["open_bills"]["count"]},
                        money(report["open_bills"]["paid_q"])))
    rows += [
        Row(rule=True),
        Row(_("Cash drawer"), bold=True),
        Row(_("Opening float"), money(cash["float_q"])),
        Row(_("Cash sales"), money(cash["cash_sales_q"])),
        Row(_("Cash tips"), money(cash["cash_tips_q"])),
        Row(_("Cash in"), money(cash["cash_in_q"])),
        Row(_("Cash out"), money(-cash["cash_out_q"])),
        Row(_("Cash refunds"), money(-cash["cash_refunds_q"])),
        Row(_("Expected in the drawer"), money(cash["expected_q"]), bold=True),
    ]
    if cash["counted_q"] is not None:
        rows += [Row(_("Counted"), money(cash["counted_q"])), Row(_("Difference"), money(cash["difference_q"]), bold=True)]
        if cash["difference_approved_by"]:
            rows.append(Row(_("Difference accepted by"), cash["difference_approved_by"]))
        if cash["difference_reason"]:
            rows.append(Row(_("Reason"), cash["difference_reason"]))
    return rows


def z_report_text(report: dict[str, Any], *, paper: int = 80) -> str:
    """The Z-report as text for ``paper`` mm (the email's body)."""
    return render_text(z_report_rows(report), PAPER_COLUMNS.get(paper, 48))


def z_report_pdf(report: dict[str, Any], *, paper: int = 80) -> bytes:
    """The Z-report as a PDF as wide as the paper."""
    return rows_pdf(z_report_rows(report), title=_("Z-report %(id)s") % {"id": report["shift_id"]}, paper=paper)


__all__ = [
    "PAPERS",
    "PAPER_COLUMNS",
    "PREVIEW",
    "RECEIPT",
    "Receipt",
    "ReceiptAdjustment",
    "ReceiptLine",
    "ReceiptPayment",
    "ReceiptRefund",
    "Row",
    "adjustment_label",
    "method_label",
    "receipt_pdf",
    "receipt_rows",
    "receipt_text",
    "render_text",
    "rows_pdf",
    "z_report_pdf",
    "z_report_rows",
    "z_report_text",
]
