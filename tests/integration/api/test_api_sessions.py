"""Sessions through the API: get-or-open, list, detail, modify, commit, resolve — successes, errors, roles."""

from __future__ import annotations

import pytest

from omniman.models import Order, OrderEvent, Session
from omniman.services import SessionWriteService
from tests.factories import DbState, create_session_at, make_channel
from tests.integration.api.conftest import error_of

pytestmark = pytest.mark.django_db

ADD = {"op": "add_line", "sku": "ESP", "qty": 2, "unit_price_q": 450}


def open_session(client, channel_code="shop", **body):
    return client.post("/api/sessions/", {"channel_code": channel_code, **body}, format="json")


def modify(client, key, ops, channel_code="shop", **body):
    return client.post(f"/api/sessions/{key}/modify/", {"channel_code": channel_code, "ops": ops, **body}, format="json")


def commit(client, key, idem="k-1", channel_code="shop", **body):
    return client.post(
        f"/api/sessions/{key}/commit/", {"channel_code": channel_code, "idempotency_key": idem, **body}, format="json"
    )


# -- open ------------------------------------------------------------------------------------


def test_open_creates_then_returns_the_handles_open_session(pos, channel):
    first = open_session(pos, handle_type="table", handle_ref="5", data={"customer": {"name": "Ana"}})
    assert first.status_code == 201
    body = first.json()
    assert body["channel_code"] == "shop" and body["state"] == "open" and body["rev"] == 0
    assert body["items"] == [] and body["data"] == {"customer": {"name": "Ana"}}
    assert body["checks"] == {} and body["issues"] == []
    assert (body["totals"]["items_q"], body["totals"]["total_q"], body["totals"]["adjustments"]) == (0, 0, [])
    again = open_session(pos, handle_type="table", handle_ref="5")
    assert again.status_code == 200 and again.json()["session_key"] == body["session_key"]
    assert Session.objects.count() == 1


def test_open_with_items_delivers_the_basket_at_rev_1(pos, channel):
    response = open_session(pos, items=[{"sku": "ESP", "qty": "1.5", "unit_price_q": 400}])
    assert response.status_code == 201
    body = response.json()
    assert body["rev"] == 1 and body["total_q"] == 600
    assert body["items"][0]["qty"] == "1.5" and body["items"][0]["line_total_q"] == 600


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"channel_code": "nope"}, 404, "channel_not_found"),
        ({"channel_code": "shop", "handle_ref": "5"}, 400, "missing_field"),
        ({"channel_code": "shop", "data": {"checks": {}}}, 400, "reserved_path"),
        ({"channel_code": "shop", "items": [{"sku": "X", "qty": -1}]}, 400, "invalid_qty"),
        ({"channel_code": "shop", "data": "text"}, 400, "invalid"),
        ({}, 400, "invalid"),
    ],
)
def test_open_errors_write_nothing(pos, channel, body, status, code):
    state = DbState()
    response = pos.post("/api/sessions/", body, format="json")
    assert response.status_code == status and error_of(response) == code
    state.assert_unchanged()


# -- list and detail -------------------------------------------------------------------------


def test_list_filters_and_orders_newest_first(clients, channel):
    other = make_channel("other")
    a = create_session_at(channel, lines=0, handle_type="table", handle_ref="1")
    b = create_session_at(channel, lines=1)
    c = create_session_at(other, lines=0)
    client = clients["kitchen"]
    keys = lambda response: [s["session_key"] for s in response.json()["results"]]  # noqa: E731
    everything = client.get("/api/sessions/")
    assert everything.status_code == 200 and everything.json()["count"] == 3
    assert keys(everything) == [c.session_key, b.session_key, a.session_key]
    assert keys(client.get("/api/sessions/", {"channel_code": "shop"})) == [b.session_key, a.session_key]
    assert keys(client.get("/api/sessions/", {"handle_type": "table", "handle_ref": "1"})) == [a.session_key]
    assert keys(client.get("/api/sessions/", {"state": "committed"})) == []
    bad = client.get("/api/sessions/", {"state": "sleeping"})
    assert bad.status_code == 400 and error_of(bad) == "invalid" and "state" in bad.json()["error"]["context"]["fields"]


