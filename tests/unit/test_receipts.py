"""Receipts as data: the rows, the text on 58/80 mm paper and the PDF say the same things, in the receipt's language."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime

import pytest

from omniman.receipts import (
    PREVIEW,
    RECEIPT,
    Receipt,
    ReceiptAdjustment,
    ReceiptLine,
    ReceiptPayment,
    ReceiptRefund,
    receipt_pdf,
    receipt_text,
)


def receipt(**overrides) -> Receipt:
    fields = dict(
        ref="BIL-20261203-ABC123",
        kind=RECEIPT,
        merchant="Café Central",
        channel_code="tables",
        currency="BRL",
        issued_at=datetime(2026, 12, 3, 15, 30, tzinfo=UTC),
        language="en",
        time_zone="America/Sao_Paulo",
        status="settled",
        handle_label="Table 4",
        order_refs=("ORD-1", "ORD-2"),
        tickets=(17,),
        lines=(ReceiptLine("Espresso", "2", 600, 1200, "ORD-1", "l1"), ReceiptLine("Cheese bread", "1", 800, 800, "ORD-2", "l2", "warm")),
        adjustments=(ReceiptAdjustment("discount", "", -200, "10", "regular"), ReceiptAdjustment("service_charge", "", 180, "10")),
        payments=(
            ReceiptPayment("cash", 1000, tendered_q=5000, change_q=4000),
            ReceiptPayment("card", 780, tip_q=78, tendered_q=858, brand="Visa", reference="A1B2C3"),
        ),
        items_q=2000,
        total_q=1980,
        paid_q=1780,
        due_q=200,
        tips_q=78,
        change_q=4000,
        footer=("Thank you!",),
    )
    fields.update(overrides)
    return Receipt(**fields)


def test_the_text_receipt_on_80_mm_lists_items_adjustments_payments_change_and_refs():
    text = receipt_text(receipt(), paper=80)
    lines = text.splitlines()
    assert all(len(line) <= 48 for line in lines)
    assert lines[0].strip() == "Café Central" and "RECEIPT" in text
    assert "Table 4" in text and "Pickup number: #17" in text and "Orders: ORD-1, ORD-2" in text
    assert "3:30 PM" not in text and "12:30" in text  # issued at 15:30 UTC, shown in São Paulo's time
    money_at_right = {line.split("  ")[0].strip(): line.rsplit(" ", 1)[-1] for line in lines if re.search(r"\d\.\d\d$", line)}
    assert "2 × Espresso" in text and lines[[i for i, l in enumerate(lines) if "2 × Espresso" in l][0]].endswith("R$12.00")
    assert "   R$6.00 each" in text and "   warm" in text
    assert any(line.startswith("Discount 10%") and line.endswith("-R$2.00") for line in lines)
    assert any(line.startswith("Service charge 10%") and line.endswith("R$1.80") for line in lines)
    assert any(line.startswith("Total") and line.endswith("R$19.80") for line in lines)
    assert any(line.startswith("   Tendered") and line.endswith("R$50.00") for line in lines)
    assert any(line.startswith("   Visa auth A1B2C3") for line in lines)
    assert any(line.startswith("   Tip") and line.endswith("R$0.78") for line in lines)
    assert any(line.startswith("Change") and line.endswith("R$40.00") for line in lines)
    assert any(line.startswith("Due") and line.endswith("R$2.00") for line in lines)
    assert lines[-1].strip() == "Thank you!" and "not a receipt" not in text
    assert money_at_right  # money is right-aligned


def test_58_mm_paper_has_32_columns_and_cuts_long_names():
    long = ReceiptLine("A very long product name that cannot fit on a narrow roll", "1", 100, 100)
    text = receipt_text(receipt(lines=(long,)), paper=58)
    assert max(len(line) for line in text.splitlines()) == 32
    assert any(line.startswith("1 × A very long") and line.endswith("… R$1.00") and len(line) == 32 for line in text.splitlines())


def test_a_preview_says_it_is_not_a_receipt_and_refunds_show():
    text = receipt_text(receipt(kind=PREVIEW, payments=(), paid_q=0, refunds=(ReceiptRefund(300, "cold"),)))
    assert "BILL — NOT A RECEIPT" in text and "This is not a receipt." in text and "\nRECEIPT" not in text
    assert any(line.startswith("Refund") and line.endswith("-R$3.00") for line in text.splitlines())


def test_the_receipt_speaks_its_language():
    text = receipt_text(receipt(language="pt-br"))
    assert "R$\xa012,00" in text and "Total" in text
    assert "Troco" in text and "Gorjeta" in text and "RECIBO" in text


def pdf_text(pdf: bytes) -> str:
    """The text drawn by a PDF made by fpdf2 (its content streams, inflated)."""
    out = []
    # Each stream's exact bytes by its /Length: compressed bytes may end in a CR or LF that a
    # "stream … endstream" pattern would take for the line break around them.
    for match in re.finditer(rb"/Length (\d+)\b[^>]*>>\s*stream\r?\n", pdf):
        stream = pdf[match.end() : match.end() + int(match.group(1))]
        try:
            out.append(zlib.decompress(stream).decode("latin-1"))
        except zlib.error:
            out.append(stream.decode("latin-1"))
    return "\n".join(out)


@pytest.mark.parametrize("paper", [58, 80])
def test_the_pdf_is_the_papers_width_and_carries_the_receipt(paper):
    pdf = receipt_pdf(receipt(language="pt-br"), paper=paper)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    [box] = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
    assert abs(float(box[0]) - paper * 72 / 25.4) < 0.5  # points
    assert float(box[1]) > float(box[0])
    drawn = pdf_text(pdf)
    for text in ("Caf\xe9 Central", "RECIBO", "Table 4", "Espresso", "R$ 19,80", "Troco", "R$ 40,00", "A1B2C3", "ORD-1"):
        assert text in drawn.replace("\xa0", " "), text


def test_a_preview_with_a_pix_code_prints_it_as_a_qr_in_the_pdf_and_as_text_elsewhere():
    payload = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
    conta = receipt(kind=PREVIEW, payments=(), paid_q=0, due_q=1980, pix_payload=payload)
    lines = receipt_text(conta, paper=58).splitlines()
    assert "Pay with Pix: scan the code or" in [line.strip() for line in lines]
    chunks = [payload[at : at + 32] for at in range(0, len(payload), 32)]
    start = lines.index(chunks[0])
    assert lines[start : start + len(chunks)] == chunks  # the code written out, 32 columns a line
    pdf = receipt_pdf(conta)
    assert b"/Subtype /Image" in pdf
    assert b"/Subtype /Image" not in receipt_pdf(receipt())


def test_a_lines_modifiers_print_under_it_before_its_note():
    line = ReceiptLine("Burger", "1", 3800, 3800, "ORD-3", "l3", "no salt", "Medium · Bacon")
    text = receipt_text(receipt(lines=(line,)))
    rows = text.splitlines()
    at = next(i for i, row in enumerate(rows) if row.startswith("1 × Burger"))
    assert rows[at + 1].strip() == "Medium · Bacon" and rows[at + 2].strip() == "no salt"
