"""The rules the kernel owns once: where a check stands, the totals to show, the HTTP status of a code. No database."""

from datetime import timedelta

import pytest
from django.utils import timezone

from omniman.adjustments import make_adjustment
from omniman.exceptions import (
    WORLD_CHANGED_CODES,
    CommitError,
    InvalidTransition,
    OmnimanError,
    SessionError,
    ValidationError,
    http_status,
)
from omniman.models import Channel, CheckState, Order, Session

CONFIG = {
    "required_checks_on_commit": ["stock", "fraud"],
    "checks": {"stock": {"label": "Stock"}},
}


def session_with(checks=None, issues=None, *, rev=3, totals=None):
    channel = Channel(code="c", name="C", config=CONFIG)
    data = {"checks": checks or {}, "issues": issues or []}
    if totals is not None:
        data["totals"] = totals
    return Session(session_key="S", channel=channel, rev=rev, data=data, total_q=1000)


def states(session, **kwargs):
    return [(c.code, c.state) for c in session.check_states(**kwargs)]


def test_a_check_that_never_ran_is_missing_and_blocks_the_commit():
    [stock, fraud] = session_with().check_states()
    assert (stock.code, stock.label, stock.state, stock.pending, stock.blocks_commit) == ("stock", "Stock", "missing", True, True)
    assert stock.commit_error == "missing_check" and fraud.label == "Fraud"


def test_a_check_of_an_older_rev_is_stale_not_pending():
    session = session_with({"stock": {"rev": 2, "status": "ok"}, "fraud": {"rev": 3, "status": "ok"}})
    assert states(session) == [("stock", "stale"), ("fraud", "ok")]
    assert session.check_state("stock").commit_error == "stale_check"
    assert session.check_state("fraud").commit_error is None


def test_an_expired_hold_is_expired_whatever_its_status():
    past = (timezone.now() - timedelta(seconds=1)).isoformat()
    future = (timezone.now() + timedelta(minutes=5)).isoformat()
    session = session_with({"stock": {"rev": 3, "status": "ok", "expires_at": past}, "fraud": {"rev": 3, "expires_at": future}})
    assert states(session) == [("stock", "expired"), ("fraud", "ok")]
    assert session.check_state("stock").commit_error == "hold_expired"
    naive_past = (timezone.now() - timedelta(hours=30)).replace(tzinfo=None).isoformat()
    assert session_with({"stock": {"rev": 3, "expires_at": naive_past}}).check_state("stock").state == "expired"
    assert session_with({"stock": {"rev": 3, "expires_at": "soon"}}).check_state("stock").state == "ok"  # unreadable: not expired


def test_a_fresh_check_reports_its_issues_or_its_own_status():
    issues = [{"id": "i1", "source": "stock", "severity": "blocking"}]
    session = session_with({"stock": {"rev": 3, "status": "ok"}, "fraud": {"rev": 3, "status": "failed"}}, issues)
    assert states(session) == [("stock", "issues"), ("fraud", "failed")]
    assert not any(c.blocks_commit for c in session.check_states())


def test_every_adds_the_checks_written_that_are_not_required():
    session = session_with({"extra": {"rev": 1}})
    assert states(session, every=True) == [("stock", "missing"), ("fraud", "missing"), ("extra", "stale")]
    extra = session.check_states(every=True)[2]
    assert extra.required is False and extra.blocks_commit is False and extra.commit_error is None


def test_check_state_is_a_copy():
    session = session_with({"stock": {"rev": 3, "result": {"holds": [1]}}})
    session.check_state("stock").check["result"]["holds"].append(2)
    assert session.data["checks"]["stock"]["result"]["holds"] == [1]
    assert CheckState.COMMIT_ERRORS == {"missing": "missing_check", "stale": "stale_check", "expired": "hold_expired"}


def test_session_totals_are_the_lines_plus_the_adjustments():
    session = session_with(totals={"items_q": 1, "service_q": 100, "total_q": 1100})  # data["totals"] is not read any more
    session.lines = [{"line_id": "L1", "sku": "A", "qty": "2", "unit_price_q": 500, "line_total_q": 1000, "meta": {}}]
    assert session.totals["items_q"] == session.totals["total_q"] == 1000 and session.totals["adjustments"] == []
    session.adjustments = [make_adjustment("service_charge", percent="10", auto=True)]
    totals = session.totals
    assert (totals["items_q"], totals["service_q"], totals["service_percent"], totals["total_q"]) == (1000, 100, "10", 1100)
    assert totals["currency"] == "BRL" and totals["adjustments"][0]["amount_q"] == 100


def test_order_totals_are_its_sessions_at_commit():
    # An order from before adjustments: its snapshot's data["totals"], as it showed then.
    order = Order(ref="O", total_q=1000, snapshot={"data": {"totals": {"items_q": 1000, "service_q": 100, "total_q": 1100}}})
    assert order.charged_q == 1100 and order.totals["service_q"] == 100 and order.adjustments == []
    assert Order(ref="P", total_q=700, snapshot={}).charged_q == 700
    # An order with adjustments: their committed amounts, and total_q includes them.
    service = {**make_adjustment("service_charge", percent="10", auto=True), "amount_q": 360}
    new = Order(ref="Q", total_q=3960, currency="BRL", snapshot={"items": [{"line_total_q": 3600}], "adjustments": [service], "data": {"totals": {"total_q": 1}}})
    assert new.charged_q == 3960 and new.totals["service_q"] == 360 and new.totals["items_q"] == 3600
    assert new.adjustments == [service]


@pytest.mark.parametrize(
    ("error", "api", "form"),
    [
        (ValidationError("invalid_qty"), 400, 422),
        (CommitError("validation_failed"), 400, 422),
        (InvalidTransition("invalid_transition"), 400, 422),
        (SessionError("not_found"), 404, 404),
        (SessionError("channel_not_found"), 404, 404),
        (InvalidTransition("stale_status"), 409, 409),
        (OmnimanError("pipeline_violation"), 500, 500),
    ],
)
def test_http_status_is_one_table(error, api, form):
    assert http_status(error) == api
    assert http_status(error, form=True) == form


def test_every_world_changed_code_is_409():
    assert {http_status(CommitError(code)) for code in WORLD_CHANGED_CODES} == {409}


def test_find_line_returns_the_stored_line_or_unknown_line_id():
    from omniman.services import find_line

    session = session_with()
    session.lines = [{"line_id": "L-1", "sku": "A", "qty": "1"}]
    assert find_line(session, "L-1")["sku"] == "A"
    with pytest.raises(ValidationError) as caught:
        find_line(session, "L-2")
    assert caught.value.code == "unknown_line_id" and caught.value.context == {"line_id": "L-2"}


def test_forbidden_transition_is_403_for_the_api_and_the_ui():
    assert http_status(InvalidTransition("forbidden_transition")) == 403
    assert http_status(InvalidTransition("forbidden_transition"), form=True) == 403
