"""The POS screens over HTTP.

Every action is driven with and without ``HX-Request``: an htmx POST answers
the ``cart`` partial (or an ``HX-Redirect`` for commit, park and close table),
a plain POST redirects (post/redirect/get). A stale ``rev`` answers 409 with
the fresh cart and a banner and applies nothing; bad input answers 422 with the
message in place; the kitchen role gets 403 and an anonymous user the login
page. The assertions look at the database (session rev and lines, Orders,
OrderEvents, directives), not only at status codes.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client, override_settings
from django.test.signals import template_rendered
from django.urls import reverse
from django.utils import timezone

from template_partials.templatetags.partials import TemplateProxy

from omniman import engine
from omniman.contrib.catalog.models import Category, Product
from omniman.contrib.demo.management.commands.seed_demo import CHANNELS
from omniman.contrib.demo.menu import ALTERNATIVES, CATEGORIES, PRODUCTS
from omniman.contrib.stock.models import StockLevel
from omniman.models import Channel, Directive, Order, OrderEvent, Session
from omniman.web import pos as pos_views
from omniman.services import ModifyService, SessionService, SessionWriteService
from tests.factories import DbState

# The POS screens over the demo café (its catalog, prices and stock).
pytestmark = [pytest.mark.django_db, pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock")]

HX = {"HTTP_HX_REQUEST": "true"}
DISPATCH = {"DISPATCH_ON_COMMIT": ["stock.hold", "pricing.check", "refs.assign_ticket"]}
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
STALE_BANNER = "changed on another screen"
LOGIN = "/accounts/login/"


# -- the café: the demo's catalog, stock and channels, without its activity -----------


@pytest.fixture
def cafe():
    """Categories, 41 products, stock levels and the four demo channels (no sessions, no orders)."""
    categories = {
        code: Category.objects.create(code=code, name=name, sort_order=order) for code, name, order in CATEGORIES
    }
    Product.objects.bulk_create(
        Product(
            sku=sku,
            name=name,
            category=categories[category],
            price_q=price_q,
            station=station,
            barcode=barcode,
            sort_order=position,
        )
        for position, (sku, name, category, price_q, station, barcode, _on_hand) in enumerate(PRODUCTS)
    )
    StockLevel.objects.bulk_create(
        StockLevel(sku=sku, on_hand=on_hand, track=True)
        for sku, _n, _c, _p, _s, _b, on_hand in PRODUCTS
        if on_hand is not None
    )
    by_sku = {p.sku: p for p in Product.objects.all()}
    for sku, alternatives in ALTERNATIVES.items():
        by_sku[sku].alternatives.set([by_sku[alt] for alt in alternatives])
    for spec in CHANNELS:
        Channel.objects.create(**spec)


def make_user(username: str, *roles: str, superuser: bool = False):
    user = get_user_model().objects.create_user(username=username, is_superuser=superuser, is_staff=superuser)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def logged_in(username: str, *roles: str, superuser: bool = False, **client_kwargs) -> Client:
    client = Client(**client_kwargs)
    client.force_login(make_user(username, *roles, superuser=superuser))
    return client


@pytest.fixture
def pos(cafe) -> Client:
    return logged_in("pos", "pos")


@pytest.fixture
def manager(cafe) -> Client:
    return logged_in("manager", "manager")


@pytest.fixture
def kitchen(cafe) -> Client:
    return logged_in("kitchen", "kitchen")


@pytest.fixture
def anon(cafe) -> Client:
    return Client()


# -- builders and helpers ------------------------------------------------------------------


def basket(channel: str = "counter", *lines: str | tuple[str, int], table: str = "", data=None) -> Session:
    """An open session with ``lines`` (a SKU, or ``(sku, qty)``), priced by the catalog like the POS does."""
    session = SessionService.open_session(
        channel, handle_type="table" if table else "", handle_ref=table, data=data, actor="test"
    )
    if lines:
        ops = []
        for entry in lines:
            sku, qty = (entry, 1) if isinstance(entry, str) else entry
            ops.append({"op": "add_line", "sku": sku, "qty": qty, "name": Product.objects.get(sku=sku).name})
        session = ModifyService.modify_session(session.session_key, channel, ops, ctx={"actor": "test"})
    return fresh(session)


def fresh(session: Session) -> Session:
    return Session.objects.select_related("channel").get(pk=session.pk)


def settle() -> None:
    """Run every due directive (the checks, post-commit work), as a worker would."""
    while engine.process(limit=200).claimed:
        pass


def ready(*lines, channel: str = "counter", table: str = "") -> Session:
    """A session whose checks ran for its current rev: it can be sent."""
    session = basket(channel, *lines, table=table)
    settle()
    return fresh(session)


def other_screen_touches(session: Session) -> Session:
    """Another screen changes the session: its rev goes up (the given object keeps the old rev)."""
    return ModifyService.modify_session(
        session.session_key, session.channel.code, [{"op": "set_data", "path": "touched", "value": True}]
    )


def url(name: str, session: Session, line_id: str | None = None) -> str:
    args = [session.channel.code, session.session_key]
    if line_id is not None:
        args.append(line_id)
    return reverse(f"pos:{name}", args=args)


def act(client: Client, name: str, session: Session, data=None, *, htmx: bool = True, line=None, rev=None):
    """POST one of the session screen's forms as the screen would: with the ``rev`` it shows."""
    payload = {"rev": session.rev if rev is None else rev, **(data or {})}
    return client.post(url(name, session, line), payload, **(HX if htmx else {}))


