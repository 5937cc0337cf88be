"""Every screen speaks the user's language (docs/guides/languages.rst).

- The committed ``.mo`` is the compilation of the ``.po`` (Babel), and the
  catalogue has no fuzzy and no empty entries.
- ``makemessages`` over a copy of the sources finds no msgid the pt-BR
  catalogue lacks (GNU gettext needed; scripts/test.py installs it).
- A **pseudo-locale**: every msgid Django knows for pt-br (Omniman's, Django's,
  unfold's) gets a marked, accented translation, compiled into a temporary
  locale directory that wins over all others; each operator page is rendered
  under it and any visible text without the mark is a string that escaped
  translation (data and a few proper nouns aside).
"""

from __future__ import annotations

import re
import shutil
from decimal import Decimal
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import translation
from django.utils.translation import trans_real

from omniman import engine
from omniman.contrib.catalog.models import Category, Product
from omniman.contrib.stock.models import StockLevel
from omniman.models import Channel, Session
from omniman.services import ModifyService, SessionService
from omniman.web.models import LanguagePreference
from tests.factories import commit

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
LOCALE_DIR = REPO / "omniman" / "locale"
PO = LOCALE_DIR / "pt_BR" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
HX = {"HTTP_HX_REQUEST": "true"}


def load_po(path: Path = PO) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle)


# -- the catalogue ------------------------------------------------------------------


