"""The channel page (``pos.index``, ``pos.channel_view``, ``pos.open_session``): terminology, search, open a table, a new basket.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from omniman.models import Session
from omniman.services import SessionService
from tests.integration.web.helpers import (
    fresh,
    CAFE,
    HX,
    basket,
    url,
    text,
    template_names,
    assert_cart,
    assert_page,
)

pytestmark = [pytest.mark.django_db, CAFE]


def test_channel_pages_use_the_channels_terminology(pos):
    tables = text(pos.get(reverse("pos:channel", args=["tables"])))
    counter = text(pos.get(reverse("pos:channel", args=["counter"])))
    marketplace = text(pos.get(reverse("pos:channel", args=["marketplace"])))
    assert "<th>Tab</th>" in tables and "New tab" in tables and "No open tabs." in tables
    assert "<th>Basket</th>" in counter and "New basket" in counter
    assert "<th>Draft</th>" in marketplace and "New draft" in marketplace
    tab = basket("tables", "BURG", table="5")
    cart = assert_cart(pos.get(url("session", tab), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
    assert 'aria-label="Tab"' in cart and "Table 5" in cart and "Send round" in cart
    draft = SessionService.open_session(
        "marketplace", handle_type="marketplace", handle_ref="MKT-1", items=[{"sku": "BURG", "qty": 1, "unit_price_q": 3490}]
    )
    page = assert_page(pos.get(url("session", draft)))
    assert 'aria-label="Draft"' in page
    counter_cart = assert_cart(pos.get(url("session", basket("counter", "ESP")), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
    assert 'aria-label="Basket"' in counter_cart and "Place order" in counter_cart


def test_channel_search_by_table_name_or_phone(pos):
    t7 = basket("tables", "BURG", table="7")
    ana = basket("tables", table="40", data={"customer": {"name": "Ana Lima", "phone": "+55 11 2345-6890"}})
    bob = basket("tables", table="3", data={"customer": {"name": "Bob", "phone": "+55 21 98888-1111"}})
    page = pos.get(reverse("pos:channel", args=["tables"]))
    assert page.status_code == 200 and "pos/channel.html" in template_names(page)
    for key in (t7, ana, bob):
        assert key.session_key in text(page)

    def found(query, *, htmx=False):
        headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "sessions"} if htmx else {}
        response = pos.get(reverse("pos:channel", args=["tables"]), {"q": query}, **headers)
        assert response.status_code == 200
        return {s.session_key for s in (t7, ana, bob) if s.session_key in text(response)}, response

    assert found("7")[0] == {t7.session_key}
    assert found("ana")[0] == {ana.session_key}  # name, case-insensitive
    assert found("98888")[0] == {bob.session_key}  # phone
    keys, partial = found("lima", htmx=True)
    assert keys == {ana.session_key}
    body = text(partial)
    assert 'id="sessions"' in body and "<html" not in body
    assert "pos/channel.html#sessions" in template_names(partial)
    assert "HX-Request" in partial["Vary"]
    empty = text(found("zzz")[1])
    assert "Nothing matches “zzz”." in empty


def test_open_table_is_get_or_open(pos):
    response = pos.post(reverse("pos:open", args=["tables"]), {"table": "7"})
    tab = Session.objects.get(channel__code="tables", handle_ref="7", state="open")
    assert response.status_code == 302 and response["Location"] == url("session", tab)
    assert tab.handle_type == "table"
    # Occupied: the same tab, with htmx and without; no second session.
    again = pos.post(reverse("pos:open", args=["tables"]), {"table": " 7 "}, **HX)
    assert again.status_code == 200 and again["HX-Redirect"] == url("session", tab)
    assert pos.post(reverse("pos:open", args=["tables"]), {"table": "7"})["Location"] == url("session", tab)
    assert Session.objects.filter(channel__code="tables", handle_ref="7").count() == 1
    page = assert_page(pos.get(url("session", tab)))
    assert "Table 7" in page


def test_new_basket_opens_no_session_until_its_first_item(pos):
    """Issue #17, 2: every "New basket" tap made a session; 39 empty ones piled up on the list."""
    page = text(pos.get(reverse("pos:channel", args=["counter"])))
    new = reverse("pos:new", args=["counter"])
    assert f'href="{new}"' in page
    for _ in range(3):
        assert pos.get(new).status_code == 200
    assert pos.post(reverse("pos:open", args=["counter"]))["Location"] == new  # the old form lands there too
    assert not Session.objects.filter(channel__code="counter").exists()
    page = text(pos.get(new))
    key = re.search(r'name="session_key" value="([^"]+)"', page).group(1)
    assert key != re.search(r'name="session_key" value="([^"]+)"', text(pos.get(new))).group(1)  # one per screen
    refused = pos.post(reverse("pos:new_add", args=["counter"]), {"rev": 0, "q": "no such thing", "session_key": key})
    assert refused.status_code == 422 and "No product matches" in text(refused)
    assert not Session.objects.filter(channel__code="counter").exists()
    response = pos.post(reverse("pos:new_add", args=["counter"]), {"rev": 0, "sku": "ESP", "session_key": key}, **HX)
    session = Session.objects.get(channel__code="counter")
    assert session.session_key == key and response.status_code == 200
    assert response["HX-Push-Url"] == url("session", session) and 'id="cart"' in text(response)
    assert session.rev == 1 and [line["sku"] for line in session.lines] == ["ESP"]
    # A tap queued behind the first one (same screen, same key) adds to the basket it opened.
    again = pos.post(reverse("pos:new_add", args=["counter"]), {"rev": 1, "sku": "CAP", "session_key": key}, **HX)
    assert again.status_code == 200
    assert [line["sku"] for line in fresh(session).lines] == ["ESP", "CAP"]
    stale = pos.post(reverse("pos:new_add", args=["counter"]), {"rev": 1, "sku": "CAP", "session_key": key}, **HX)
    assert stale.status_code == 409 and len(fresh(session).lines) == 2
    assert Session.objects.filter(channel__code="counter").count() == 1
    # Without JavaScript: the first item opens it and the page goes to it.
    other = re.search(r'name="session_key" value="([^"]+)"', text(pos.get(new))).group(1)
    plain = pos.post(reverse("pos:new_add", args=["counter"]), {"rev": 0, "sku": "ESP", "session_key": other})
    assert plain.status_code == 302 and plain["Location"] == url("session", Session.objects.get(session_key=other))


def test_the_list_shows_only_sessions_with_something_in_them(pos):
    """Issue #17, 2: the Counter list held 39 open sessions, most empty."""
    empty = [SessionService.open_session("counter") for _ in range(3)]
    tab = SessionService.open_session("tables", handle_type="table", handle_ref="9")  # tapped on the map, nothing added
    full = basket("counter", "ESP")
    draft = SessionService.park(SessionService.open_session("counter").session_key, "counter")
    counter = text(pos.get(reverse("pos:channel", args=["counter"])))
    assert full.session_key in counter and draft.session_key in counter
    assert not any(s.session_key in counter for s in empty)
    assert tab.session_key not in text(pos.get(reverse("pos:channel", args=["tables"])))
