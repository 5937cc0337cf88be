"""A stale ``rev`` on every action: 409, the fresh cart with a banner, nothing applied; a retry with the fresh rev applies.
"""

from __future__ import annotations

import uuid

import pytest

from omniman.models import Order, Session
from omniman.services import ModifyService
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    HX,
    STALE_BANNER,
    logged_in,
    basket,
    fresh,
    ready,
    other_screen_touches,
    url,
    act,
    assert_cart,
    assert_changes,
    assert_page,
    shown_rev,
    FormReader,
)

pytestmark = [pytest.mark.django_db, CAFE]


def _stale_case(action: str) -> tuple[Session, str, str | None, dict]:
    """A session on which ``action`` would succeed at its rev; returns (session, url name, line, data)."""
    if action == "resolve":
        session = ready(("CHAI", 10))
        issue = session.data["issues"][0]["id"]
        return session, "resolve", None, {"issue_id": issue, "action_id": "remove"}
    if action == "commit":
        return ready("ESP"), "commit", None, {"idempotency_key": uuid.uuid4().hex}
    if action == "close_table":
        return basket("tables", table="3"), "close_table", None, {}
    session = basket("counter", "ESP", "CAP")
    line = session.lines[0]["line_id"]
    return {
        "add": (session, "add", None, {"sku": "MOCHA"}),
        "scan": (session, "add", None, {"q": "7890000000073"}),
        "qty_up": (session, "qty", line, {"delta": "1"}),
        "qty_down": (session, "qty", line, {"delta": "-1"}),
        "qty_exact": (session, "qty", line, {"qty": "4"}),
        "remove": (session, "remove", line, {}),
        "note": (session, "note", line, {"note": "hot"}),
        "price": (session, "price", line, {"price": "1.00", "reason": "r"}),
        "customer": (session, "customer", None, {"name": "Eve", "phone": "1", "notes": ""}),
        "check": (session, "check", None, {}),
        "park": (session, "park", None, {}),
    }[action]


STALE_ACTIONS = [
    "add", "scan", "qty_up", "qty_down", "qty_exact", "remove", "note", "price", "customer", "resolve", "commit", "park",
    "check", "close_table",
]


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("action", STALE_ACTIONS)
def test_stale_rev_is_409_with_the_fresh_cart_and_nothing_applied(cafe, action, htmx):
    client = logged_in("manager", "manager")  # managers may use every form, the price one included
    session, name, line, data = _stale_case(action)
    newer = other_screen_touches(session)
    before = DbState(session)
    orders = Order.objects.count()
    response = act(client, name, session, data, line=line, htmx=htmx)
    body = assert_cart(response, 409) if htmx else assert_page(response, 409)
    assert STALE_BANNER in body and 'class="banner banner-conflict"' in body
    assert shown_rev(body) == newer.rev  # the fresh cart, with the rev to retry with
    assert f'name="rev" value="{newer.rev}"' in body
    before.assert_unchanged()
    assert Order.objects.count() == orders


def test_stale_banner_uses_the_channels_word(pos):
    tab = basket("tables", "BURG", table="2")
    other_screen_touches(tab)
    body = assert_cart(act(pos, "add", tab, {"sku": "FRIES"}), 409)
    assert "This tab changed on another screen. Your change was not applied — here is the current tab." in body


def test_stale_remove_of_a_line_removed_elsewhere_is_409(pos):
    session = basket("counter", "ESP", "CAP")
    line = session.lines[0]["line_id"]
    ModifyService.modify_session(session.session_key, "counter", [{"op": "remove_line", "line_id": line}])
    before = DbState(session)
    body = assert_cart(act(pos, "remove", session, line=line), 409)
    assert STALE_BANNER in body
    before.assert_unchanged()


@pytest.mark.parametrize("name,data", [("qty", {"delta": "1"}), ("note", {"note": "x"})])
def test_stale_edit_of_a_line_removed_elsewhere_is_409(pos, name, data):
    session = basket("counter", "ESP", "CAP")
    line = session.lines[0]["line_id"]
    ModifyService.modify_session(session.session_key, "counter", [{"op": "remove_line", "line_id": line}])
    before = DbState(session)
    body = assert_cart(act(pos, name, session, data, line=line), 409)
    assert STALE_BANNER in body
    before.assert_unchanged()


def test_retry_with_the_fresh_rev_applies(pos):
    session = basket("counter", "ESP")
    page = assert_page(pos.get(url("session", session)))
    parser = FormReader()
    parser.feed(page)
    add_form = parser.by_id["add-form"]  # outside the cart: the grid and the search box submit it
    other_screen_touches(session)
    body = assert_cart(pos.post(add_form["action"], {**add_form["fields"], "sku": "CAP"}, **HX), 409)
    assert 'id="add-form"' not in body  # never swapped, so a queued scan is never dropped
    # The swapped-in cart's head holds the fresh rev, which app.js sends with every session form.
    assert shown_rev(body) == fresh(session).rev
    assert_changes(pos.post(add_form["action"], {**add_form["fields"], "rev": shown_rev(body), "sku": "CAP"}, **HX))
    assert [li["sku"] for li in fresh(session).lines] == ["ESP", "CAP"]
