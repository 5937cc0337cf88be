"""The manager's audit view: ``audit_entries`` (one query per kind) and its admin page with a CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman.exceptions import OmnimanError
from omniman.models import Order, Shift
from omniman.services import (
    AUDIT_KINDS, BillService, ModifyService, OrderService, PaymentService, ShiftService, audit_entries, current_shift, z_report,
)
from tests.factories import commit, create_session_at, make_channel
from tests.integration.test_admin_review import make_user

pytestmark = pytest.mark.django_db

POS, MANAGER = ("pos",), ("manager",)


def _order(channel, *, lines=2, price=1000, table=""):
    session = create_session_at(channel, lines=lines, price=price, handle_type="table" if table else "", handle_ref=table)
    return Order.objects.get(ref=commit(session)["order_ref"])


def sensitive_day(channel, *, n=1):
    """``n`` of each kind of sensitive action, through the services."""
    for i in range(n):
        session = create_session_at(channel, lines=2, price=1000)
        session = ModifyService.modify_session(
            session.session_key, channel.code,
            [{"op": "override_price", "line_id": session.lines[0]["line_id"], "unit_price_q": 700, "reason": "regular customer"}],
            ctx={"actor": "ana"},
        )
        commit(session)
        order = _order(channel)
        bill = BillService.open(channel.code, order_ref=order.ref, actor="ana")
        bill = BillService.discount(bill.ref, percent="5", reason="loyalty card", actor="ana", roles=POS)
        bill = BillService.discount(bill.ref, percent="20", reason="birthday <b>party</b>", actor="ana", roles=POS,
                                    approved_by="boss", approver_roles=MANAGER)
        payment = PaymentService.tender(bill.ref, method="cash", idempotency_key=f"pay-{i}", actor="ana").payment
        PaymentService.refund(payment.pk, amount_q=300, reason="cold food", idempotency_key=f"refund-{payment.pk}", actor="boss", roles=MANAGER)
        voided = _order(channel)
        BillService.void_item(voided.ref, voided.items.first().line_id, reason="wrong item", actor="rafael", roles=POS,
                              approved_by="boss", approver_roles=MANAGER)
        cancelled = _order(channel)
        OrderService.transition(cancelled.ref, "cancelled", actor="rafael", reason="customer left")
        table = _order(channel, table=f"T{i}")
        bill = BillService.open(channel.code, handle_type="table", handle_ref=f"T{i}", actor="rafael")
        BillService.write_off(bill.ref, reason="walked out", actor="boss", roles=MANAGER)
        assert table.ref
        # The drawer: a cash out, then a close 7.00 short (over the 5.00 threshold: the manager accepts it).
        shift = current_shift("main")
        ShiftService.cash_out(shift.pk, amount_q=400, reason="Bakery supplier", actor="ana", idempotency_key=f"out-{shift.pk}")
        expected = z_report(shift.pk)["cash"]["expected_q"]
        ShiftService.close(shift.pk, counted_q=expected - 700, actor="ana", roles=POS, approved_by="boss", approver_roles=MANAGER,
                           reason="change given twice")


def today_period():
    today = timezone.localdate()
    return today, today


def test_each_kind_appears_with_its_actor_approver_reason_and_amount():
    channel = make_channel("counter")
    sensitive_day(channel)
    entries = audit_entries(today_period())
    by_kind = {}
    for entry in entries:
        by_kind.setdefault(entry.kind, []).append(entry)
    assert set(by_kind) == set(AUDIT_KINDS)
    (override,) = by_kind["price_override"]
    assert (override.actor, override.reason, override.amount_q) == ("ana", "regular customer", 300) and override.order_ref
    discounts = sorted(by_kind["discount"], key=lambda e: e.amount_q)
    assert [(d.actor, d.approver, d.reason, d.over_threshold) for d in discounts] == [
        ("ana", "", "loyalty card", False), ("ana", "boss", "birthday <b>party</b>", True),
    ]
    assert discounts[0].amount_q == 100 and discounts[0].bill_ref  # 5 % of 20.00
    (void,) = by_kind["void"]
    assert (void.actor, void.approver, void.reason, void.amount_q) == ("rafael", "boss", "wrong item", 1000)
    (cancel,) = by_kind["cancellation"]
    assert (cancel.actor, cancel.reason, cancel.amount_q) == ("rafael", "customer left", 2000)
    (refund,) = by_kind["refund"]
    assert (refund.actor, refund.reason, refund.amount_q, refund.bill_ref) == ("boss", "cold food", 300, discounts[0].bill_ref)
    (write_off,) = by_kind["write_off"]
    assert (write_off.actor, write_off.reason, write_off.amount_q) == ("boss", "walked out", 2000)
    (difference,) = by_kind["drawer_difference"]
    shift = Shift.objects.get(pk=difference.shift_id)
    assert (difference.actor, difference.approver, difference.reason, difference.amount_q) == ("ana", "boss", "change given twice", 700)
    assert shift.difference_q == -700 and difference.over_threshold and difference.at == shift.closed_at
    (cash_out,) = by_kind["cash_out"]
    assert (cash_out.actor, cash_out.reason, cash_out.amount_q, cash_out.shift_id) == ("ana", "Bakery supplier", 400, shift.pk)
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)


def test_search_actor_kind_and_period_filter():
    channel = make_channel("counter")
    sensitive_day(channel)
    assert [e.kind for e in audit_entries(today_period(), query="COLD")] == ["refund"]
    assert {e.kind for e in audit_entries(today_period(), actor="Boss")} == {"discount", "void", "refund", "write_off", "drawer_difference"}
    assert {e.kind for e in audit_entries(today_period(), kinds=["void", "refund"])} == {"void", "refund"}
    ref = Order.objects.filter(status="cancelled").get().ref
    assert [e.kind for e in audit_entries(today_period(), query=ref)] == ["cancellation"]
    yesterday = timezone.localdate() - timedelta(days=1)
    assert audit_entries((yesterday, yesterday)) == []


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({"period": (timezone.localdate(), timezone.localdate() - timedelta(days=1))}, "invalid_period"),
        ({"period": ("2026-01-01", "2026-01-02")}, "invalid_period"),
        ({"period": (timezone.localdate() - timedelta(days=400), timezone.localdate())}, "invalid_period"),
        ({"period": (timezone.localdate(), timezone.localdate()), "kinds": ["bribe"]}, "invalid_field"),
        ({"period": (timezone.localdate(), timezone.localdate()), "query": "x" * 101}, "invalid_field"),
    ],
)
def test_bad_filters_have_stable_codes(kwargs, code):
    period = kwargs.pop("period")
    with pytest.raises(OmnimanError) as info:
        audit_entries(period, **kwargs)
    assert info.value.code == code


def test_query_count_does_not_grow_with_the_rows():
    channel = make_channel("counter")
    sensitive_day(channel, n=1)
    with CaptureQueriesContext(connection) as one:
        assert len(audit_entries(today_period())) == 9
    sensitive_day(channel, n=3)
    with CaptureQueriesContext(connection) as four:
        assert len(audit_entries(today_period())) == 36
    assert len(one) == len(four) <= 7


@pytest.fixture
def manager(client):
    client.force_login(make_user("manager", groups=("manager",)))
    return client


def test_the_audit_page_lists_escapes_and_exports(manager):
    channel = make_channel("counter")
    sensitive_day(channel)
    today = timezone.localdate().isoformat()
    response = manager.get("/admin/audit/", {"start": today, "end": today})
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count('data-kind="') == 9 and "over the limit" in body
    shift = Shift.objects.get(status="closed")
    assert f'href="/admin/omniman/shift/{shift.pk}/change/"' in body and "Bakery supplier" in body
    assert "birthday &lt;b&gt;party&lt;/b&gt;" in body and "<b>party</b>" not in body
    assert 'id="audit-csv"' in body
    sidebar = {str(item["title"]) for group in response.context["sidebar_navigation"] for item in group["items"]}
    assert "Audit" in sidebar
    searched = manager.get("/admin/audit/", {"start": today, "end": today, "q": "walked"})
    assert searched.content.decode().count('data-kind="') == 1
    drawer = manager.get("/admin/audit/", {"start": today, "end": today, "kind": ["drawer_difference"], "format": "csv"})
    (row,) = csv.DictReader(io.StringIO(drawer.content.decode()))
    assert (row["actor"], row["approver"], row["amount"], row["shift"]) == ("ana", "boss", "7.00", str(shift.pk))
    exported = manager.get("/admin/audit/", {"start": today, "end": today, "kind": ["refund", "discount"], "format": "csv"})
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert sorted(r["kind"] for r in rows) == ["discount", "discount", "refund"]
    refund = next(r for r in rows if r["kind"] == "refund")
    assert (refund["actor"], refund["reason"], refund["amount"], refund["currency"]) == ("boss", "cold food", "3.00", "BRL")
    assert sum(r["over_threshold"] == "yes" for r in rows) == 1


def test_the_audit_page_refuses_a_bad_period_and_non_managers(manager, client):
    response = manager.get("/admin/audit/", {"start": "2026-12-05", "end": "2026-12-01"})
    assert response.status_code == 400 and 'id="audit-errors"' in response.content.decode()
    assert manager.get("/admin/audit/", {"start": "not-a-date"}).status_code == 400
    client.force_login(make_user("cashier", groups=("pos",)))
    denied = client.get("/admin/audit/")
    assert denied.status_code == 302 and "/login/" in denied["Location"]
