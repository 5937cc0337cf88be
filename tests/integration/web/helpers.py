"""Builders and assertions for the POS view tests: sessions priced like the POS prices them, the screen's
forms posted as the screen would, and what an answer must be (a cart, a delta, a page).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from template_partials.templatetags.partials import TemplateProxy

from omniman import engine
from omniman.contrib.catalog.models import Product
from omniman.models import Session
from omniman.services import ModifyService, SessionService

# The POS screens run over the demo café (its catalog, prices and stock): mark every test module with it.
CAFE = pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock")

HX = {"HTTP_HX_REQUEST": "true"}
DISPATCH = {"DISPATCH_ON_COMMIT": ["stock.hold", "pricing.check", "refs.assign_ticket"]}
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
STALE_BANNER = "changed on another screen"
LOGIN = "/accounts/login/"


def make_user(username: str, *roles: str, superuser: bool = False):
    user = get_user_model().objects.create_user(username=username, is_superuser=superuser, is_staff=superuser)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def logged_in(username: str, *roles: str, superuser: bool = False, **client_kwargs) -> Client:
    client = Client(**client_kwargs)
    client.force_login(make_user(username, *roles, superuser=superuser))
    return client


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


class FormReader(HTMLParser):
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
    parser = FormReader()
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
