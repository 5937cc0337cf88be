"""Tables and parked sessions (``omniman.services.tables``, ``SessionService.park/resume/open_next``) and the
``adjust_qty`` op. Each error test asserts the code and that nothing was written (``DbState`` plus the orders' statuses).
"""

from __future__ import annotations

import pytest

from omniman.exceptions import BillError, OmnimanError, SessionError, ValidationError
from omniman.models import Bill, Channel, Order, OrderEvent, Session
from omniman.services import BillService, ModifyService, OrderService, PaymentService, SessionService, TableService
from tests.factories import DbState, commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def tables():
    return make_channel("tables", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})


def tab(channel: Channel, table: str = "4", lines: int = 1) -> Session:
    return create_session_at(channel, lines=lines, handle_type="table", handle_ref=table)


def send_round(channel: Channel, table: str = "4") -> tuple[Order, Session]:
    """Commit the table's open round (with one line) and open the next (empty) one."""
    current = SessionService.open_session(channel.code, handle_type="table", handle_ref=table)
    if not current.lines:
        current = ModifyService.modify_session(
            current.session_key, channel.code, [{"op": "add_line", "sku": "X", "qty": 1, "unit_price_q": 100}]
        )
    order = Order.objects.get(ref=commit(current)["order_ref"])
    nxt = SessionService.open_next(current.session_key, channel.code)
    return order, nxt


def statuses() -> dict[str, str]:
    return dict(Order.objects.values_list("ref", "status"))


def pay(channel: Channel, table: str) -> Bill:
    """Open the table's bill and pay all of it in cash."""
    bill = BillService.open(channel.code, handle_type="table", handle_ref=table)
    return PaymentService.tender(bill.ref, method="cash", idempotency_key=f"pay-{bill.ref}").bill


def to_ready(order: Order) -> None:
    """The kitchen bumps the order to its pass (``ready``)."""
    for step in order.channel.order_flow.path(Order.objects.get(pk=order.pk).status, "ready"):
        OrderService.transition(order.ref, step, actor="kitchen")


# -- TableService.close ---------------------------------------------------------------------


def test_close_refuses_an_unpaid_table_with_what_is_due_and_writes_nothing(tables):
    send_round(tables, "8")
    _, current = send_round(tables, "8")
    before, seen = DbState(current), statuses()
    with pytest.raises(BillError) as caught:
        TableService.close(current.session_key, "tables", expected_rev=current.rev, actor="user:ana")
    assert caught.value.code == "bill_not_settled" and caught.value.context["due_q"] == 200
    assert len(caught.value.context["unbilled_order_refs"]) == 2
    before.assert_unchanged()
    assert statuses() == seen
    # A bill paid in part is still not settled: the context names it and what is left.
    bill = BillService.open("tables", handle_type="table", handle_ref="8")
    PaymentService.tender(bill.ref, method="cash", amount_q=150, idempotency_key="part")
    with pytest.raises(BillError) as caught:
        TableService.close(current.session_key, "tables", expected_rev=current.rev)
    assert caught.value.context["due_q"] == 50 and caught.value.context["bill_ref"] == bill.ref
    assert Session.objects.get(pk=current.pk).state == "open"


def test_close_of_a_paid_table_keeps_the_kitchens_work_and_completes_only_what_is_past_the_pass(tables):
    first, _ = send_round(tables, "8")
    second, current = send_round(tables, "8")
    other, _ = send_round(tables, "9")
    to_ready(first)
    pay(tables, "8")
    closed = TableService.close(current.session_key, "tables", expected_rev=current.rev, actor="user:ana")
    assert closed.state == Session.State.ABANDONED and closed.pk == current.pk
    # The round at the pass is done; the one the kitchen has not finished stays on its board, as it was.
    assert statuses() == {first.ref: "completed", second.ref: "confirmed", other.ref: "confirmed"}
    steps = OrderEvent.objects.filter(order=first, type="status_changed", payload__reason="table closed")
    assert [(e.payload["to"], e.actor) for e in steps] == [("completed", "user:ana")]
    assert not OrderEvent.objects.filter(order=second, payload__reason="table closed").exists()
    assert not Session.objects.filter(channel=tables, handle_ref="8", state="open").exists()


def test_close_of_a_written_off_table_is_allowed(tables):
    order, current = send_round(tables, "2")
    bill = BillService.open("tables", handle_type="table", handle_ref="2")
    BillService.write_off(bill.ref, expected_rev=bill.rev, reason="walked out", actor="user:boss", roles={"manager"})
    assert TableService.close(current.session_key, "tables", expected_rev=current.rev).state == "abandoned"
    assert statuses() == {order.ref: "confirmed"}