def test_list_paginates_with_a_bounded_page_size(pos, channel):
    for _ in range(5):
        create_session_at(channel, lines=0)
    page = pos.get("/api/sessions/", {"page_size": 2})
    body = page.json()
    assert body["count"] == 5 and len(body["results"]) == 2 and body["next"] and body["previous"] is None
    last = pos.get("/api/sessions/", {"page_size": 2, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    seen = body["results"] + pos.get("/api/sessions/", {"page_size": 2, "page": 2}).json()["results"] + last["results"]
    assert len({s["session_key"] for s in seen}) == 5
    assert len(pos.get("/api/sessions/", {"page_size": 10_000}).json()["results"]) == 5
    beyond = pos.get("/api/sessions/", {"page": 99})
    assert beyond.status_code == 404 and error_of(beyond) == "not_found"


def test_detail_is_addressed_by_key_and_channel(pos, channel):
    session = create_session_at(channel, lines=2)
    make_channel("other")
    ok = pos.get(f"/api/sessions/{session.session_key}/", {"channel_code": "shop"})
    assert ok.status_code == 200
    body = ok.json()
    assert body["rev"] == session.rev and len(body["items"]) == 2 and body["total_q"] == 2000
    assert {"checks", "issues", "totals", "data"} <= set(body)
    wrong_channel = pos.get(f"/api/sessions/{session.session_key}/", {"channel_code": "other"})
    assert wrong_channel.status_code == 404 and error_of(wrong_channel) == "not_found"
    unknown = pos.get("/api/sessions/SESS-NOPE/", {"channel_code": "shop"})
    assert unknown.status_code == 404 and error_of(unknown) == "not_found"
    # Session keys are unique (SPEC §2): the channel code is optional for a read.
    without = pos.get(f"/api/sessions/{session.session_key}/")
    assert without.status_code == 200 and without.json() == body
    unknown_without = pos.get("/api/sessions/SESS-NOPE/")
    assert unknown_without.status_code == 404 and error_of(unknown_without) == "not_found"
    no_channel = pos.get(f"/api/sessions/{session.session_key}/", {"channel_code": "nowhere"})
    assert no_channel.status_code == 404 and error_of(no_channel) == "channel_not_found"
    empty = pos.get(f"/api/sessions/{session.session_key}/", {"channel_code": ""})
    assert empty.status_code == 400 and error_of(empty) == "invalid"


# -- modify ------------------------------------------------------------------------------------


def test_modify_applies_ops_and_bumps_rev(pos, channel):
    session = create_session_at(channel, lines=0)
    response = modify(pos, session.session_key, [ADD, {"op": "set_data", "path": "notes", "value": "x"}], expected_rev=0)
    assert response.status_code == 200
    body = response.json()
    assert body["rev"] == 1 and body["total_q"] == 900 and body["data"]["notes"] == "x"
    assert Session.objects.get(pk=session.pk).rev == 1


@pytest.mark.parametrize(
    ("ops", "extra", "status", "code"),
    [
        ([ADD], {"expected_rev": 0}, 409, "stale_rev"),
        ([{"op": "explode"}], {}, 400, "unsupported_op"),
        ([{"op": "add_line", "sku": "X", "qty": "1.0001"}], {}, 400, "invalid_qty"),
        ([{"op": "add_line", "sku": "X", "qty": 1, "unit_price_q": 10**30}], {}, 400, "invalid_price"),
        ([{"op": "add_line", "sku": "X", "qty": 1e300, "unit_price_q": 1}], {}, 400, "invalid_qty"),
        ([{"op": "remove_line", "line_id": "L-nope"}], {}, 400, "unknown_line_id"),
        ([{"op": "set_data", "path": "issues", "value": []}], {}, 400, "reserved_path"),
        ([{"op": "set_data", "path": "a..b", "value": 1}], {}, 400, "invalid_path"),
        ([], {}, 400, "invalid"),
        ("not a list", {}, 400, "invalid"),
        ([ADD], {"expected_rev": "abc"}, 400, "invalid"),
        ([ADD], {"expected_rev": 10**40}, 400, "invalid"),
    ],
)
def test_modify_errors_leave_the_session_as_it_was(pos, channel, ops, extra, status, code):
    session = create_session_at(channel, lines=1, rev=2)
    state = DbState(session)
    response = modify(pos, session.session_key, ops, **extra)
    assert response.status_code == status, response.json()
    assert error_of(response) == code
    state.assert_unchanged()


def test_modify_a_locked_or_committed_session_is_a_conflict(pos, marketplace, channel):
    locked = create_session_at(marketplace, lines=0)
    response = modify(pos, locked.session_key, [ADD], channel_code="marketplace")
    assert response.status_code == 409 and error_of(response) == "locked"
    done = create_session_at(channel, lines=1)
    assert commit(pos, done.session_key).status_code == 201
    state = DbState(done)
    again = modify(pos, done.session_key, [ADD])
    assert again.status_code == 409 and error_of(again) == "already_committed"
    state.assert_unchanged()


def test_override_price_is_for_managers_and_records_the_caller(clients, channel):
    session = create_session_at(channel, lines=1)
    line_id = session.lines[0]["line_id"]
    override = {"op": "override_price", "line_id": line_id, "unit_price_q": 500, "reason": "damaged", "actor": "someone-else"}
    state = DbState(session)
    refused = modify(clients["pos"], session.session_key, [override])
    assert refused.status_code == 403 and error_of(refused) == "permission_denied"
    state.assert_unchanged()
    allowed = modify(clients["manager"], session.session_key, [override])
    assert allowed.status_code == 200
    meta = allowed.json()["items"][0]["meta"]["price_override"]
    assert meta == {"from": 1000, "to": 500, "reason": "damaged", "actor": "token:manager"}
    result = commit(clients["manager"], session.session_key).json()
    event = OrderEvent.objects.get(order__ref=result["order_ref"], type="price.overridden")
    assert event.actor == "token:manager"


# -- commit ------------------------------------------------------------------------------------


def test_commit_creates_once_and_replays_with_200(pos, channel):
    session = create_session_at(channel, lines=2)
    first = commit(pos, session.session_key, "idem-1")
    assert first.status_code == 201
    body = first.json()
    assert body["idempotent"] is False and body["items_count"] == 2 and body["total_q"] == 2000
    replay = commit(pos, session.session_key, "idem-1")
    assert replay.status_code == 200 and replay.json() == {**body, "idempotent": True}
    assert Order.objects.count() == 1
    event = OrderEvent.objects.get(order__ref=body["order_ref"], type="created")
    assert event.actor == "token:pos"


def test_commit_errors(pos, channel):
    empty = create_session_at(channel, lines=0)
    state = DbState(empty)
    response = commit(pos, empty.session_key)
    assert response.status_code == 409 and error_of(response) == "empty_session"
    missing_key = pos.post(f"/api/sessions/{empty.session_key}/commit/", {"channel_code": "shop"}, format="json")
    assert missing_key.status_code == 400 and "idempotency_key" in missing_key.json()["error"]["context"]["fields"]
    blank_key = commit(pos, empty.session_key, "   ")
    assert blank_key.status_code == 400
    state.assert_unchanged()
    full = create_session_at(channel, lines=1, rev=3)
    state = DbState(full)
    stale = commit(pos, full.session_key, "idem-2", expected_rev=1)
    assert stale.status_code == 409 and error_of(stale) == "stale_rev"
    state.assert_unchanged()
    other = create_session_at(channel, lines=1)
    assert commit(pos, full.session_key, "shared").status_code == 201
    conflict = commit(pos, other.session_key, "shared")
    assert conflict.status_code == 409 and error_of(conflict) == "conflict"
    assert Session.objects.get(pk=other.pk).state == "open"
    gone = commit(pos, "SESS-NOPE", "idem-3")
    assert gone.status_code == 404 and error_of(gone) == "not_found"


def test_commit_with_blocking_issues_and_a_missing_check_is_refused(pos):
    checked = make_channel("checked", config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(checked, lines=1)
    state = DbState(session)
    response = commit(pos, session.session_key, channel_code="checked")
    assert response.status_code == 409 and error_of(response) == "missing_check"
    state.assert_unchanged()
    issue = {"code": "short", "severity": "blocking", "actions": [{"id": "drop", "ops": [{"op": "remove_line", "line_id": session.lines[0]["line_id"]}]}]}
    SessionWriteService.write_check(
        session.session_key, "checked", check_code="stock", expected_rev=session.rev, result={}, issues=[issue]
    )
    blocked = commit(pos, session.session_key, channel_code="checked")
    assert blocked.status_code == 409 and error_of(blocked) == "blocking_issues"
    assert blocked.json()["error"]["context"]["issues"][0]["code"] == "short"
    assert Order.objects.count() == 0


# -- resolve -----------------------------------------------------------------------------------


def test_resolve_applies_the_actions_ops(pos):
    checked = make_channel("checked", config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(checked, lines=2)
    line_id = session.lines[0]["line_id"]
    issue = {"code": "short", "actions": [{"id": "drop", "label": "Remove", "ops": [{"op": "remove_line", "line_id": line_id}]}]}
    SessionWriteService.write_check(
        session.session_key, "checked", check_code="stock", expected_rev=session.rev, result={}, issues=[issue]
    )
    issue_id = Session.objects.get(pk=session.pk).issues[0]["id"]
    url = f"/api/sessions/{session.session_key}/resolve/"
    state = DbState(Session.objects.get(pk=session.pk))
    for body, code in [
        ({"issue_id": "nope", "action_id": "drop"}, "issue_not_found"),
        ({"issue_id": issue_id, "action_id": "nope"}, "action_not_found"),
        ({"issue_id": issue_id, "action_id": "drop", "expected_rev": 0}, "stale_rev"),
    ]:
        response = pos.post(url, {"channel_code": "checked", **body}, format="json")
        assert response.status_code == 409 and error_of(response) == code
    state.assert_unchanged()
    invalid = pos.post(url, {"channel_code": "checked", "issue_id": issue_id}, format="json")
    assert invalid.status_code == 400 and "action_id" in invalid.json()["error"]["context"]["fields"]
    done = pos.post(url, {"channel_code": "checked", "issue_id": issue_id, "action_id": "drop"}, format="json")
    assert done.status_code == 200
    body = done.json()
    assert body["rev"] == session.rev + 1 and len(body["items"]) == 1 and body["issues"] == []


# -- roles -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [("pos", 200, 201), ("manager", 200, 201), ("kitchen", 200, 403), ("integration", 200, 403), ("nobody", 403, 403), ("anonymous", 401, 401)],
)
def test_session_roles(clients, channel, role, read, write):
    session = create_session_at(channel, lines=1)
    client = clients[role]
    assert client.get("/api/sessions/").status_code == read
    assert client.get(f"/api/sessions/{session.session_key}/", {"channel_code": "shop"}).status_code == read
    state = DbState(session)
    opened = open_session(client)
    assert opened.status_code == write
    if write != 201:
        expected = "not_authenticated" if write == 401 else "permission_denied"
        assert error_of(opened) == expected
        assert modify(client, session.session_key, [ADD]).status_code == write
        assert commit(client, session.session_key).status_code == write
        resolve = client.post(
            f"/api/sessions/{session.session_key}/resolve/",
            {"channel_code": "shop", "issue_id": "x", "action_id": "y"},
            format="json",
        )
        assert resolve.status_code == write
        state.assert_unchanged()
    if role == "anonymous":
        assert opened["WWW-Authenticate"] == "Token"
