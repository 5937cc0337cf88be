"""Checks and issues on the screen (``pos.check_now``, ``pos.resolve``): check now, the follow-up check, issue actions.
"""

from __future__ import annotations

from datetime import timedelta
import re
import uuid

import pytest
from django.utils import timezone

from omniman import engine
from omniman.contrib.stock.models import StockLevel
from omniman.models import Directive, Order, Session
from omniman.services import ModifyService, SessionWriteService
from omniman.web import pos as pos_views
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    HX,
    STALE_BANNER,
    basket,
    fresh,
    settle,
    ready,
    other_screen_touches,
    url,
    act,
    text,
    assert_cart,
    assert_changes,
    assert_page,
    assert_back_to_session,
    FormReader,
    press,
)

pytestmark = [pytest.mark.django_db, CAFE]


@pytest.mark.parametrize("htmx", [True, False])
def test_check_now_runs_the_checks_in_process(pos, htmx):
    session = basket("counter", "ESP", ("CHAI", 2))
    assert "Stock: pending…" in assert_page(pos.get(url("session", session)))
    response = act(pos, "check", session, htmx=htmx)
    if htmx:
        body = assert_changes(response)
        assert '<li class="check check-ok">Stock: ok</li>' in body
        assert "Check now" not in body
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    assert after.rev == session.rev  # checking does not change the session's rev
    assert after.data["checks"]["stock"]["rev"] == after.rev and after.data["checks"]["stock"]["status"] == "ok"
    assert not Directive.objects.filter(status__in=("queued", "running"), payload__session_key=session.session_key).exists()
    page = assert_page(pos.get(url("session", session)))
    parser = FormReader()
    parser.feed(page)
    assert not next(b for b in parser.buttons if "Place order" in b["label"])["disabled"]


def test_check_now_reports_issues_with_their_action_buttons(pos):
    session = basket("counter", ("CHAI", 10), ("KOMBU", 1))  # 6 chai on hand, no kombucha
    body = assert_changes(act(pos, "check", session))
    assert '<li class="check check-issues">Stock: issues</li>' in body
    assert "Chai latte: only 6 of 10 available." in body and "Kombucha is out of stock." in body
    for label in ("Reduce to 6", "Remove line", "Replace with Iced tea", "Replace with Lemonade"):
        assert label in body
    parser = FormReader()
    parser.feed(body)
    assert next(b for b in parser.buttons if "Place order" in b["label"])["disabled"]


def test_check_now_after_the_hold_expired_holds_again(pos):
    session = ready("CHAI")
    data = fresh(session).data
    data["checks"]["stock"]["expires_at"] = (timezone.now() - timedelta(minutes=1)).isoformat()
    Session.objects.filter(pk=session.pk).update(data=data)
    page = assert_page(pos.get(url("session", session)))
    assert "Stock: expired" in page and "Check now" in page
    # Sending now is refused: the hold expired.
    before = DbState(session)
    body = assert_cart(act(pos, "commit", session, {"idempotency_key": uuid.uuid4().hex}), 409)
    assert "The stock hold expired" in body
    before.assert_unchanged()
    body = assert_changes(act(pos, "check", session))
    assert "Stock: ok" in body
    assert fresh(session).data["checks"]["stock"]["expires_at"] > timezone.now().isoformat()


@pytest.mark.parametrize("htmx", [True, False])
def test_resolve_a_stock_issue_with_its_button(pos, htmx):
    session = basket("counter", ("PAINCH", 3), "ESP")  # 2 pains au chocolat on hand; croissants are the alternative
    settle()
    page = assert_page(pos.get(url("session", session)))
    assert "Pain au chocolat: only 2 of 3 available." in page and "Stock: issues" in page
    response = press(pos, page, "Replace with Croissant", htmx=htmx)
    if htmx:
        body = assert_cart(response)
        assert "Croissant" in body and "Pain au chocolat" not in body and "Stock: pending…" in body
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    assert [(li["sku"], li["qty"], li["unit_price_q"]) for li in after.lines] == [("CRO", "3", 1100), ("ESP", "1", 600)]
    assert after.rev == session.rev + 1 and after.data["issues"] == []
    settle()
    assert fresh(session).data["checks"]["stock"]["status"] == "ok"


def test_a_change_resends_lines_whose_issue_flag_moved(pos):
    """An untouched line whose issue went away with the old rev is swapped too: the screen never keeps a stale mark."""
    session = basket("counter", ("KOMBU", 1), "ESP")  # no kombucha on hand
    settle()
    session = fresh(session)
    kombu, espresso = (li["line_id"] for li in session.lines)
    page = assert_page(pos.get(url("session", session)))
    assert f'class="line has-issue" id="line-{kombu}"' in page
    body = assert_changes(act(pos, "note", session, {"note": "to go"}, line=espresso))
    # The new rev has no issues yet (its check is queued): the kombucha line loses its mark.
    assert re.search(rf'<li class="line" id="line-{kombu}" hx-swap-oob="true">', body)
    assert f'id="line-{espresso}" hx-swap-oob="true"' in body and "✎ to go" in body
    assert "Kombucha is out of stock." not in body and "Stock: pending…" in body