def test_close_from_the_last_committed_round_completes_it_once_it_is_ready_and_paid(tables):
    order, nxt = send_round(tables, "3")
    SessionService.abandon_session(nxt.session_key, "tables")
    to_ready(order)
    pay(tables, "3")
    committed = Session.objects.get(session_key=order.session_key)
    closed = TableService.close(committed.session_key, "tables", expected_rev=committed.rev)
    assert closed.state == Session.State.COMMITTED and statuses() == {order.ref: "completed"}


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("basket", ValidationError, "not_a_table"),
        ("unsent", ValidationError, "round_not_sent"),
        ("stale", SessionError, "stale_rev"),
        ("unknown", SessionError, "not_found"),
        ("other_channel", SessionError, "not_found"),
        ("unpaid", BillError, "bill_not_settled"),
    ],
)
def test_close_errors_write_nothing(tables, case, error, code):
    order, current = send_round(tables, "5")
    if case != "unpaid":
        pay(tables, "5")
    if case == "basket":
        current = create_session_at(tables, lines=0)
    elif case == "unsent":
        current = ModifyService.modify_session(
            current.session_key, "tables", [{"op": "add_line", "sku": "Y", "qty": 1, "unit_price_q": 100}]
        )
    make_channel("elsewhere")
    before, seen = DbState(current), statuses()
    key = "SESS-nope" if case == "unknown" else current.session_key
    channel_code = "elsewhere" if case == "other_channel" else "tables"
    rev = current.rev - 1 if case == "stale" else current.rev
    with pytest.raises(error) as caught:
        TableService.close(key, channel_code, expected_rev=rev)
    assert caught.value.code == code
    before.assert_unchanged()
    assert statuses() == seen == {order.ref: "confirmed"}


def test_close_is_all_or_nothing_when_a_flow_step_fails(tables, monkeypatch):
    first, _ = send_round(tables, "6")
    second, current = send_round(tables, "6")
    to_ready(first)
    to_ready(second)
    pay(tables, "6")
    from omniman.services import orders

    real = orders.apply_transition

    def fail_on_second(order, new_status, **kwargs):
        if order.ref == second.ref:
            raise OmnimanError("boom")
        return real(order, new_status, **kwargs)

    monkeypatch.setattr(orders, "apply_transition", fail_on_second)
    before = DbState(current)
    with pytest.raises(OmnimanError):
        TableService.close(current.session_key, "tables", expected_rev=current.rev)
    before.assert_unchanged()
    assert statuses() == {first.ref: "ready", second.ref: "ready"}


# -- park / resume --------------------------------------------------------------------------


def test_park_then_any_change_resumes(tables):
    session = create_session_at(tables, lines=1)
    parked = SessionService.park(session.session_key, "tables", expected_rev=session.rev, actor="user:ana")
    assert parked.data["parked"] is True and parked.rev == session.rev + 1
    again = SessionService.park(session.session_key, "tables", expected_rev=parked.rev)
    assert again.rev == parked.rev  # parking a parked session changes nothing
    changed = ModifyService.modify_session(
        session.session_key, "tables", [{"op": "set_data", "path": "notes", "value": "x"}], expected_rev=parked.rev
    )
    assert changed.data["parked"] is False and changed.rev == parked.rev + 1


def test_a_parked_session_still_refuses_an_empty_change(tables):
    session = SessionService.park(create_session_at(tables, lines=1).session_key, "tables")
    before = DbState(session)
    with pytest.raises(ValidationError) as caught:
        ModifyService.modify_session(session.session_key, "tables", [])
    assert caught.value.code == "missing_field"
    before.assert_unchanged()


def test_resume_explicitly_and_a_session_not_parked_is_left_alone(tables):
    session = create_session_at(tables, lines=1)
    assert SessionService.resume(session.session_key, "tables").rev == session.rev
    parked = SessionService.park(session.session_key, "tables")
    resumed = SessionService.resume(session.session_key, "tables", expected_rev=parked.rev)
    assert resumed.data["parked"] is False and resumed.rev == parked.rev + 1


@pytest.mark.parametrize("action", ["park", "resume"])
@pytest.mark.parametrize(("case", "code"), [("stale", "stale_rev"), ("committed", "already_committed"), ("unknown", "not_found")])
def test_park_and_resume_errors_write_nothing(tables, action, case, code):
    session = create_session_at(tables, lines=1)
    if action == "resume":
        session = SessionService.park(session.session_key, "tables")
    if case == "committed":
        commit(session)
        session = Session.objects.get(pk=session.pk)
    before = DbState(session)
    with pytest.raises(SessionError) as caught:
        getattr(SessionService, action)(
            "SESS-nope" if case == "unknown" else session.session_key,
            "tables",
            expected_rev=session.rev - 1 if case == "stale" else session.rev,
        )
    assert caught.value.code == code
    before.assert_unchanged()


# -- open_next ------------------------------------------------------------------------------


