"""A shift end to end in a real browser (issue #18): the cashier opens the register with a float counted by
notes → sales in cash, card and Pix (the real bill and tender services) and a refund → a cash out on the shift
screen → the close shows expected vs counted and the difference → a manager accepts it with their PIN on the
cashier's screen → the Z-report page, whose every figure is checked against the Payment, Refund and
CashMovement tables (summed here, independently). Screenshots at 390 px (a phone) and 1280 px.
"""

from __future__ import annotations

import pytest
from django.db.models import Sum

from omniman.models import CashMovement, Order, Payment, Refund, Shift
from omniman.services import BillService, PaymentService
from tests.factories import commit, create_session_at, make_channel
from tests.e2e.conftest import settle

expect = pytest.importorskip("playwright.sync_api").expect

PAYMENTS = {"payments": {"methods": ["cash", "card", "pix"], "pix": {"key": "cafe@example.com"}}}
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def money(amount_q: int) -> str:
    sign = "-" if amount_q < 0 else ""
    amount_q = abs(amount_q)
    return f"{sign}R${amount_q // 100:,}.{amount_q % 100:02d}"


def both_widths(page, shot, name: str) -> None:
    for label, size in (("390", PHONE), ("1280", DESKTOP)):
        page.set_viewport_size(size)
        shot(page, f"shift-{name}-{label}")
    page.set_viewport_size(DESKTOP)


def sell(channel, price: int, lines: int = 1) -> str:
    order = Order.objects.get(ref=commit(create_session_at(channel, lines=lines, price=price))["order_ref"])
    return BillService.open(channel.code, order_ref=order.ref, actor="user:pos").ref