def text(response) -> str:
    return response.content.decode()


@pytest.fixture(autouse=True)
def partials_are_recorded(monkeypatch):
    """Let ``response.templates`` list partials too.

    Django's test client learns what was rendered from the ``template_rendered``
    signal, which its instrumented ``Template._render`` sends; the proxies of
    django-template-partials render their nodelist directly, so send it for them.
    """
    original = TemplateProxy._render

    def _render(self, context):
        template_rendered.send(sender=self, template=self, context=context)
        return original(self, context)

    monkeypatch.setattr(TemplateProxy, "_render", _render)


def template_names(response) -> list[str]:
    """``pos/session.html`` for a template, ``pos/session.html#cart`` for a partial."""
    return [
        f"{t.origin.template_name}#{t.name}" if isinstance(t, TemplateProxy) else t.name
        for t in response.templates
        if t.name
    ]


def assert_cart(response, status: int = 200) -> str:
    """The htmx answer: the cart partial alone, rendered from ``pos/session.html#cart``."""
    body = text(response)
    assert response.status_code == status, body[:3000]
    assert 'id="cart"' in body
    assert "<html" not in body and 'id="grid"' not in body
    assert "pos/session.html#cart" in template_names(response)
    assert response["X-Omniman-Rev"] == str(shown_rev(body))
    return body


def assert_changes(response) -> str:
    """The htmx answer to a change: only the regions it touched, as out-of-band swaps.

    Rendered from ``pos/session.html#cart_delta``; nothing is swapped into the
    form's target (``HX-Reswap: none``); the head (with the new rev), issues,
    banner and footer always come along.
    """
    body = text(response)
    assert response.status_code == 200, body[:3000]
    assert "pos/session.html#cart_delta" in template_names(response)
    assert response["HX-Reswap"] == "none"
    assert 'id="cart"' not in body and "<html" not in body
    for region in ("cart-banner", "cart-head", "cart-issues", "cart-foot"):
        assert re.search(rf'id="{region}"[^>]*hx-swap-oob="true"', body), region
    assert response["X-Omniman-Rev"] == str(shown_rev(body))  # app.js drops an answer older than the screen
    return body


def assert_page(response, status: int = 200) -> str:
    """The full session screen (a non-htmx answer)."""
    body = text(response)
    assert response.status_code == status, body[:3000]
    assert "<html" in body and 'id="cart"' in body and 'id="grid"' in body
    assert "{#" not in body and "{%" not in body  # no template syntax leaks (a {# #} comment is one line only)
    assert "pos/session.html" in template_names(response)
    return body


def assert_back_to_session(response, session: Session) -> None:
    assert response.status_code == 302, text(response)[:2000]
    assert response["Location"] == url("session", session)


def qty_of(session: Session, line_id: str) -> str | None:
    for line in fresh(session).lines:
        if line["line_id"] == line_id:
            return line["qty"]
    return None


def shown_rev(body: str) -> int:
    """The rev the screen shows: the cart head's, in a whole cart and in a delta alike."""
    return int(re.search(r'id="cart-head"[^>]*data-rev="(\d+)"', body).group(1))


# A tiny HTML form reader, to press the buttons the screen renders ---------------------------


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.buttons: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._button: dict[str, Any] | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._form = {"action": a.get("action", ""), "hx_post": a.get("hx-post"), "fields": {}}
            self.forms.append(self._form)
            if a.get("id"):
                self.by_id[a["id"]] = self._form
        elif tag == "input" and a.get("name"):
            owner = self.by_id.get(a["form"]) if a.get("form") else self._form
            if owner is not None and a.get("type") != "search":
                owner["fields"][a["name"]] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            if self._form is not None:
                self._form["fields"][a["name"]] = ""
        elif tag == "button":
            self._button = {
                "form_id": a.get("form"),
                "form": self._form,
                "name": a.get("name"),
                "value": a.get("value", ""),
                "label": "",
                "disabled": "disabled" in a,
            }
            self.buttons.append(self._button)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "button":
            self._button = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data):
        if self._button is not None:
            self._button["label"] += data
        if self._textarea is not None and self._form is not None:
            self._form["fields"][self._textarea] += data


def press(client: Client, body: str, label: str, extra: dict | None = None, *, htmx: bool = False, action: str = ""):
    """Submit the form of the first button whose label contains ``label`` (and whose form posts to
    ``action``, if given), with the values the page rendered."""
    parser = _Forms()
    parser.feed(body)
    for button in parser.buttons:
        form = parser.by_id[button["form_id"]] if button["form_id"] else button["form"]
        if label in " ".join(button["label"].split()) and (not action or form["action"] == action):
            assert not button["disabled"], f"the {label!r} button is disabled"
            data = dict(form["fields"])
            if button["name"]:
                data[button["name"]] = button["value"]
            data.update(extra or {})
            action = form["action"]
            if htmx:
                assert form["hx_post"] == action  # progressive enhancement: the same URL either way
            return client.post(action, data, **(HX if htmx else {}))
    raise AssertionError(f"no button {label!r} on the page")


# ======================================================================================
# Access: anonymous → login, kitchen → 403, pos and manager → in
# ======================================================================================


