"""The receipt page in chromium at 1024×768: the conta with its Pix QR, the receipt, and a print that is
one page as wide as the roll (58/80 mm) and as long as the receipt."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from omniman import pix
from omniman.models import Bill
from omniman.services import BillService, PaymentService

MM = 72 / 25.4  # points per millimetre


def pdf_pages(page) -> list[tuple[float, float]]:
    """The page sizes (points) of what chromium prints, honouring the page's @page size."""
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)
    return [tuple(float(n) for n in box.split()[2:]) for box in re.findall(rb"/MediaBox \[([^\]]+)\]", pdf)]


def test_the_conta_shows_the_pix_qr_and_the_receipt_prints_on_one_roll_sized_page(new_page, shot):
    bill = BillService.open("tables", handle_type="table", handle_ref="2", actor="test")
    assert bill.total_q > 0
    page = new_page("pos")

    page.goto(f"/pos/tables/bills/{bill.ref}/receipt/?preview=1")
    expect(page.locator("[data-kind=preview]")).to_be_visible()
    expect(page.locator(".r-pix svg")).to_be_visible()
    payload = page.locator(".r-pix-payload").inner_text()
    assert pix.parse(payload)["54"] == f"{bill.total_q // 100}.{bill.total_q % 100:02d}"
    shot(page, "receipt-conta")

    PaymentService.tender(bill.ref, method="cash", tendered_q=bill.total_q + 1000, idempotency_key="e2e", actor="test")
    assert Bill.objects.get(pk=bill.pk).status == "settled"
    page.goto(f"/pos/tables/bills/{bill.ref}/receipt/")
    expect(page.locator("[data-kind=receipt]")).to_be_visible()
    expect(page.locator(".r-change .r-num")).to_have_text(re.compile(r"10[.,]00"))
    expect(page.locator(".r-pix")).to_have_count(0)
    shot(page, "receipt-80mm")
    [(width, height)] = pdf_pages(page)
    assert abs(width - 80 * MM) < 1 and 60 * MM < height < 297 * MM  # one page, the roll's width, the receipt's length

    page.click("text=58 mm")
    expect(page.locator("text=58 mm")).to_have_class(re.compile("is-current"))
    [(width, _height)] = pdf_pages(page)
    assert abs(width - 58 * MM) < 1
    shot(page, "receipt-58mm")