def test_a_shift_from_the_float_to_the_z_report(new_page, shot):
    page = new_page("pos")
    page.set_viewport_size(DESKTOP)
    page.goto("/pos/")
    page.get_by_role("link", name="Shift").first.click()
    expect(page.locator("#open-form")).to_be_visible()
    page.fill("#open-count-5000", "1")
    page.fill("#open-count-1000", "4")
    page.fill("#open-count-100", "10")
    both_widths(page, shot, "open")
    with page.expect_navigation():
        page.get_by_role("button", name="Open the shift").click()
    expect(page.locator(".shift-summary")).to_be_visible()
    shift = Shift.objects.get(status="open")
    assert (shift.register.code, shift.opening_float_q, shift.opened_by) == ("main", 10000, "user:pos")

    # Sales through the real services, on this register: cash with a tip and change, card, Pix, and a refund.
    channel = make_channel("shop", name="Shop", config=PAYMENTS)
    PaymentService.tender(sell(channel, 1500, lines=2), method="cash", tendered_q=5000, tip_q=200, idempotency_key="a",
                          register="main", actor="user:pos")
    PaymentService.tender(sell(channel, 4500), method="card", reference="AUTH9", tip_q=450, idempotency_key="b", register="main")
    PaymentService.tender(sell(channel, 2000), method="pix", idempotency_key="c", register="main")
    cash_sale = PaymentService.tender(sell(channel, 1200), method="cash", idempotency_key="d", register="main").payment
    PaymentService.refund(cash_sale.pk, amount_q=300, reason="Cold", idempotency_key="r", roles={"manager"}, register="main")

    # A cash out on the screen.
    page.reload()
    page.get_by_role("radio", name="Cash out").check()
    page.fill("#move-form input[name=amount]", "20")
    page.fill("#move-form input[name=reason]", "Bank drop")
    with page.expect_navigation():
        page.get_by_role("button", name="Record").click()
    expect(page.locator(".shift-moves")).to_contain_text("Bank drop")
    both_widths(page, shot, "during")

    # What the drawer should hold, from the tables.
    payments = Payment.objects.filter(shift=shift)
    cash = payments.filter(method="cash").aggregate(amount=Sum("amount_q"), tip=Sum("tip_q"))
    moves_out = CashMovement.objects.filter(shift=shift, kind="out").aggregate(s=Sum("amount_q"))["s"] or 0
    moves_in = CashMovement.objects.filter(shift=shift, kind="in").aggregate(s=Sum("amount_q"))["s"] or 0
    cash_refunds = Refund.objects.filter(shift=shift, payment__method="cash").aggregate(s=Sum("amount_q"))["s"] or 0
    expected = shift.opening_float_q + cash["amount"] + cash["tip"] + moves_in - moves_out - cash_refunds
    expect(page.locator('[data-figure="expected"]')).to_have_text(money(expected))

    # The close: count, check (nothing saved), then the manager's PIN on this screen.
    counted = expected - 700
    page.fill("#close-total", f"{counted / 100:.2f}")
    with page.expect_navigation():
        page.get_by_role("button", name="Check the count").click()
    expect(page.locator('[data-figure="review-difference"]')).to_have_text(money(-700))
    assert Shift.objects.get(pk=shift.pk).status == "open"
    page.fill("#close-form input[name=reason]", "Change given twice")
    page.fill("#close-form input[name=approver]", "manager")
    page.fill("#close-form input[name=pin]", "1234")
    page.locator("#close").scroll_into_view_if_needed()
    both_widths(page, shot, "close-review")
    with page.expect_navigation():
        page.get_by_role("button", name="Close the shift").click()
    settle(page)
    assert "/z-report/" in page.url
    shift.refresh_from_db()
    assert (shift.status, shift.counted_q, shift.difference_q, shift.difference_approved_by) == ("closed", counted, -700, "manager")

    # Every figure of the Z-report page against the tables.
    def figure(name):
        return page.locator(f'[data-figure="{name}"]')

    by_method = {m: payments.filter(method=m).aggregate(n=Sum("amount_q"))["n"] for m in ("cash", "card", "pix")}
    for method, amount in by_method.items():
        expect(page.locator(f'tr[data-method="{method}"] .r-num')).to_have_text(money(amount))
    expect(figure("payments")).to_have_text(money(sum(by_method.values())))
    expect(figure("tips")).to_have_text(money(payments.aggregate(s=Sum("tip_q"))["s"]))
    expect(figure("refunds")).to_have_text(money(Refund.objects.filter(shift=shift).aggregate(s=Sum("amount_q"))["s"]))
    expect(figure("bills")).to_have_text("4")
    expect(figure("orders")).to_have_text("4")
    expect(figure("sales")).to_have_text(money(sum(by_method.values())))
    expect(figure("average")).to_have_text(money(sum(by_method.values()) // 4))
    expect(figure("float")).to_have_text(money(10000))
    expect(figure("cash-sales")).to_have_text(money(cash["amount"]))
    expect(figure("cash-tips")).to_have_text(money(cash["tip"]))
    expect(figure("cash-in")).to_have_text(money(moves_in))
    expect(figure("cash-out")).to_have_text("-" + money(moves_out))
    expect(figure("cash-refunds")).to_have_text("-" + money(cash_refunds))
    expect(figure("expected")).to_have_text(money(expected))
    expect(figure("counted")).to_have_text(money(counted))
    expect(figure("difference")).to_have_text(money(-700))
    expect(figure("approved-by")).to_have_text("manager")
    both_widths(page, shot, "z-report")
    pdf = page.request.get(page.url.replace("/z-report/", "/z-report.pdf"))
    assert pdf.ok and pdf.body().startswith(b"%PDF")


def test_the_shift_screen_in_portuguese(new_page, shot):
    page = new_page("pos")
    page.goto("/pos/counter/")  # no shift open on this device's register: the channel page says so
    expect(page.locator(".shift-banner")).to_be_visible()
    with page.expect_navigation():
        page.locator(".shift-banner a").click()
    assert page.url.endswith("/pos/me/shift/")
    page.locator('.languages button[value="pt-br"]').click()
    page.wait_for_load_state()
    expect(page.get_by_role("heading", name="Abrir um turno")).to_be_visible()
    expect(page.get_by_role("button", name="Abrir o turno")).to_be_visible()
    page.set_viewport_size(PHONE)
    shot(page, "shift-open-pt-br-390")