def _every_url(session: Session) -> list[tuple[str, str]]:
    line = session.lines[0]["line_id"]
    posts = ["add", "customer", "resolve", "check", "commit", "park", "close_table"]
    line_posts = ["qty", "remove", "note", "price"]
    return [
        ("get", reverse("pos:index")),
        ("get", reverse("pos:channel", args=["counter"])),
        ("post", reverse("pos:open", args=["counter"])),
        ("get", url("session", session)),
        ("get", url("search", session) + "?q=esp"),
        *[("post", url(name, session)) for name in posts],
        *[("post", url(name, session, line)) for name in line_posts],
    ]


def _mutating_payload(session: Session) -> dict[str, str]:
    """Whatever any form could send, valid for the session."""
    return {
        "rev": str(session.rev),
        "sku": "CAP",
        "delta": "1",
        "note": "x",
        "price": "1.00",
        "reason": "r",
        "name": "Eve",
        "idempotency_key": uuid.uuid4().hex,
        "table": "9",
    }


def test_anonymous_is_sent_to_login_from_every_pos_url(anon):
    session = basket("counter", "ESP")
    before = DbState(session)
    for method, path in _every_url(session):
        response = getattr(anon, method)(path, _mutating_payload(session) if method == "post" else None)
        assert response.status_code == 302, path
        assert response["Location"].startswith(f"{LOGIN}?next="), path
        # htmx: an HX-Redirect that reloads the page into the login (never a login page swapped into a region)
        response = getattr(anon, method)(path, _mutating_payload(session) if method == "post" else None, **HX)
        assert response.status_code == 200 and response["HX-Redirect"].startswith(f"{LOGIN}?next="), path
        assert response.content == b"", path
    before.assert_unchanged()


def test_kitchen_role_gets_403_everywhere_and_nothing_changes(kitchen):
    session = basket("counter", "ESP")
    before = DbState(session)
    for method, path in _every_url(session):
        response = getattr(kitchen, method)(path, _mutating_payload(session) if method == "post" else None, **HX)
        assert response.status_code == 403, path
        response = getattr(kitchen, method)(path, _mutating_payload(session) if method == "post" else None)
        assert response.status_code == 403, path
    before.assert_unchanged()


@pytest.mark.parametrize("roles,superuser", [(("pos",), False), (("manager",), False), ((), True)])
def test_pos_manager_and_superuser_reach_the_pos(cafe, roles, superuser):
    client = logged_in("someone", *roles, superuser=superuser)
    response = client.get(reverse("pos:index"))
    assert response.status_code == 200
    body = text(response)
    for name in ("Counter", "Tables", "Web shop", "Delivery marketplace"):
        assert name in body
    # Terminology: each channel's word for its sessions.
    assert "Tabs" in body and "Baskets" in body and "Drafts" in body
    assert client.get("/").status_code == 302 and client.get("/")["Location"] == reverse("pos:index")


def test_index_with_a_single_channel_goes_straight_to_it(pos):
    Channel.objects.exclude(code="tables").update(is_active=False)
    response = pos.get(reverse("pos:index"))
    assert response.status_code == 302 and response["Location"] == reverse("pos:channel", args=["tables"])


def test_post_only_actions_refuse_get(pos):
    session = basket("counter", "ESP")
    assert pos.get(url("add", session)).status_code == 405
    assert pos.get(url("commit", session)).status_code == 405
    assert pos.post(url("session", session)).status_code == 405


def test_unknown_channel_or_session_is_404(pos):
    session = basket("counter", "ESP")
    assert pos.get(reverse("pos:channel", args=["nope"])).status_code == 404
    assert pos.get(reverse("pos:session", args=["counter", "SESS-nope"])).status_code == 404
    # A session is addressed by its channel too.
    assert pos.get(reverse("pos:session", args=["tables", session.session_key])).status_code == 404
    before = DbState(session)
    response = pos.post(reverse("pos:add", args=["tables", session.session_key]), {"rev": session.rev, "sku": "CAP"}, **HX)
    assert response.status_code == 404
    before.assert_unchanged()


# ======================================================================================
# Channel page: terminology, search, open table / new basket
# ======================================================================================


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


def test_new_basket_opens_a_new_session_each_time(pos):
    first = pos.post(reverse("pos:open", args=["counter"]))
    second = pos.post(reverse("pos:open", args=["counter"]), **HX)
    sessions = list(Session.objects.filter(channel__code="counter", state="open").order_by("id"))
    assert len(sessions) == 2 and all(s.handle_ref == "" for s in sessions)
    assert first["Location"] == url("session", sessions[0])
    assert second["HX-Redirect"] == url("session", sessions[1])


# ======================================================================================
# The session screen (GET): page, cart partial, grid partial, search results
# ======================================================================================


