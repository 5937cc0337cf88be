"""No control character reaches a view: every URL of the site, from the URLconf, GET and POST, query, form and path.

The list of entry points is built from ``get_resolver()`` (a new view is covered
without touching this file); each path parameter gets a real value from the
``SAMPLES`` below (a new parameter name fails the test until it gets one). Each
entry point is called, logged in as a user with every role, with a control
character in a query value, a query name, a form value (plain and htmx) and in
each path segment: the answer is 400 (422 for htmx, the JSON ``invalid`` body
under ``/api/``), never a 500, and nothing is written.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from tests.factories import DbState, create_order_at, create_session_at, make_channel

pytestmark = pytest.mark.django_db

CONTROLS = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f"]
ROLES = ("pos", "kitchen", "manager")

# A value for each path parameter name ({"<name>": value or callable(rows) -> value}).
SAMPLES = {
    "channel_code": lambda rows: rows["channel"],
    "code": lambda rows: rows["channel"],
    "session_key": lambda rows: rows["session"],
    "key": lambda rows: rows["session"],
    "line_id": lambda rows: rows["line"],
    "ref": lambda rows: rows["order"],
    "external_id": lambda rows: "EXT-1",
    "adjustment_id": lambda rows: "0123456789ab",
    "bill_ref": lambda rows: "BIL-20261203-AAAAAA",
    "payment_id": lambda rows: "1",
    "shift_id": lambda rows: "1",
    "name": lambda rows: "day",  # a report
    "fmt": lambda rows: "csv",  # an export
    "app_label": lambda rows: "omniman",
    "content_type_id": lambda rows: "1",
    "object_id": lambda rows: "1",
    "id": lambda rows: "1",
    "uidb64": lambda rows: "MQ",
    "token": lambda rows: "set-password",
    "url": lambda rows: "nowhere/",
}

GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?:[^()]|\([^()]*\))*\)")


def _patterns(resolver=None, prefix: str = ""):
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern, regex)
        else:
            yield regex, pattern


def _literal(regex: str) -> str:
    """A regex of literal text (after the groups are filled) back to its text."""
    text = regex.replace("\\Z", "").replace("$", "")
    return re.sub(r"\\(.)", r"\1", text)


ENTRY_POINTS = [(regex, pattern.callback) for regex, pattern in _patterns()]


def _path(regex: str, rows: dict[str, str], *, spoil: str = "", char: str = "\x00") -> str:
    """The URL path of a pattern with real values (``spoil``: the parameter that gets the control character)."""

    def value(match: re.Match) -> str:
        name = match.group("name")
        if name not in SAMPLES:
            raise AssertionError(f"no sample value for path parameter {name!r}: add one to SAMPLES")
        real = SAMPLES[name](rows)
        return quote(f"a{char}b" if name == spoil else real, safe="/")

    return "/" + _literal(GROUP.sub(value, regex))


@pytest.fixture
def rows() -> dict[str, str]:
    shop = make_channel("shop")
    session = create_session_at(shop, lines=1, handle_type="table", handle_ref="7")
    order = create_order_at("new", shop)
    return {"channel": "shop", "session": session.session_key, "line": session.lines[0]["line_id"], "order": order.ref}


@pytest.fixture
def everyone() -> Client:
    user = get_user_model().objects.create_user(username="all-roles", is_staff=True, is_superuser=True)
    for role in ROLES:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    client = Client()
    client.force_login(user)
    return client


def test_the_list_is_the_urlconf_and_every_pattern_gets_a_real_path(rows):
    names = {pattern.callback.__name__ for _, pattern in _patterns()}
    assert {"board_view", "bump", "add_item", "customer", "commit", "open_session", "line_note"} <= names
    assert len(ENTRY_POINTS) > 100
    for regex, callback in ENTRY_POINTS:
        path = _path(regex, rows)
        try:
            match = resolve(path)
        except Resolver404:  # a pattern shadowed by an earlier one (the admin's catch-all)
            continue
        assert match.func is not None, path


def _assert_refused(response, path: str, *, htmx: bool = False) -> None:
    assert response.status_code != 500, path
    if path.startswith("/api/"):
        assert response.status_code == 400, (path, response.status_code)
        assert response.json()["error"]["code"] == "invalid", path
    elif htmx:
        assert response.status_code == 422, (path, response.status_code)
        assert response["HX-Retarget"] == "#input-error"
        assert b'id="input-error"' in response.content
    else:
        assert response.status_code == 400, (path, response.status_code)
        assert b"control character" in response.content


@pytest.mark.parametrize(("regex", "callback"), ENTRY_POINTS, ids=[regex for regex, _ in ENTRY_POINTS])
def test_a_control_character_anywhere_is_refused_and_nothing_is_written(regex, callback, rows, everyone):
    before = DbState()
    log_entries = LogEntry.objects.count()
    path = _path(regex, rows)
    index = ENTRY_POINTS.index((regex, callback))
    char = CONTROLS[index % len(CONTROLS)]
    nul = "\x00"
    cases = [
        ("get", path, {f"q{index}": f"a{nul}b", "station": f"a{char}b"}, {}),
        ("get", path, {f"a{char}b": "1"}, {}),
    ]
    if path.startswith("/api/"):
        # JSON bodies are the API parser's (tests/integration/api/test_api_errors.py); the query is checked here.
        cases.append(("post", f"{path}?status=a%00b", {}, {}))
    else:
        cases += [
            ("post", path, {"category": f"a{nul}b", "note": f"x{char}y", "rev": "1"}, {}),
            ("post", path, {"name": f"a{char}b"}, {"HTTP_HX_REQUEST": "true"}),
        ]
    for name in GROUP.findall(regex):
        spoiled = _path(regex, rows, spoil=name, char=char)
        cases += [("get", spoiled, {}, {}), ("post", spoiled, {"rev": "1"}, {"HTTP_HX_REQUEST": "true"})]
    for method, url, data, headers in cases:
        response = getattr(everyone, method)(url, data, **headers)
        _assert_refused(response, url, htmx=bool(headers) and not url.startswith("/api/"))
    before.assert_unchanged()
    assert LogEntry.objects.count() == log_entries


@pytest.mark.parametrize(
    "url",
    [
        "/pos/counter/?q=a%00b",
        "/kitchen/?station=a%00b",
        "/admin/omniman/order/?status=a%00b",
        "/pos/shop/s/a%00b/",
        "/api/orders/?status=a%00b",
    ],
)
def test_the_reported_entry_points_answer_400(url, rows, everyone):
    before = DbState()
    response = everyone.get(url)
    _assert_refused(response, url.split("?")[0])
    before.assert_unchanged()


def test_tabs_and_newlines_in_a_multi_line_value_pass(rows, everyone):
    """A note may span lines: the middleware lets tab, newline and carriage return through."""
    url = f"/pos/shop/s/{rows['session']}/lines/{rows['line']}/note/"
    from omniman.models import Session

    rev = Session.objects.get(session_key=rows["session"]).rev
    response = everyone.post(url, {"note": "no onions\r\n\textra cheese", "rev": str(rev)})
    assert response.status_code in (200, 302), response.status_code
    line = Session.objects.get(session_key=rows["session"]).lines[0]
    assert line["meta"]["note"].replace("\r\n", "\n") == "no onions\n\textra cheese"