def test_open_next_goes_on_with_the_table_or_a_new_basket(tables):
    order, nxt = send_round(tables, "2")
    assert nxt.handle_ref == "2" and nxt.state == "open" and nxt.session_key != order.session_key
    assert SessionService.open_next(order.session_key, "tables").pk == nxt.pk  # get-or-open: the same round
    basket = create_session_at(tables, lines=1)
    result = commit(basket)
    fresh = SessionService.open_next(basket.session_key, "tables")
    assert fresh.handle_ref == "" and fresh.lines == [] and fresh.pk != basket.pk
    assert result["idempotent"] is False
    count = Session.objects.count()
    assert SessionService.open_next(basket.session_key, "tables", replay=True) is None
    assert Session.objects.count() == count
    assert SessionService.open_next(fresh.session_key, "tables").pk == fresh.pk  # still open: its own next


# -- adjust_qty ------------------------------------------------------------------------------


def test_adjust_qty_steps_and_removes_at_zero(tables):
    session = create_session_at(tables, lines=2)
    line, other = (li["line_id"] for li in session.lines)
    up = ModifyService.modify_session(session.session_key, "tables", [{"op": "adjust_qty", "line_id": line, "delta": "+1"}])
    assert up.lines[0]["qty"] == "2" and up.total_q == 3000
    half = ModifyService.modify_session(session.session_key, "tables", [{"op": "adjust_qty", "line_id": line, "delta": -0.5}])
    assert half.lines[0]["qty"] == "1.5"
    gone = ModifyService.modify_session(session.session_key, "tables", [{"op": "adjust_qty", "line_id": line, "delta": "-2"}])
    assert [li["line_id"] for li in gone.lines] == [other]


@pytest.mark.parametrize(
    ("op", "code"),
    [
        ({"line_id": "L-nope", "delta": "1"}, "unknown_line_id"),
        ({"delta": " "}, "missing_field"),
        ({"line_id": None, "delta": "1"}, "missing_field"),
        ({"delta": "0"}, "invalid_qty"),
        ({"delta": "x"}, "invalid_qty"),
        ({"delta": "NaN"}, "invalid_qty"),
        ({"delta": "0.0001"}, "invalid_qty"),
        ({"delta": True}, "invalid_qty"),
        ({"delta": "1000000"}, "invalid_qty"),  # 1 + 1,000,000 is above the largest qty
        ({}, "missing_field"),
    ],
)
def test_adjust_qty_errors_write_nothing(tables, op, code):
    session = create_session_at(tables, lines=1)
    op = {"op": "adjust_qty", "line_id": session.lines[0]["line_id"], **op}
    op = {k: v for k, v in op.items() if v is not None}
    before = DbState(session)
    with pytest.raises(ValidationError) as caught:
        ModifyService.modify_session(session.session_key, "tables", [op])
    assert caught.value.code == code
    before.assert_unchanged()


def test_adjust_qty_on_a_locked_session_is_refused(db):
    locked = make_channel("mkt", pricing_policy="external", edit_policy="locked")
    session = SessionService.open_session("mkt", items=[{"sku": "A", "qty": 1, "unit_price_q": 10}])
    before = DbState(session)
    with pytest.raises(SessionError) as caught:
        ModifyService.modify_session(session.session_key, locked.code, [{"op": "adjust_qty", "line_id": session.lines[0]["line_id"], "delta": 1}])
    assert caught.value.code == "locked"
    before.assert_unchanged()


# -- races (PostgreSQL, real threads) -----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_closing_a_table_races_an_add_to_its_round():
    """Closing and adding at the same rev: exactly one applies; a closed table never gains an unsent line."""
    from tests.threads import run_together

    channel = make_channel("tables-race", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})
    order, current = send_round(channel, "1")
    to_ready(order)
    pay(channel, "1")

    def worker(index):
        if index % 2:
            return TableService.close(current.session_key, channel.code, expected_rev=current.rev).state
        return ModifyService.modify_session(
            current.session_key,
            channel.code,
            [{"op": "add_line", "sku": "Z", "qty": 1, "unit_price_q": 10}],
            expected_rev=current.rev,
        ).rev

    results = run_together(worker, count=8)
    wins = {r[1] for r in results if r[0] == "ok"}
    assert {r[1] for r in results if r[0] == "error"} <= {"stale_rev", "abandoned"}
    after = Session.objects.get(pk=current.pk)
    order.refresh_from_db()
    if wins == {"abandoned"}:  # a close won (closing a closed table again changes nothing): nothing was added
        assert after.state == "abandoned" and after.lines == [] and order.status == "completed"
        assert OrderEvent.objects.filter(order=order, payload__reason="table closed").count() == 1  # moved once
    else:  # one add won; every close was then stale: the table stays open with its round, the order untouched
        assert wins == {current.rev + 1} and [r[0] for r in results].count("ok") == 1, results
        assert after.state == "open" and len(after.lines) == 1 and order.status == "ready"


def test_closing_a_closed_table_again_changes_nothing(tables):
    order, current = send_round(tables, "7")
    to_ready(order)
    pay(tables, "7")
    TableService.close(current.session_key, "tables", expected_rev=current.rev)
    before = DbState(current)
    again = TableService.close(current.session_key, "tables", expected_rev=current.rev)
    assert again.state == "abandoned"
    before.assert_unchanged()
    order.refresh_from_db()
    assert order.status == "completed"