def test_session_page_renders_cart_grid_rev_and_commit_key(pos):
    session = basket("counter", "ESP", ("CAP", 2))
    response = pos.get(url("session", session))
    body = assert_page(response)
    assert "HX-Request" in response["Vary"]
    assert shown_rev(body) == session.rev
    assert f'name="rev" value="{session.rev}"' in body
    assert re.search(r'name="idempotency_key" value="[0-9a-f]{32}"', body)
    assert "Espresso" in body and "Cappuccino" in body
    assert "R$25.00" in body  # 6.00 + 2 × 9.50
    assert "Stock: pending…" in body and "Check now" in body
    # The grid shows the first category (Coffee) and the category links.
    assert 'class="cat active"' in body and ">Coffee</a>" in body and "Mocha" in body
    assert "Burger" not in body
    # The commit button waits for the checks.
    parser = _Forms()
    parser.feed(body)
    commit_button = next(b for b in parser.buttons if "Place order" in b["label"])
    assert commit_button["disabled"]
    # Only managers see the price form.
    assert 'name="price"' not in body
    # Each load mints a new idempotency key.
    other = text(pos.get(url("session", session)))
    key = re.compile(r'name="idempotency_key" value="([0-9a-f]{32})"')
    assert key.search(body).group(1) != key.search(other).group(1)


