"""Receipts of bills (issue #15 §3): the selector, the printable page (58/80 mm), the PDF, the bill preview
("conta") with its Pix QR, and the receipt queued for the printer and the customer's email when a bill settles."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from omniman import pix
from omniman.exceptions import OmnimanError
from omniman.models import Bill, Directive, Order
from omniman.receipts import receipt_text
from omniman.services import BillService, PaymentService, receipt_data
from tests.factories import commit, create_session_at, make_channel
from tests.integration.web.helpers import logged_in
from tests.unit.test_receipts import pdf_text

pytestmark = pytest.mark.django_db

PIX = {"methods": ["cash", "card", "pix"], "pix": {"key": "cafe@example.com", "merchant_name": "Cafe Central", "merchant_city": "Recife"}}


def table_round(channel, table="4", *, lines=2, price=1000, data=None):
    session = create_session_at(channel, lines=lines, price=price, handle_type="table", handle_ref=table, data=data)
    return Order.objects.get(ref=commit(session)["order_ref"])


def settled_bill(channel, *, rounds=2, data=None) -> Bill:
    """Two rounds for table 4 (R$ 20.00 + R$ 5.50 by default), a 10 % discount, then cash (change) and card (tip)."""
    table_round(channel, lines=2, price=1000, data=data)
    for _ in range(rounds - 1):
        table_round(channel, lines=1, price=550)
    bill = BillService.open(channel.code, handle_type="table", handle_ref="4", actor="user:ana")
    bill = BillService.discount(bill.ref, expected_rev=bill.rev, percent="10", reason="regular", actor="user:ana", roles=["manager"])
    half = bill.total_q // 2
    PaymentService.tender(bill.ref, method="cash", amount_q=half, tendered_q=half + 1000, idempotency_key="cash", actor="user:ana")
    PaymentService.tender(bill.ref, method="card", brand="Visa", reference="AUTH42", tip_q=150, idempotency_key="card", actor="user:ana")
    return Bill.objects.get(pk=bill.pk)


# -- the selector ----------------------------------------------------------------------------


def test_the_receipt_of_a_settled_bill_has_items_adjustments_payments_change_tip_and_refs():
    channel = make_channel("cafe", name="Café Central", config={"receipt": {"footer": "Obrigado!", "header": ["Rua A, 1", "CNPJ 00"]}})
    assert receipt_data(settled_bill(make_channel("named", name="Tables", config={"receipt": {"merchant": "Café Central Ltda"}}))).merchant == "Café Central Ltda"
    bill = settled_bill(channel)
    assert bill.status == "settled"
    receipt = receipt_data(bill.ref)
    orders = list(Order.objects.filter(bill=bill).order_by("created_at", "id"))

    assert (receipt.kind, receipt.ref, receipt.merchant, receipt.status) == ("receipt", bill.ref, "Café Central", "settled")
    assert receipt.order_refs == tuple(order.ref for order in orders) and len(orders) == 2
    assert receipt.handle_label == "Table 4"
    assert [(line.name, line.total_q, line.order_ref) for line in receipt.lines] == [
        ("Item 0", 1000, orders[0].ref), ("Item 1", 1000, orders[0].ref), ("Item 0", 550, orders[1].ref)]
    assert receipt.items_q == 2550
    [discount] = [a for a in receipt.adjustments if a.kind == "discount"]
    assert (discount.amount_q, discount.reason, discount.percent) == (-255, "regular", "10")
    # Subtotal and adjustments add up to the bill's total; the payments cover it.
    assert receipt.items_q + sum(a.amount_q for a in receipt.adjustments) == receipt.total_q == bill.total_q
    assert receipt.paid_q == receipt.total_q and receipt.due_q == 0
    cash, card = receipt.payments
    assert (cash.method, cash.tendered_q - cash.amount_q, cash.change_q) == ("cash", 1000, 1000)
    assert (card.method, card.brand, card.reference, card.tip_q) == ("card", "Visa", "AUTH42", 150)
    assert (receipt.tips_q, receipt.change_q) == (150, 1000)
    assert receipt.header == ("Rua A, 1", "CNPJ 00") and receipt.footer == ("Obrigado!",)
    assert receipt.issued_at == bill.settled_at


def test_an_open_bill_is_a_preview_with_what_is_due():
    channel = make_channel("cafe")
    table_round(channel, lines=1, price=1200)
    bill = BillService.open("cafe", handle_type="table", handle_ref="4")
    receipt = receipt_data(bill.ref)
    assert (receipt.kind, receipt.total_q, receipt.paid_q, receipt.due_q) == ("preview", 1200, 0, 1200)
    text = receipt_text(receipt)
    assert "NOT A RECEIPT" in text and "This is not a receipt." in text
    settled = settled_bill(make_channel("other"))
    assert receipt_data(settled.ref, preview=True).kind == "preview"


def test_an_unknown_bill_is_not_found():
    with pytest.raises(OmnimanError) as error:
        receipt_data("BIL-20260101-NOPE00")
    assert error.value.code == "not_found"


def test_the_selector_reads_a_fixed_number_of_queries_however_many_rounds_and_payments():
    small = settled_bill(make_channel("small"), rounds=2)
    large = settled_bill(make_channel("large"), rounds=8)
    with CaptureQueriesContext(connection) as few:
        receipt_data(small.ref)
    with CaptureQueriesContext(connection) as many:
        assert len(receipt_data(large.ref).order_refs) == 8
    assert len(many) == len(few) <= 6


# -- the page and the PDF ----------------------------------------------------------------------


@pytest.fixture
def pos_client():
    return logged_in("cashier", "pos")


def test_the_receipt_page_prints_on_80_mm_by_default_and_58_on_request(pos_client):
    channel = make_channel("cafe", name="Café Central")
    bill = settled_bill(channel)
    url = reverse("pos:receipt", args=["cafe", bill.ref])
    response = pos_client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'href="/static/css/receipt.css"' in page and 'href="/static/css/receipt-80.css"' in page
    assert 'data-kind="receipt"' in page and "NOT A RECEIPT" not in page
    for text in ("Café Central", bill.ref, "Table 4", "Item 0", "R$25.50", "Visa", "AUTH42", "regular", "R$1.50", "R$10.00"):
        assert text in page, text
    assert "Discount 10%" in page  # the kind's name and percent, in the page's language
    page_pt = pos_client.get(url, HTTP_ACCEPT_LANGUAGE="pt-br").content.decode()
    for text in ("RECIBO", "Mesa 4", "Desconto 10%", "Troco", "Gorjeta", "R$\xa025,50", "aut. AUTH42"):
        assert text in page_pt, text
    assert re.search(r'class="r-change".*?R\$10\.00', page, re.S)  # the change, on its row
    assert reverse("pos:receipt_pdf", args=["cafe", bill.ref]) + "?paper=80" in page
    page_58 = pos_client.get(url, {"paper": "58"}).content.decode()
    assert 'href="/static/css/receipt-58.css"' in page_58 and "receipt-80.css" not in page_58
    # Without a paper asked for, the channel's receipt printer's decides.
    channel.config = {"printers": {"receipt": {"host": "10.0.0.9", "paper": 58}}}
    channel.save()
    assert "receipt-58.css" in pos_client.get(url).content.decode()


def test_the_print_stylesheets_size_the_page_for_the_roll(client):
    for paper in (58, 80):
        css = b"".join(client.get(f"/static/css/receipt-{paper}.css").streaming_content).decode()
        assert f"@page {{ size: {paper}mm 297mm" in css and f"--paper: {paper}mm" in css
    css = b"".join(client.get("/static/css/receipt.css").streaming_content).decode()
    assert "@media print" in css and ".receipt-tools { display: none; }" in css
    # receipt.js makes the printed page as long as the receipt (tests/e2e/test_receipt_e2e.py prints it).
    js = b"".join(client.get("/static/js/receipt.js").streaming_content).decode()
    assert "insertRule(`@page { size: ${width} ${height}mm" in js and "window.print()" in js


def test_the_preview_is_marked_and_shows_the_pix_qr_for_what_is_due(pos_client):
    channel = make_channel("cafe", config={"currency": "BRL", "payments": PIX})
    table_round(channel, lines=1, price=1234)
    bill = BillService.open("cafe", handle_type="table", handle_ref="4")
    page = pos_client.get(reverse("pos:receipt", args=["cafe", bill.ref]), {"preview": "1"}).content.decode()
    assert 'data-kind="preview"' in page and "This is not a receipt." in page
    payload = re.search(r'<code class="r-pix-payload">([^<]+)</code>', page).group(1)
    fields = pix.parse(payload.replace("&amp;", "&"))
    assert fields["54"] == "12.34" and fields["26"]["01"] == "cafe@example.com"
    assert "<svg" in page and "<title>Pix QR code</title>" in page
    # Paid: a receipt, no QR.
    PaymentService.tender(bill.ref, method="cash", tendered_q=2000, idempotency_key="k", actor="t")
    page = pos_client.get(reverse("pos:receipt", args=["cafe", bill.ref])).content.decode()
    assert 'data-kind="receipt"' in page and "r-pix-payload" not in page


def test_the_pdf_download_carries_the_receipt(pos_client):
    channel = make_channel("cafe", name="Café Central")
    bill = settled_bill(channel)
    response = pos_client.get(reverse("pos:receipt_pdf", args=["cafe", bill.ref]), {"paper": "58"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="receipt-{bill.ref}.pdf"'
    drawn = pdf_text(response.content)
    for text in ("Caf\xe9 Central", "RECEIPT", "Item 0", "R$25.50", "AUTH42"):
        assert text in drawn, text
    [box] = re.findall(rb"/MediaBox \[0 0 ([\d.]+) ", response.content)
    assert abs(float(box) - 58 * 72 / 25.4) < 0.5


def test_the_receipt_needs_a_pos_role_and_a_bill_of_that_channel(pos_client):
    bill = settled_bill(make_channel("cafe"))
    make_channel("bar")
    url = reverse("pos:receipt", args=["cafe", bill.ref])
    assert logged_in("cook", "kitchen").get(url).status_code == 403
    anonymous = logged_in.__globals__["Client"]().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert pos_client.get(reverse("pos:receipt", args=["bar", bill.ref])).status_code == 404
    assert pos_client.get(reverse("pos:receipt", args=["cafe", "BIL-20260101-NOPE00"])).status_code == 404
    assert pos_client.get(reverse("pos:receipt_pdf", args=["nope", bill.ref])).status_code == 404
    assert pos_client.post(url).status_code == 405


def test_the_page_escapes_customer_text(pos_client):
    channel = make_channel("cafe")
    session = create_session_at(channel, lines=0, handle_type="table", handle_ref="4")
    from omniman.services import ModifyService

    ModifyService.modify_session(
        session.session_key, "cafe",
        [{"op": "add_line", "sku": "X", "name": "<script>alert(1)</script>", "qty": "1", "unit_price_q": 100}],
    )
    commit(session)
    bill = BillService.open("cafe", handle_type="table", handle_ref="4")
    page = pos_client.get(reverse("pos:receipt", args=["cafe", bill.ref])).content.decode()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_the_page_reads_a_fixed_number_of_queries(pos_client, django_assert_max_num_queries):
    small = settled_bill(make_channel("small"), rounds=2)
    large = settled_bill(make_channel("large"), rounds=8)
    with CaptureQueriesContext(connection) as few:
        assert pos_client.get(reverse("pos:receipt", args=["small", small.ref])).status_code == 200
    with CaptureQueriesContext(connection) as many:
        assert pos_client.get(reverse("pos:receipt", args=["large", large.ref])).status_code == 200
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]
    # Session, user, roles; channel, bill, orders, payments, refunds, pickup numbers.
    with django_assert_max_num_queries(9):
        pos_client.get(reverse("pos:receipt", args=["large", large.ref]))


# -- when the bill settles ---------------------------------------------------------------------


@pytest.mark.contrib("omniman.contrib.printing")
def test_settling_queues_the_receipt_for_a_receipt_printer_only():
    with_printer = make_channel("cafe", config={"printers": {"receipt": "127.0.0.1:9100"}})
    bill = settled_bill(with_printer)
    [directive] = Directive.objects.filter(topic="print.receipt")
    assert directive.payload == {"bill_ref": bill.ref} and directive.status == "queued"
    settled_bill(make_channel("plain"))
    assert Directive.objects.filter(topic="print.receipt").count() == 1


@pytest.mark.contrib("omniman.contrib.notifications")
def test_settling_queues_the_receipt_email_when_the_customer_gave_an_address(mailoutbox):
    from omniman import engine

    notifications = {"backends": [{"backend": "webhook", "url": "http://127.0.0.1:1/", "secret": "s"}, {"backend": "email", "to": ["shop@example.com"]}]}
    channel = make_channel("cafe", name="Café Central", config={"notifications": notifications})
    bill = settled_bill(channel, data={"customer": {"name": "Ana", "email": "ana@example.com"}})
    [directive] = Directive.objects.filter(topic="notification.send")
    assert directive.payload["bill_ref"] == bill.ref and directive.payload["backend"] == 1
    assert directive.payload["event"] == "bill.receipt"

    assert engine.process(topics=["notification.send"]).outcomes == [(directive.pk, "done")]
    [mail] = mailoutbox
    assert mail.to == ["ana@example.com"]  # the customer, never the shop's own inbox
    assert bill.ref in mail.subject and "Café Central" in mail.subject
    assert "RECEIPT" in mail.body and "AUTH42" in mail.body and "Item 0" in mail.body
    [(name, content, mimetype)] = mail.attachments
    assert (name, mimetype) == (f"receipt-{bill.ref}.pdf", "application/pdf") and content.startswith(b"%PDF-")

    # No address given: no receipt email.
    settled_bill(make_channel("anon", config={"notifications": notifications}))
    assert Directive.objects.filter(topic="notification.send").count() == 1


@pytest.mark.contrib("omniman.contrib.refs")
def test_a_counter_bill_shows_the_pickup_number(pos_client):
    from omniman import engine

    channel = make_channel("counter", config={"post_commit_directives": ["refs.assign_ticket"]})
    session = create_session_at(channel, lines=1, price=700)
    order_ref = commit(session)["order_ref"]
    engine.process(topics=["refs.assign_ticket"])
    bill = BillService.open("counter", order_ref=order_ref)
    PaymentService.tender(bill.ref, method="cash", tendered_q=700, idempotency_key="k", actor="t")
    receipt = receipt_data(bill.ref)
    assert receipt.tickets == (1,) and receipt.handle_label == "" and receipt.order_refs == (order_ref,)
    assert "Pickup number: #1" in receipt_text(receipt)
    page = pos_client.get(reverse("pos:receipt", args=["counter", bill.ref])).content.decode()
    assert re.search(r"Pickup number\s*#1", page)