def entries(catalog: Catalog) -> dict:
    def frozen(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return {(m.context, frozen(m.id)): frozen(m.string) for m in catalog if m.id}


def test_the_committed_mo_is_the_compiled_po():
    with PO.open("rb") as handle:
        expected = read_po(handle)
    buffer = BytesIO()
    write_mo(buffer, expected, use_fuzzy=False)
    buffer.seek(0)
    compiled = entries(read_mo(buffer))
    with MO.open("rb") as handle:
        committed = entries(read_mo(handle))
    assert committed == compiled, "omniman/locale is stale: run scripts/messages.py and commit the .mo"


def test_the_catalogue_has_no_fuzzy_and_no_empty_entries():
    catalog = load_po()
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    empty = [
        m.id for m in catalog if m.id and (not all(m.string) if isinstance(m.string, tuple) else not m.string)
    ]
    assert fuzzy == [] and empty == []
    assert len([m for m in catalog if m.id]) > 300


def test_translations_keep_their_placeholders():
    placeholder = re.compile(r"%\((\w+)\)s|\{(\w+)\}")
    for message in load_po():
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = {m.group(0) for text in ids for m in placeholder.finditer(text)}
        for text in strings:
            found = {m.group(0) for m in placeholder.finditer(text)}
            assert found <= wanted, (message.id, text)  # never one the code does not pass


@pytest.mark.skipif(not shutil.which("xgettext"), reason="GNU gettext (Debian package 'gettext') is not installed")
def test_makemessages_finds_nothing_the_catalogue_lacks(tmp_path):
    """Run makemessages over a copy of what ships; every msgid it finds is translated in pt-BR."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("omniman_messages", REPO / "scripts" / "messages.py")
    messages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(messages)

    copy = tmp_path / "repo"
    shutil.copytree(REPO / "omniman", copy / "omniman", ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    if (REPO / "templates").is_dir():
        shutil.copytree(REPO / "templates", copy / "templates")
    locale = copy / "omniman" / "locale"
    shutil.rmtree(locale)  # start from nothing: what the sources mark, not what the catalogue has
    messages.make_messages(copy, locale)
    found = load_po(locale / "pt_BR" / "LC_MESSAGES" / "django.po")
    known = {(m.context, m.id) for m in load_po() if m.id and m.string and (not isinstance(m.string, tuple) or all(m.string))}
    missing = sorted(str(m.id) for m in found if m.id and (m.context, m.id) not in known)
    assert missing == [], f"untranslated msgids (run scripts/messages.py, translate, commit): {missing}"


# -- the language: browser, user choice, default -------------------------------------


def operator(username: str, *roles: str, superuser: bool = False):
    user = get_user_model().objects.create_user(username=username, password="pw-123456", is_superuser=superuser, is_staff=superuser)
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def test_the_browsers_language_is_used():
    operator("pos", "pos")
    client = Client(HTTP_ACCEPT_LANGUAGE="pt-BR,pt;q=0.9")
    page = client.get("/accounts/login/").content.decode()
    assert '<html lang="pt-br">' in page and "Entrar no Omniman" in page and "Usuário" in page
    page = Client(HTTP_ACCEPT_LANGUAGE="en-US").get("/accounts/login/").content.decode()
    assert "Sign in to Omniman" in page


def test_a_users_choice_is_stored_and_comes_back_at_the_next_login():
    user = operator("pos", "pos")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.login(username="pos", password="pw-123456")
    response = client.post(reverse("set_language"), {"language": "pt-br", "next": "/pos/"})
    assert response.status_code == 302 and response["Location"] == "/pos/"
    assert LanguagePreference.objects.get(user=user).language == "pt-br"
    assert "Escolha um canal" in client.get("/pos/").content.decode()

    elsewhere = Client(HTTP_ACCEPT_LANGUAGE="en")  # another device: no language cookie, an English browser
    assert "Sign in to Omniman" in elsewhere.get("/accounts/login/").content.decode()
    elsewhere.post("/accounts/login/", {"username": "pos", "password": "pw-123456"})
    assert "Escolha um canal" in elsewhere.get("/pos/").content.decode()


def test_an_unknown_language_changes_nothing():
    user = operator("pos", "pos")
    client = Client()
    client.force_login(user)
    client.post(reverse("set_language"), {"language": "xx", "next": "/pos/"})
    assert not LanguagePreference.objects.filter(user=user).exists()
    assert client.get(reverse("set_language")).status_code == 405


def test_the_switcher_is_in_the_header():
    client = Client()
    client.force_login(operator("pos", "pos"))
    page = client.get("/pos/").content.decode()
    assert f'action="{reverse("set_language")}"' in page
    assert 'name="language" value="pt-br"' in page and 'name="language" value="en"' in page


def test_channel_terminology_per_language_and_the_single_language_form():
    channel = Channel(code="t", config={"terminology": {"en": {"session": "Tab"}, "pt-br": {"session": "Comanda"}}})
    with translation.override("pt-br"):
        assert channel.term("session") == "Comanda" and channel.term("sessions") == "Comandas"
        assert channel.term("ready") == "Pronto" and channel.term("order") == "Pedido"  # the defaults, translated
    with translation.override("en"):
        assert channel.term("session") == "Tab" and channel.term("sessions") == "Tabs"
    only_english = Channel(code="e", config={"terminology": {"en": {"session": "Tab"}}})
    with translation.override("pt-br"):
        assert only_english.term("session") == "Venda"  # never the English word on a Portuguese screen
    single = Channel(code="s", config={"terminology": {"session": "Comanda", "ready": "Pronto!"}})
    for language in ("en", "pt-br"):
        with translation.override(language):
            assert single.term("session") == "Comanda" and single.term("ready") == "Pronto!"


# -- the pseudo-locale -----------------------------------------------------------------

ACCENTS = str.maketrans("aeiouyAEIOUYcnCN", "áéíóúýÁÉÍÓÚÝçñÇÑ")
KEEP = re.compile(r"(%\(\w+\)[sd]|%[sd%]|\{\w+\}|<[^>]+>|&\w+;)")
MARK_OPEN, MARK_CLOSE = "⟦", "⟧"


def pseudo(text: str) -> str:
    """``Log out`` → ``⟦Lóg óút⟧``: placeholders, tags and entities kept as they are."""
    parts = KEEP.split(text)
    return MARK_OPEN + "".join(part if KEEP.fullmatch(part) else part.translate(ACCENTS) for part in parts) + MARK_CLOSE


def pseudo_catalogue(path: Path) -> None:
    """A .mo with every msgid Django knows for pt-br (Omniman, Django, unfold), pseudo-translated."""
    known = trans_real.translation("pt-br")._catalog
    catalog = Catalog(locale="pt_BR")
    plurals: dict[tuple[str | None, str], int] = {}
    for key in known.keys():
        if isinstance(key, tuple):
            text, index = key
            plurals[(None, text)] = max(plurals.get((None, text), 0), index)
            continue
        context, _, msgid = key.rpartition("\x04")
        if msgid:
            catalog.add(msgid, pseudo(msgid), context=context or None)
    for (_context, text), top in plurals.items():
        context, _, msgid = text.rpartition("\x04")
        forms = max(top + 1, catalog.num_plurals)  # CLDR gives pt three forms (one, many, other)
        catalog.add((msgid, msgid), tuple(pseudo(msgid) for _ in range(forms)), context=context or None)
    path.mkdir(parents=True)
    with (path / "django.mo").open("wb") as handle:
        write_mo(handle, catalog)


# Data a page shows as it is: the fixture's names and codes, usernames, proper nouns.
PROPER_NOUNS = {"Omniman", "EN", "PT", "Espresso", "Cappuccino", "Brownie", "pos", "manager", "kitchen", "Tables", "tables", "Counter",
                "counter", "ESP", "CAP", "BROWNIE", "Coffee", "English", "Português", "Brasileiro"}
CODE = re.compile(r"^(?=.*[\dA-Z]{4})[A-Z0-9-]+$")  # refs (ORD-…, 6R34Q5), session keys, line ids
DATA = re.compile(r"^[\s\d.,:;/+\-−–—×·#%()R$€¥→←|✎⚠*]*$")
SKIP_TAGS = {"script", "style", "template", "noscript", "svg"}


class TextNodes(HTMLParser):
    """The visible text nodes of a page (or of the element with ``only_id``), and the labels people read."""

    def __init__(self, only_id: str = ""):
        super().__init__(convert_charrefs=True)
        self.only_id = only_id
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    def inside(self) -> bool:
        return not self.only_id or any(marked for _tag, marked in self.stack)

    def skipped(self) -> bool:
        return any(tag in SKIP_TAGS for tag, _ in self.stack) or any(tag == "span" and hidden for tag, hidden in [])

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        marked = bool(self.only_id) and attributes.get("id") == self.only_id
        if self.inside() or marked:
            for name in ("placeholder", "aria-label", "title", "data-confirm", "data-template"):
                if attributes.get(name) and not self.only_id:
                    self.texts.append(attributes[name])
        if tag not in self.VOID:
            self.stack.append((tag, marked))

    def handle_endtag(self, tag):
        for position in range(len(self.stack) - 1, -1, -1):
            if self.stack[position][0] == tag:
                del self.stack[position:]
                break

    def handle_data(self, data):
        if self.inside() and not any(tag in SKIP_TAGS for tag, _ in self.stack) and data.strip():
            self.texts.append(data.strip())


def untranslated(html: str, *, only_id: str = "", allow: set[str] = frozenset()) -> list[str]:
    parser = TextNodes(only_id)
    parser.feed(html)
    assert parser.texts, f"nothing rendered in #{only_id}" if only_id else "nothing rendered"
    escaped = []
    for text in parser.texts:
        if MARK_OPEN in text or MARK_CLOSE in text or DATA.match(text):
            continue
        words = [w for w in re.split(r"[\s·:,()“”\"'/›]+", text) if w and not DATA.match(w) and not CODE.match(w)]
        if all(word in PROPER_NOUNS or word in allow for word in words):
            continue
        escaped.append(text)
    return escaped


@pytest.fixture
def pseudo_locale(tmp_path):
    pseudo_catalogue(tmp_path / "locale" / "pt_BR" / "LC_MESSAGES")
    trans_real._translations = {}
    with override_settings(LOCALE_PATHS=[str(tmp_path / "locale")]):
        trans_real._translations = {}
        yield
    trans_real._translations = {}


# The pseudo-locale pages need a catalog and stock (the demo café's shape).
CAFE_APPS = pytest.mark.contrib("omniman.contrib.catalog", "omniman.contrib.stock")


@pytest.fixture
def cafe():
    drinks = Category.objects.create(code="coffee", name="Coffee", sort_order=1)
    Product.objects.create(sku="ESP", name="Espresso", category=drinks, price_q=123456, station="bar")
    Product.objects.create(sku="CAP", name="Cappuccino", category=drinks, price_q=950, station="bar")
    Product.objects.create(sku="BROWNIE", name="Brownie", category=drinks, price_q=1300, station="pastry")
    StockLevel.objects.create(sku="BROWNIE", on_hand=Decimal(1), track=True)
    checks = {"required_checks_on_commit": ["stock"], "checks": {"stock": {"directive_topic": "stock.hold", "label": "Stock"}}}
    tables = Channel.objects.create(
        code="tables", name="Tables", config={**checks, "terminology": {"en": {"session": "Tab", "order": "Round"}}}
    )
    Channel.objects.create(code="counter", name="Counter", config=checks)
    return tables


def settle():
    while engine.process(limit=200).claimed:
        pass


def tab_with_lines_and_an_issue(channel: Channel) -> Session:
    session = SessionService.open_session(channel.code, handle_type="table", handle_ref="7", actor="test")
    ops = [
        {"op": "add_line", "sku": "ESP", "qty": 1, "name": "Espresso"},
        {"op": "add_line", "sku": "BROWNIE", "qty": 3, "name": "Brownie"},
    ]
    session = ModifyService.modify_session(session.session_key, channel.code, ops, ctx={"actor": "test"})
    settle()  # the stock check: only 1 brownie of 3, a blocking issue with actions
    session = Session.objects.select_related("channel").get(pk=session.pk)
    assert session.data["issues"]
    return session


def pseudo_client(username: str, *roles: str, superuser: bool = False) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="pt-BR")
    client.force_login(operator(username, *roles, superuser=superuser))
    return client


@CAFE_APPS
def test_pseudo_locale_pos_pages(cafe, pseudo_locale):
    client = pseudo_client("pos", "pos")
    session = tab_with_lines_and_an_issue(cafe)
    pages = {
        "POS list": client.get("/pos/"),
        "channel": client.get(reverse("pos:channel", args=["tables"])),
        "channel, nothing found": client.get(reverse("pos:channel", args=["tables"]) + "?q=zzz"),
        "tab": client.get(reverse("pos:session", args=["tables", session.session_key])),
        "search": client.get(reverse("pos:search", args=["tables", session.session_key]) + "?q=zzz", **HX),
    }
    line_id = session.lines[0]["line_id"]
    stale = client.post(
        reverse("pos:qty", args=["tables", session.session_key, line_id]), {"rev": session.rev - 1, "delta": "1"}, **HX
    )
    assert stale.status_code == 409
    pages["tab with a banner"] = stale
    pages["line editor"] = client.get(reverse("pos:edit", args=["tables", session.session_key, line_id]), **HX)
    for name, response in pages.items():
        assert response.status_code in (200, 409), name
        html = response.content.decode()
        assert untranslated(html) == [], (name, untranslated(html))
    assert "R$ 1.234,56" in pages["tab"].content.decode().replace("\xa0", " ")  # the locale's money, pt-BR


@CAFE_APPS
def test_pseudo_locale_pos_forms_refusals_and_messages(cafe, pseudo_locale):
    """The POS forms' field errors, the table and product refusals and the flash messages (omniman/web/forms.py, pos.py)."""
    client = pseudo_client("manager", "pos", "manager")
    session = tab_with_lines_and_an_issue(cafe)
    key, rev, line_id = session.session_key, session.rev, session.lines[0]["line_id"]
    refusals = {
        "money field": client.post(reverse("pos:price", args=["tables", key, line_id]), {"rev": rev, "price": "abc", "reason": ""}, **HX),
        "text too long": client.post(reverse("pos:note", args=["tables", key, line_id]), {"rev": rev, "note": "x" * 201}, **HX),
        "no rev": client.post(reverse("pos:note", args=["tables", key, line_id]), {"note": "ok"}, **HX),
        "bad step": client.post(reverse("pos:qty", args=["tables", key, line_id]), {"rev": rev, "delta": "5"}, **HX),
        "unknown product": client.post(reverse("pos:add", args=["tables", key]), {"rev": rev, "q": "zzz"}, **HX),
        "close with a round": client.post(reverse("pos:close_table", args=["tables", key]), {"rev": rev}, **HX),
        "table too long": client.post(reverse("pos:open", args=["tables"]), {"table": "7" * 33}),
    }
    for name, response in refusals.items():
        assert response.status_code == 422, (name, response.status_code)
        html = response.content.decode()
        assert 'class="field-error"' in html or 'role="alert"' in html, name
        assert untranslated(html) == [], (name, untranslated(html))
    assert Session.objects.get(pk=session.pk).rev == rev  # nothing written
    parked = client.post(reverse("pos:park", args=["tables", key]), {"rev": rev})
    assert parked.status_code == 302
    listing = client.get(parked["Location"]).content.decode()
    assert '<p class="flash-info">⟦⟦' in listing  # the message and the session's word, both through the catalogue
    assert untranslated(listing) == []


@CAFE_APPS
def test_pos_messages_in_portuguese(cafe):
    client = pseudo_client("pos", "pos")
    session = tab_with_lines_and_an_issue(cafe)
    refused = client.post(reverse("pos:close_table", args=["tables", session.session_key]), {"rev": session.rev}, **HX)
    assert refused.status_code == 422
    assert "Envie ou limpe a rodada atual antes de fechar a mesa." in refused.content.decode()
    money = pseudo_client("manager", "pos", "manager").post(
        reverse("pos:price", args=["tables", session.session_key, session.lines[0]["line_id"]]),
        {"rev": session.rev, "price": "abc", "reason": "x"},
        **HX,
    )
    assert money.status_code == 422 and "Digite um valor como 12,50 (no máximo 2 casas decimais)." in money.content.decode()
    client.post(reverse("pos:park", args=["tables", session.session_key]), {"rev": session.rev})
    listing = client.get(reverse("pos:channel", args=["tables"])).content.decode()
    assert "Venda em espera: retome pela lista." in listing


@CAFE_APPS
def test_pseudo_locale_kitchen_and_login(cafe, pseudo_locale):
    session = tab_with_lines_and_an_issue(cafe)
    ModifyService.modify_session(session.session_key, cafe.code, [{"op": "set_qty", "line_id": session.lines[1]["line_id"], "qty": 1}], ctx={"actor": "test"})
    settle()
    commit(Session.objects.get(pk=session.pk))
    client = pseudo_client("kitchen", "kitchen")
    board = client.get(reverse("kitchen:board") + "?recall=1")
    assert board.status_code == 200
    assert untranslated(board.content.decode()) == []
    login = Client(HTTP_ACCEPT_LANGUAGE="pt-BR").get("/accounts/login/")
    assert untranslated(login.content.decode()) == []


@CAFE_APPS
def test_pseudo_locale_admin_dashboard_and_order_page(cafe, pseudo_locale):
    """The manager review's own regions (unfold's frame is unfold's catalogue)."""
    session = tab_with_lines_and_an_issue(cafe)
    ModifyService.modify_session(session.session_key, cafe.code, [{"op": "set_qty", "line_id": session.lines[1]["line_id"], "qty": 1}], ctx={"actor": "test"})
    settle()
    order_ref = commit(Session.objects.get(pk=session.pk))["order_ref"]
    client = pseudo_client("admin", superuser=True)
    dashboard = client.get("/admin/").content.decode()
    assert untranslated(dashboard, only_id="dashboard", allow={"Tables"}) == []
    from omniman.models import Order

    order = Order.objects.get(ref=order_ref)
    page = client.get(reverse("admin:omniman_order_change", args=[order.pk])).content.decode()
    assert untranslated(page, only_id="order-review") == []


@CAFE_APPS
def test_pseudo_locale_error_pages(cafe, pseudo_locale):
    from django.template.loader import render_to_string

    kitchen = pseudo_client("kitchen", "kitchen")
    forbidden = kitchen.get("/pos/")
    assert forbidden.status_code == 403 and untranslated(forbidden.content.decode()) == []
    missing = pseudo_client("pos", "pos").get("/pos/no-such-channel/s/NOPE/")
    assert missing.status_code == 404 and untranslated(missing.content.decode()) == []
    with translation.override("pt-br"):
        assert untranslated(render_to_string("500.html")) == []
        outage = render_to_string("errors/database_unavailable.html", {"retry_after": 5})
        assert untranslated(outage) == []