def test_cart_and_grid_partials(pos):
    session = basket("counter", "ESP")
    cart = pos.get(url("session", session), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart")
    body = assert_cart(cart)
    assert "Espresso" in body and shown_rev(body) == session.rev
    grid = pos.get(url("session", session), {"category": "mains"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="grid")
    body = text(grid)
    assert grid.status_code == 200 and 'id="grid"' in body and "<html" not in body and 'id="cart"' not in body
    assert "pos/session.html#grid" in template_names(grid)
    assert "Burger" in body and "Espresso" not in body
    assert 'class="cat active"' in body and ">Mains</a>" in body
    # Without htmx the same query gives the whole page on that category (works without JavaScript).
    page = assert_page(pos.get(url("session", session), {"category": "mains"}))
    assert "Burger" in page


@pytest.mark.parametrize(
    "query,expected",
    [("esp", "Espresso"), ("7890000000042", "Cappuccino"), ("cappuc", "Cappuccino"), ("croiss", "Croissant")],
)
def test_search_results_partial(pos, query, expected):
    session = basket("counter")
    response = pos.get(url("search", session), {"q": query}, **HX)
    body = text(response)
    assert response.status_code == 200 and 'id="results"' in body and "<html" not in body
    assert "pos/session.html#results" in template_names(response)
    first = re.search(r'class="result first"[^>]*>\s*<span class="name">([^<]+)</span>', body).group(1)
    assert first == expected
    # Without JavaScript a result submits the add form; with it, app.js sends it from the add form,
    # with the query the results answer (not the search box: a scanner may be typing the next code).
    assert 'form="add-form" name="sku"' in body
    assert f'data-send="{url("add", session)}" data-query="{query}"' in body


def test_search_without_match_says_so_and_escapes_the_query(pos):
    session = basket("counter")
    body = text(pos.get(url("search", session), {"q": "zzz" + XSS}, **HX))
    assert "No product matches" in body
    assert XSS not in body and XSS_ESCAPED in body


# ======================================================================================
# Add: by SKU (grid button) and by scan / search text (q)
# ======================================================================================


def test_add_by_sku_htmx_returns_what_changed(pos):
    session = basket("counter", "ESP")
    response = act(pos, "add", session, {"sku": "CAP", "qty": "1"})
    body = assert_changes(response)
    after = fresh(session)
    assert after.rev == session.rev + 1
    assert [(line["sku"], line["qty"], line["unit_price_q"]) for line in after.lines] == [("ESP", "1", 600), ("CAP", "1", 950)]
    assert after.lines[1]["meta"]["station"] == "bar"
    assert "Cappuccino" in body and shown_rev(body) == after.rev
    assert f'name="rev" value="{after.rev}"' in body
    # The new line is appended to the list; the untouched one is not sent again.
    espresso, cappuccino = (line["line_id"] for line in after.lines)
    assert re.search(rf'<ul hx-swap-oob="beforeend:#lines">\s*<li class="line" id="line-{cappuccino}">', body)
    assert f'id="line-{espresso}"' not in body and "Espresso" not in body
    assert "R$15.50" in body  # the footer's total
    assert "pos:added" in response["HX-Trigger"]
    # The checks of the new rev were enqueued, not run (no dispatch in tests).
    assert Directive.objects.filter(topic="stock.hold", payload__rev=after.rev, status="queued").count() == 1


def test_add_by_sku_without_htmx_redirects_then_shows_it(pos):
    session = basket("counter")
    response = act(pos, "add", session, {"sku": "CAP"}, htmx=False)
    assert_back_to_session(response, session)
    assert [line["sku"] for line in fresh(session).lines] == ["CAP"]
    page = assert_page(pos.get(response["Location"]))
    assert "Cappuccino" in page and "R$9.50" in page


@pytest.mark.parametrize(
    "query,sku", [("ESP", "ESP"), ("esp", "ESP"), ("7890000000042", "CAP"), ("cappuccino", "CAP"), ("pão de", "PDQ")]
)
@pytest.mark.parametrize("htmx", [True, False])
def test_add_by_scan_or_name(pos, query, sku, htmx):
    session = basket("counter")
    response = act(pos, "add", session, {"q": query}, htmx=htmx)
    if htmx:
        assert_cart(response)  # the first line: the empty cart becomes a list
    else:
        assert_back_to_session(response, session)
    assert [line["sku"] for line in fresh(session).lines] == [sku]


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize(
    "data,message",
    [
        ({"q": "no-such-thing"}, "No product matches “no-such-thing”."),
        ({"sku": "NOPE"}, "No product matches “NOPE”."),
        ({}, "Pick a product."),
        ({"sku": "CAP", "qty": "abc"}, "qty must be a positive number"),
        ({"sku": "CAP", "qty": "0"}, "qty must be a positive number"),
    ],
)
def test_add_bad_input_is_422_and_nothing_changes(pos, data, message, htmx):
    session = basket("counter", "ESP")
    before = DbState(session)
    response = act(pos, "add", session, data, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert message in body and 'class="banner banner-error"' in body
    before.assert_unchanged()


def test_add_an_inactive_product_is_422(pos):
    Product.objects.filter(sku="CAP").update(is_active=False)
    session = basket("counter")
    before = DbState(session)
    body = assert_cart(act(pos, "add", session, {"sku": "CAP"}), 422)
    assert "No product matches" in body
    before.assert_unchanged()


def test_form_without_rev_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    response = pos.post(url("add", session), {"sku": "CAP"}, **HX)
    assert "missing the session&#x27;s revision" in assert_cart(response, 422)
    response = pos.post(url("add", session), {"sku": "CAP", "rev": "x"}, **HX)
    assert_cart(response, 422)
    before.assert_unchanged()


def test_add_on_a_locked_draft_is_refused(pos):
    draft = SessionService.open_session(
        "marketplace", handle_type="marketplace", handle_ref="MKT-9", items=[{"sku": "BURG", "qty": 1, "unit_price_q": 3490}]
    )
    before = DbState(draft)
    body = assert_cart(act(pos, "add", draft, {"sku": "CAP"}), 409)
    assert "come from the channel and cannot be edited here" in body
    before.assert_unchanged()


# ======================================================================================
# Quantities: +1 / −1 (−1 at 1 removes) and an exact quantity
# ======================================================================================


def test_qty_plus_and_minus_htmx(pos):
    session = basket("counter", "ESP", "CAP")
    line, other = (li["line_id"] for li in session.lines)
    body = assert_changes(act(pos, "qty", session, {"delta": "1"}, line=line))
    assert qty_of(session, line) == "2"
    assert re.search(rf'id="line-{line}" hx-swap-oob="true">.*?<span class="qty" aria-label="Quantity">2</span>', body, re.S)
    assert f'id="line-{other}"' not in body  # untouched
    session = fresh(session)
    assert_changes(act(pos, "qty", session, {"delta": "-1"}, line=line))
    assert qty_of(session, line) == "1"
    session = fresh(session)
    body = assert_changes(act(pos, "qty", session, {"delta": "-1"}, line=line))
    after = fresh(session)
    assert [li["sku"] for li in after.lines] == ["CAP"] and after.rev == session.rev + 1
    assert f'<li id="line-{line}" hx-swap-oob="delete"></li>' in body
    # The last line going empties the cart: the whole cart says so.
    body = assert_cart(act(pos, "qty", after, {"delta": "-1"}, line=other))
    assert "No items yet" in body and fresh(session).lines == []


def test_qty_buttons_without_htmx(pos):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    page = assert_page(pos.get(url("session", session)))
    response = press(pos, page, "+")
    assert_back_to_session(response, session)
    assert qty_of(session, line) == "2"
    page = assert_page(pos.get(response["Location"]))
    assert '<span class="qty" aria-label="Quantity">2</span>' in page
    assert_back_to_session(press(pos, page, "−"), session)
    assert qty_of(session, line) == "1"
    page = assert_page(pos.get(url("session", session)))
    assert_back_to_session(press(pos, page, "−"), session)
    assert fresh(session).lines == []
    assert "No items yet" in assert_page(pos.get(url("session", session)))


@pytest.mark.parametrize("htmx", [True, False])
def test_exact_qty(pos, htmx):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    response = act(pos, "qty", session, {"qty": "3"}, line=line, htmx=htmx)
    if htmx:
        assert "R$18.00" in assert_changes(response)
    else:
        assert_back_to_session(response, session)
    assert qty_of(session, line) == "3"
    assert fresh(session).total_q == 1800


@pytest.mark.parametrize("htmx", [True, False])
@pytest.mark.parametrize("data", [{"qty": "abc"}, {"qty": "0"}, {"qty": "-1"}, {"qty": ""}, {"qty": "1.2345"}, {"delta": "x"}])
def test_bad_qty_is_422_with_the_line_marked_and_nothing_changes(pos, data, htmx):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    before = DbState(session)
    response = act(pos, "qty", session, data, line=line, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert 'class="banner banner-error"' in body
    assert f'class="line has-error" id="line-{line}"' in body
    before.assert_unchanged()


def test_delta_nan_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    response = act(pos, "qty", session, {"delta": "NaN"}, line=session.lines[0]["line_id"])
    assert_cart(response, 422)
    before.assert_unchanged()


def test_unknown_line_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    for name, data in (("qty", {"delta": "1"}), ("remove", {}), ("note", {"note": "x"})):
        body = assert_cart(act(pos, name, session, data, line="L-nope"), 422)
        assert 'class="banner banner-error"' in body
    before.assert_unchanged()


# ======================================================================================
# Remove, note
# ======================================================================================


@pytest.mark.parametrize("htmx", [True, False])
def test_remove_line(pos, htmx):
    session = basket("counter", "ESP", "CAP")
    line = session.lines[0]["line_id"]
    response = act(pos, "remove", session, line=line, htmx=htmx)
    if htmx:
        body = assert_changes(response)
        assert f'<li id="line-{line}" hx-swap-oob="delete"></li>' in body
        assert "Cappuccino" not in body  # the line that stays is not sent again
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    assert [li["sku"] for li in after.lines] == ["CAP"] and after.rev == session.rev + 1


@pytest.mark.parametrize("htmx", [True, False])
def test_line_note(pos, htmx):
    session = basket("counter", "ESP")
    line = session.lines[0]["line_id"]
    response = act(pos, "note", session, {"note": "  no sugar "}, line=line, htmx=htmx)
    if htmx:
        assert "✎ no sugar" in assert_changes(response)
    else:
        assert_back_to_session(response, session)
        assert "✎ no sugar" in assert_page(pos.get(response["Location"]))
    assert fresh(session).lines[0]["meta"]["note"] == "no sugar"


def test_note_too_long_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    body = assert_cart(act(pos, "note", session, {"note": "x" * 201}, line=session.lines[0]["line_id"]), 422)
    assert "Note is too long (at most 200 characters)." in body
    before.assert_unchanged()


# ======================================================================================
# Price override: managers only
# ======================================================================================


@pytest.mark.parametrize("htmx", [True, False])
def test_manager_overrides_a_price(manager, htmx):
    session = basket("counter", "CAP", ("ESP", 2))
    line = session.lines[1]["line_id"]
    page = assert_page(manager.get(url("session", session)))
    assert "Note · price" in page  # the line editor opens on demand
    editor = manager.get(url("session", session) + f"lines/{line}/edit/", HTTP_HX_REQUEST="true").content.decode()
    assert 'name="price"' in editor and "Override price" in editor and "<html" not in editor
    opened = assert_page(manager.get(url("session", session) + f"lines/{line}/edit/"))  # without JavaScript
    assert 'name="price"' in opened and 'name="note"' in opened
    response = act(manager, "price", session, {"price": "4,50", "reason": "regular"}, line=line, htmx=htmx)
    if htmx:
        body = assert_changes(response)
        assert "Price R$6.00 → R$4.50 (regular)" in body
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    target = after.lines[1]
    assert target["unit_price_q"] == 450 and target["line_total_q"] == 900
    assert target["meta"]["price_override"] == {"from": 600, "to": 450, "reason": "regular", "actor": "user:manager"}
    assert after.total_q == 950 + 900 and after.rev == session.rev + 1
    assert after.data["totals"]["discount_q"] == 300


def test_superuser_overrides_a_price(cafe):
    admin = logged_in("boss", superuser=True)
    session = basket("counter", "CAP")
    assert_changes(act(admin, "price", session, {"price": "0", "reason": "on the house"}, line=session.lines[0]["line_id"]))
    assert fresh(session).lines[0]["unit_price_q"] == 0


def test_pos_user_cannot_override_a_price(pos):
    session = basket("counter", "CAP")
    before = DbState(session)
    for htmx in (True, False):
        response = act(pos, "price", session, {"price": "1.00", "reason": "friend"}, line=session.lines[0]["line_id"], htmx=htmx)
        assert response.status_code == 403
    before.assert_unchanged()
    assert fresh(session).lines[0]["unit_price_q"] == 950


@pytest.mark.parametrize(
    "data",
    [
        {"price": "abc", "reason": "r"},
        {"price": "", "reason": "r"},
        {"price": "-1", "reason": "r"},
        {"price": "1.234", "reason": "r"},
        {"price": "NaN", "reason": "r"},
        {"price": "Infinity", "reason": "r"},
        {"price": "100000000.01", "reason": "r"},  # above the largest unit price
        {"price": "5.00", "reason": ""},  # a reason is required
        {"price": "5.00", "reason": "x" * 201},
    ],
)
@pytest.mark.parametrize("htmx", [True, False])
def test_bad_price_is_422_and_nothing_changes(manager, data, htmx):
    session = basket("counter", "CAP")
    line = session.lines[0]["line_id"]
    before = DbState(session)
    response = act(manager, "price", session, data, line=line, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert 'class="banner banner-error"' in body and f'class="line has-error" id="line-{line}"' in body
    before.assert_unchanged()


def test_huge_exponent_price_is_422(manager):
    session = basket("counter", "CAP")
    before = DbState(session)
    response = act(manager, "price", session, {"price": "1e30", "reason": "r"}, line=session.lines[0]["line_id"])
    assert_cart(response, 422)
    before.assert_unchanged()


# ======================================================================================
# Customer
# ======================================================================================


@pytest.mark.parametrize("htmx", [True, False])
def test_customer_and_notes(pos, htmx):
    session = basket("counter", "ESP")
    data = {"name": " Ana ", "phone": "+55 11 91234-5678", "notes": "pays by card"}
    response = act(pos, "customer", session, data, htmx=htmx)
    if htmx:
        assert '<p class="customer">Ana · +55 11 91234-5678</p>' in assert_cart(response)
    else:
        assert_back_to_session(response, session)
    after = fresh(session)
    assert after.data["customer"] == {"name": "Ana", "phone": "+55 11 91234-5678"}
    assert after.data["notes"] == "pays by card" and after.rev == session.rev + 1
    page = assert_page(pos.get(url("session", session)))
    assert 'value="Ana"' in page and ">pays by card</textarea>" in page


def test_customer_name_too_long_is_422(pos):
    session = basket("counter", "ESP")
    before = DbState(session)
    body = assert_cart(act(pos, "customer", session, {"name": "x" * 121, "phone": "", "notes": ""}), 422)
    assert "Name is too long" in body
    before.assert_unchanged()


# ======================================================================================
# Checks: "check now", issues and their action buttons
# ======================================================================================


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
    parser = _Forms()
    parser.feed(page)
    assert not next(b for b in parser.buttons if "Place order" in b["label"])["disabled"]


def test_check_now_reports_issues_with_their_action_buttons(pos):
    session = basket("counter", ("CHAI", 10), ("KOMBU", 1))  # 6 chai on hand, no kombucha
    body = assert_changes(act(pos, "check", session))
    assert '<li class="check check-issues">Stock: issues</li>' in body
    assert "Chai latte: only 6 of 10 available." in body and "Kombucha is out of stock." in body
    for label in ("Reduce to 6", "Remove line", "Replace with Iced tea", "Replace with Lemonade"):
        assert label in body
    parser = _Forms()
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


# ======================================================================================
# Commit
# ======================================================================================


@pytest.mark.parametrize("htmx", [True, False])
def test_commit_makes_an_order_and_opens_a_fresh_basket(pos, htmx):
    session = ready("ESP", ("CAP", 2))
    page = assert_page(pos.get(url("session", session)))
    response = press(pos, page, "Place order", htmx=htmx)
    order = Order.objects.get(session_key=session.session_key)
    assert fresh(session).state == "committed"
    nxt = Session.objects.filter(channel__code="counter", state="open").get()
    assert nxt.pk != session.pk and nxt.lines == [] and nxt.handle_ref == ""
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == url("session", nxt)
        location = response["HX-Redirect"]
    else:
        assert response.status_code == 302 and response["Location"] == url("session", nxt)
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


def test_double_submit_leaves_one_fresh_basket(pos):
    session = ready("ESP")
    key = uuid.uuid4().hex
    act(pos, "commit", session, {"idempotency_key": key}, htmx=False)
    act(pos, "commit", session, {"idempotency_key": key}, htmx=False)
    assert Session.objects.filter(channel__code="counter", state="open").count() == 1


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
        nxt = Session.objects.get(channel__code="counter", state="open")
        assert location == url("session", nxt) and nxt.lines == []
        # A fresh basket is ready: adding to it works at once. With htmx the add is answered
        # before its stock check runs, and the answer asks for the check (the browser's next request).
        body = assert_cart(act(pos, "add", nxt, {"sku": "CAP"}))
        assert "Stock: pending…" in body
        follow = re.search(r'<span class="checks-follow" hidden hx-post="([^"]+)"[^>]*hx-vals=\'([^\']+)\'', body)
        assert follow, body
        vals = json.loads(follow.group(2))
        assert vals == {"auto": "1", "rev": str(fresh(nxt).rev)}
        body = assert_changes(pos.post(follow.group(1), vals, **HX))
        assert "Stock: ok" in body and 'class="checks-follow"' not in body  # it never asks twice
        assert "Stock: ok" in assert_cart(pos.get(location, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))


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


# ======================================================================================
# Tables: rounds, running total, close table
# ======================================================================================


def test_send_a_round_opens_the_next_round_on_the_same_tab(pos):
    tab = ready(("BURG", 2), table="4", channel="tables")
    response = act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    nxt = Session.objects.get(channel__code="tables", handle_ref="4", state="open")
    assert response["Location"] == url("session", nxt)
    order = Order.objects.get(session_key=tab.session_key)
    assert order.handle_ref == "4" and order.status == "confirmed"
    page = assert_page(pos.get(response["Location"]))
    assert f"Round {order.ref} sent." in page
    assert "Sent today" in page and order.ref in page and "2 × Burger" in page
    assert 'Table total</dt><dd class="table-total"><strong>R$70.40</strong>' in page  # the round with its 10 % service; nothing in the new one yet
    # The next round adds up.
    assert_cart(act(pos, "add", nxt, {"sku": "FRIES"}))
    cart = assert_cart(pos.get(url("session", nxt), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
    assert "Table total</dt>" in cart and "2 × Burger" in cart and "Fries" in cart


def test_table_total_includes_the_service_charge(pos):
    tab = ready("BURG", table="6", channel="tables")  # 32.00 + 10 % = 35.20
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    nxt = Session.objects.get(channel__code="tables", handle_ref="6", state="open")
    act(pos, "add", nxt, {"sku": "FRIES"})  # 14.00 + 10 % = 15.40
    cart = assert_cart(pos.get(url("session", nxt), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="cart"))
    assert '<dd class="grand">R$15.40</dd>' in cart
    assert 'Table total</dt><dd class="table-total"><strong>R$50.60</strong>' in cart


@pytest.mark.parametrize("htmx", [True, False])
def test_close_table_completes_its_orders(pos, htmx):
    tab = ready("BURG", table="8", channel="tables")
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    second = Session.objects.get(channel__code="tables", handle_ref="8", state="open")
    second = ModifyService.modify_session(second.session_key, "tables", [{"op": "add_line", "sku": "SODA", "qty": 1}])
    settle()
    act(pos, "commit", fresh(second), {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    other_table = ready("ESP", table="9", channel="tables")
    act(pos, "commit", other_table, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    current = Session.objects.get(channel__code="tables", handle_ref="8", state="open")
    assert current.lines == []
    page = assert_page(pos.get(url("session", current)))
    response = press(pos, page, "Close table", htmx=htmx)
    channel_url = reverse("pos:channel", args=["tables"])
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == channel_url
    else:
        assert response.status_code == 302 and response["Location"] == channel_url
    rounds = Order.objects.filter(handle_ref="8")
    assert rounds.count() == 2 and set(rounds.values_list("status", flat=True)) == {"completed"}
    for order in rounds:
        closing = order.events.filter(type="status_changed", payload__reason="table closed")
        assert [e.payload["to"] for e in closing.order_by("id")] == ["ready", "completed"]
        assert {e.actor for e in closing} == {"user:pos"}
    assert Order.objects.get(handle_ref="9").status == "confirmed"  # another table is untouched
    assert fresh(current).state == "abandoned"
    assert not Session.objects.filter(channel__code="tables", handle_ref="8", state="open").exists()
    listing = text(pos.get(channel_url))
    assert "Table 8 closed." in listing


@pytest.mark.parametrize("htmx", [True, False])
def test_close_table_with_unsent_items_is_422(pos, htmx):
    tab = ready("BURG", table="8", channel="tables")
    act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    current = Session.objects.get(channel__code="tables", handle_ref="8", state="open")
    current = fresh(ModifyService.modify_session(current.session_key, "tables", [{"op": "add_line", "sku": "SODA", "qty": 1}]))
    before = DbState(current)
    response = act(pos, "close_table", current, htmx=htmx)
    body = assert_cart(response, 422) if htmx else assert_page(response, 422)
    assert "Send or clear the current round before closing the table." in body
    before.assert_unchanged()
    assert Order.objects.get(handle_ref="8").status == "confirmed"


def test_close_table_on_a_basket_touches_no_order(pos):
    waiting = ready("ESP")
    act(pos, "commit", waiting, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    assert Order.objects.get().status == "confirmed"
    current = Session.objects.get(channel__code="counter", state="open")
    response = act(pos, "close_table", current, htmx=True)
    assert Order.objects.get().status == "confirmed"  # fails: walked to "completed" ("table closed")
    assert fresh(current).state == "open"
    assert response.status_code in (404, 409, 422)


# ======================================================================================
# Park and resume
# ======================================================================================


@pytest.mark.parametrize("htmx", [True, False])
def test_park_then_resume(pos, htmx):
    session = basket("counter", "ESP", data={"customer": {"name": "Ana"}})
    response = act(pos, "park", session, htmx=htmx)
    channel_url = reverse("pos:channel", args=["counter"])
    if htmx:
        assert response.status_code == 200 and response["HX-Redirect"] == channel_url
    else:
        assert response.status_code == 302 and response["Location"] == channel_url
    parked = fresh(session)
    assert parked.state == "open" and parked.data["parked"] is True and parked.rev == session.rev + 1
    listing = text(pos.get(channel_url))
    assert "Basket parked: resume it from the list." in listing
    row = re.search(rf'href="{re.escape(url("session", session))}">(.*?)</a>', listing, re.S).group(1)
    assert '<span class="badge">parked</span>' in row
    # Resume: the list links to the screen, which works as before.
    page = assert_page(pos.get(url("session", session)))
    assert "Espresso" in page
    assert_cart(act(pos, "add", parked, {"sku": "CAP"}))
    assert [li["sku"] for li in fresh(session).lines] == ["ESP", "CAP"]


# ======================================================================================
# Stale rev: 409, the fresh cart, a banner, nothing applied — for every action
# ======================================================================================


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
    parser = _Forms()
    parser.feed(page)
    add_form = parser.by_id["add-form"]  # outside the cart: the grid and the search box submit it
    other_screen_touches(session)
    body = assert_cart(pos.post(add_form["action"], {**add_form["fields"], "sku": "CAP"}, **HX), 409)
    assert 'id="add-form"' not in body  # never swapped, so a queued scan is never dropped
    # The swapped-in cart's head holds the fresh rev, which app.js sends with every session form.
    assert shown_rev(body) == fresh(session).rev
    assert_changes(pos.post(add_form["action"], {**add_form["fields"], "rev": shown_rev(body), "sku": "CAP"}, **HX))
    assert [li["sku"] for li in fresh(session).lines] == ["ESP", "CAP"]


# ======================================================================================
# No JavaScript: add, change qty, send — each a POST, a redirect, then a GET
# ======================================================================================


def test_whole_sale_without_javascript(pos):
    opened = pos.post(reverse("pos:open", args=["counter"]))
    session = Session.objects.get(channel__code="counter", state="open")
    page = assert_page(pos.get(opened["Location"]))
    # The grid's product button submits the cart's add form.
    response = press(pos, page, "Espresso")
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


# ======================================================================================
# CSRF
# ======================================================================================


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


# ======================================================================================
# Escaping: customer and channel text never becomes markup
# ======================================================================================


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


# ======================================================================================
# The demo, end to end
# ======================================================================================


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


@pytest.fixture
def cafe_demo_client():
    with override_settings(DEBUG=True):
        call_command("seed_demo", "--no-users", stdout=io.StringIO())
    return logged_in("pos", "pos")
