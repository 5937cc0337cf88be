"""Sending (``pos.commit``): one order per idempotency key, the next basket, refusals that change nothing.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings
from django.urls import reverse

from omniman.models import Order, OrderEvent, Session
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    HX,
    DISPATCH,
    basket,
    fresh,
    ready,
    url,
    act,
    assert_cart,
    assert_changes,
    assert_page,
    press,
)

pytestmark = [pytest.mark.django_db, CAFE]


@pytest.mark.parametrize("htmx", [True, False])
def test_commit_makes_an_order_and_opens_a_fresh_basket(pos, htmx):
    session = ready("ESP", ("CAP", 2))
    page = assert_page(pos.get(url("session", session)))
    response = press(pos, page, "Place order", htmx=htmx)
    order = Order.objects.get(session_key=session.session_key)
    assert fresh(session).state == "committed"
    # The next basket is a screen until its first item (issue #17): no empty session is left behind.
    assert not Session.objects.filter(channel__code="counter", state="open").exists()
    new = reverse("pos:new", args=["counter"])
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == new
        location = response["HX-Redirect"]
    else:
        assert response.status_code == 302 and response["Location"] == new
        location = response["Location"]
    assert order.status == "confirmed" and order.total_q == 600 + 1900
    assert [(i.sku, i.qty) for i in order.items.order_by("id")] == [("ESP", 1), ("CAP", 2)]
    events = list(order.events.order_by("id").values_list("type", "actor", "payload"))
    assert [(kind, who) for kind, who, _ in events] == [("created", "user:pos"), ("status_changed", "user:pos")]
    assert events[0][2]["rev"] == session.rev and events[0][2]["items_count"] == 2
    assert events[1][2] == {"from": "new", "to": "confirmed", "reason": "auto_transitions.on_create"}
    page = assert_page(pos.get(location))
    assert f"Order {order.ref} sent." in page and "No items yet" in page


def test_commit_is_once_per_idempotency_key(pos):
    session = ready("ESP")
    key = uuid.uuid4().hex
    first = act(pos, "commit", session, {"idempotency_key": key}, htmx=False)
    second = act(pos, "commit", session, {"idempotency_key": key}, htmx=False)
    assert first.status_code == 302 and second.status_code == 302
    assert Order.objects.filter(session_key=session.session_key).count() == 1
    assert OrderEvent.objects.filter(type="created").count() == 1


def test_double_submit_leaves_no_empty_basket(pos):
    session = ready("ESP")
    key = uuid.uuid4().hex
    first = act(pos, "commit", session, {"idempotency_key": key}, htmx=False)
    second = act(pos, "commit", session, {"idempotency_key": key}, htmx=False)
    assert first["Location"] == second["Location"] == reverse("pos:new", args=["counter"])
    assert Session.objects.filter(channel__code="counter", state="open").count() == 0


@pytest.mark.parametrize("htmx", [True, False])
def test_commit_with_pending_checks_is_refused(pos, htmx):
    session = basket("counter", "ESP")
    before = DbState(session)
    response = act(pos, "commit", session, {"idempotency_key": uuid.uuid4().hex}, htmx=htmx)
    body = assert_cart(response, 409) if htmx else assert_page(response, 409)
    assert "The checks have not finished yet" in body
    before.assert_unchanged()


def test_commit_with_blocking_issues_is_refused(pos):
    session = ready(("KOMBU", 1))
    before = DbState(session)
    body = assert_cart(act(pos, "commit", session, {"idempotency_key": uuid.uuid4().hex}), 409)
    assert "Resolve the issues marked below before sending." in body
    before.assert_unchanged()


def test_commit_without_idempotency_key_is_422(pos):
    session = ready("ESP")
    before = DbState(session)
    assert_cart(act(pos, "commit", session, {"idempotency_key": ""}), 422)
    before.assert_unchanged()


def test_commit_of_an_empty_basket_is_refused(pos):
    session = basket("counter")
    before = DbState(session)
    body = assert_cart(act(pos, "commit", session, {"idempotency_key": uuid.uuid4().hex}), 409)
    assert "Add an item first." in body
    before.assert_unchanged()


def test_commit_from_a_second_screen_after_the_first_sent_it(pos):
    session = ready("ESP")
    assert act(pos, "commit", session, {"idempotency_key": uuid.uuid4().hex}, htmx=False).status_code == 302
    before = DbState(session)
    body = assert_cart(act(pos, "commit", session, {"idempotency_key": uuid.uuid4().hex}), 409)
    assert "This basket was already sent." in body
    before.assert_unchanged()


@pytest.mark.django_db(transaction=True)
def test_counter_commit_shows_ref_and_pickup_number_with_dispatch_on(pos):
    with override_settings(OMNIMAN=DISPATCH):
        session = basket("counter", "ESP")
        # The check ran right after the add's transaction (DISPATCH_ON_COMMIT).
        page = assert_page(pos.get(url("session", session)))
        assert "Stock: ok" in page
        response = press(pos, page, "Place order", htmx=True)
        order = Order.objects.get(session_key=session.session_key)
        from omniman.contrib.refs.services import RefService

        ticket = RefService.ticket_for(order.ref)
        assert ticket is not None
        location = response["HX-Redirect"]
        page = assert_page(pos.get(location))
        assert f"Order {order.ref} · pickup #{ticket}." in page
        assert location == reverse("pos:new", args=["counter"])
        # A fresh basket is ready: its first item opens it.
        opened = pos.post(reverse("pos:new_add", args=["counter"]), {"rev": 0, "sku": "CAP", "session_key": "SESS-NEXT"}, **HX)
        nxt = Session.objects.get(channel__code="counter", state="open")
        location = opened["HX-Push-Url"]
        assert location == url("session", nxt) and [line["sku"] for line in nxt.lines] == ["CAP"]
        # Adding to it works at once. With htmx the add's checks run in its request, and its
        # answer shows them: no follow-up request.
        body = assert_changes(act(pos, "add", nxt, {"sku": "CAP"}))
        assert "Stock: ok" in body and 'class="checks-follow"' not in body
        assert "Stock: ok" in assert_cart(pos.get(location, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
