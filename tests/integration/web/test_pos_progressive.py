"""Progressive enhancement and safety: a whole sale without JavaScript, CSRF, escaping, the demo's screens end to end.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from omniman.models import Order, Session
from omniman.services import SessionService
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    HX,
    XSS,
    XSS_ESCAPED,
    logged_in,
    basket,
    fresh,
    url,
    act,
    text,
    assert_cart,
    assert_changes,
    assert_page,
    assert_back_to_session,
    press,
)

pytestmark = [pytest.mark.django_db, CAFE]


def test_whole_sale_without_javascript(pos):
    opened = pos.post(reverse("pos:open", args=["counter"]))
    page = assert_page(pos.get(opened["Location"]))  # a new basket: a screen until its first item
    # The grid's product button submits the cart's add form: the first item opens the basket.
    response = press(pos, page, "Espresso")
    session = Session.objects.get(channel__code="counter", state="open")
    assert_back_to_session(response, session)
    page = assert_page(pos.get(response["Location"]))
    # The search box is the add form's "q": a scanned barcode.
    response = press(pos, page, "Add", {"q": "7890000000042"})
    page = assert_page(pos.get(response["Location"]))
    cap = fresh(session).lines[1]["line_id"]
    response = press(pos, page, "+", action=url("qty", session, cap))
    assert_back_to_session(response, session)
    page = assert_page(pos.get(response["Location"]))
    assert [(li["sku"], li["qty"]) for li in fresh(session).lines] == [("ESP", "1"), ("CAP", "2")]
    # Check now, then send.
    response = press(pos, page, "Check now")
    page = assert_page(pos.get(response["Location"]))
    response = press(pos, page, "Place order")
    assert response.status_code == 302
    order = Order.objects.get(session_key=session.session_key)
    assert order.total_q == 600 + 1900
    page = assert_page(pos.get(response["Location"]))
    assert f"Order {order.ref} sent." in page


def test_csrf_is_enforced_and_the_rendered_token_works(cafe):
    client = logged_in("pos", "pos", enforce_csrf_checks=True)
    session = basket("counter", "ESP")
    before = DbState(session)
    assert client.post(url("add", session), {"rev": session.rev, "sku": "CAP"}).status_code == 403
    assert client.post(url("add", session), {"rev": session.rev, "sku": "CAP"}, **HX).status_code == 403
    before.assert_unchanged()
    page = assert_page(client.get(url("session", session)))
    # The form token (no JavaScript)...
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url("add", session), {"rev": session.rev, "sku": "CAP", "csrfmiddlewaretoken": token})
    assert_back_to_session(response, session)
    # ...and the header htmx sends from <body hx-headers>.
    header = re.search(r"<body hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'", page).group(1)
    response = client.post(url("add", session), {"rev": session.rev + 1, "sku": "MOCHA"}, HTTP_X_CSRFTOKEN=header, **HX)
    assert_changes(response)
    assert [li["sku"] for li in fresh(session).lines] == ["ESP", "CAP", "MOCHA"]


def test_customer_and_channel_text_is_escaped(pos):
    session = basket("tables", "BURG", table="1")
    body = assert_cart(act(pos, "customer", session, {"name": XSS, "phone": XSS, "notes": XSS}))  # shown outside the lines: the whole cart
    assert XSS not in body and XSS_ESCAPED in body
    session = fresh(session)
    body = assert_changes(act(pos, "note", session, {"note": XSS}, line=session.lines[0]["line_id"]))
    assert XSS not in body and f"✎ {XSS_ESCAPED}" in body
    page = text(pos.get(url("session", session)))
    listing = text(pos.get(reverse("pos:channel", args=["tables"]), {"q": XSS}))
    listing_all = text(pos.get(reverse("pos:channel", args=["tables"])))
    for body in (page, listing_all):
        assert XSS not in body and XSS_ESCAPED in body
    assert f"✎ {XSS_ESCAPED}" in page
    assert XSS not in listing
    # A table "name" typed in the open form.
    opened = pos.post(reverse("pos:open", args=["tables"]), {"table": "<b>x</b>"})
    page = text(pos.get(opened["Location"]))
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    # Item names and customers delivered by a channel.
    draft = SessionService.open_session(
        "marketplace",
        handle_type="marketplace",
        handle_ref="MKT-X",
        data={"customer": {"name": XSS}},
        items=[{"sku": "BURG", "name": XSS, "qty": 1, "unit_price_q": 3490}],
    )
    page = text(pos.get(url("session", draft)))
    assert XSS not in page and page.count(XSS_ESCAPED) >= 2
    # Search text echoed back in a banner.
    body = text(act(pos, "add", fresh(session), {"q": XSS}))
    assert XSS not in body and XSS_ESCAPED in body


def test_demo_screens(cafe_demo_client):
    client = cafe_demo_client
    for code, word in (("counter", "Basket"), ("tables", "Tab"), ("web", "Basket"), ("marketplace", "Draft")):
        listing = client.get(reverse("pos:channel", args=[code]))
        assert listing.status_code == 200 and f"<th>{word}</th>" in text(listing)
    for session in Session.objects.filter(state="open"):
        assert_page(client.get(url("session", session)))
    # Table 2 is occupied: "open table 2" goes to its tab, which shows the round sent today.
    response = client.post(reverse("pos:open", args=["tables"]), {"table": "2"})
    tab = Session.objects.get(channel__code="tables", handle_ref="2", state="open")
    assert response["Location"] == url("session", tab)
    page = assert_page(client.get(response["Location"]))
    round_ = Order.objects.get(channel__code="tables", handle_ref="2")
    assert "Sent today" in page and round_.ref in page and "2 × Burger" in page and "Table total</dt>" in page
    tab5 = Session.objects.get(channel__code="tables", handle_ref="5", state="open")
    assert "✎ one without onions" in text(client.get(url("session", tab5)))
    # Search the open tabs and baskets.
    assert tab5.session_key in text(client.get(reverse("pos:channel", args=["tables"]), {"q": "5"}))
    counter = text(client.get(reverse("pos:channel", args=["counter"]), {"q": "ana"}))
    ana = Session.objects.get(channel__code="counter", state="open")
    assert ana.session_key in counter
    web = Session.objects.get(channel__code="web", state="open")
    assert web.session_key in text(client.get(reverse("pos:channel", args=["web"]), {"q": "98888"}))
    # Ana's basket is short of pains au chocolat: replace them with croissants, check, send.
    page = assert_page(client.get(url("session", ana)))
    assert "Pain au chocolat: only 2 of 3 available." in page
    body = assert_cart(press(client, page, "Replace with Croissant", htmx=True))
    assert "Croissant" in body and "Stock: pending…" in body
    body = assert_changes(press(client, body, "Check now", htmx=True))
    assert "Stock: ok" in body
    response = press(client, body, "Place order", htmx=True)
    order = Order.objects.get(session_key=ana.session_key)
    assert sorted(order.items.values_list("sku", flat=True)) == ["CRO", "ESP"]
    assert f"Order {order.ref}" in text(client.get(response["HX-Redirect"]))