def test_many_lines_changed_at_once_answer_the_whole_cart(pos):
    """Past ``DELTA_MAX_LINES`` changed lines the whole cart is sent (here: every line loses its issue mark)."""
    session = basket("counter", "ESP")
    many = [{"op": "add_line", "sku": f"X{i}", "name": f"Extra {i}", "qty": 1, "unit_price_q": 100} for i in range(pos_views.DELTA_MAX_LINES)]
    session = ModifyService.modify_session(session.session_key, "counter", many)
    issues = [
        {"code": "short", "line_id": li["line_id"], "message": "short", "actions": []}
        for i, li in enumerate(session.lines)
    ]
    assert SessionWriteService.write_check(
        session.session_key, "counter", check_code="stock", expected_rev=session.rev, result={}, status="issues", issues=issues
    )
    response = act(pos, "add", fresh(session), {"sku": "CAP"})
    body = assert_cart(response)
    assert "has-issue" not in body and fresh(session).rev == session.rev + 1
    # One mark fewer than the limit moves: a delta again.
    session = fresh(session)
    few = issues[: pos_views.DELTA_MAX_LINES - 2]
    assert SessionWriteService.write_check(
        session.session_key, "counter", check_code="stock", expected_rev=session.rev, result={}, status="issues", issues=few
    )
    body = assert_changes(act(pos, "add", fresh(session), {"sku": "ESP"}))
    assert body.count('hx-swap-oob="true">') >= len(few)


def test_resolve_reduce_then_send(pos):
    session = basket("counter", ("CHAI", 10))
    body = assert_changes(act(pos, "check", session))
    response = press(pos, body, "Reduce to 6", htmx=True)
    assert_cart(response)
    assert fresh(session).lines[0]["qty"] == "6"
    body = assert_changes(act(pos, "check", fresh(session)))
    assert "Stock: ok" in body
    response = press(pos, body, "Place order", htmx=True)
    assert response.status_code == 200 and response["HX-Redirect"]
    assert Order.objects.get(session_key=session.session_key).items.get().qty == 6


def test_resolve_unknown_action_refuses_and_changes_nothing(pos):
    session = basket("counter", ("KOMBU", 1))
    settle()
    session = fresh(session)
    issue = session.data["issues"][0]["id"]
    before = DbState(session)
    response = act(pos, "resolve", session, {"issue_id": issue, "action_id": "nope"})
    assert response.status_code == 409 and 'id="cart"' in text(response)  # on a screen: the world changed
    before.assert_unchanged()


def test_resolving_an_issue_that_went_away_answers_a_fresh_cart(pos):
    session = basket("counter", ("KOMBU", 1))
    settle()
    session = fresh(session)
    body = assert_page(pos.get(url("session", session)))
    # Stock arrives and another screen re-checks (same rev): the issue is gone.
    StockLevel.objects.filter(sku="KOMBU").update(on_hand=5)
    data = session.data
    data["checks"] = {}
    Session.objects.filter(pk=session.pk).update(data=data)
    act(pos, "check", session)
    assert fresh(session).data["issues"] == []
    response = press(pos, body, "Remove line", htmx=True)
    assert response.status_code in (200, 409)
    assert 'id="cart"' in text(response)


def test_a_follow_up_check_overtaken_by_a_change_answers_204(pos, monkeypatch):
    """The change landed while the checks ran: its own answer (and its own follow-up) shows the screen."""
    session = basket("counter", "ESP")
    dispatch = engine.dispatch

    def dispatch_then_another_change(directive_id):
        outcome = dispatch(directive_id)
        other_screen_touches(session)
        return outcome

    monkeypatch.setattr(engine, "dispatch", dispatch_then_another_change)
    response = pos.post(url("check", session), {"rev": session.rev, "auto": "1"}, **HX)
    assert response.status_code == 204 and response.content == b""
    assert Directive.objects.get(topic="stock.hold", payload__rev=session.rev).status == "done"  # the check itself ran


def test_a_follow_up_check_for_a_rev_that_moved_on_answers_204(pos):
    session = basket("counter", "ESP")
    old_rev = session.rev
    other_screen_touches(session)
    before = DbState(session)
    response = pos.post(url("check", session), {"rev": old_rev, "auto": "1"}, **HX)
    assert response.status_code == 204 and response.content == b""
    before.assert_unchanged()
    # The button ("Check now", not auto) on a stale screen is a conflict, as every other form.
    assert STALE_BANNER in assert_cart(act(pos, "check", session), 409)
