"""A list costs the same queries for 1 row and for 50."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import create_order_at, create_session_at

pytestmark = pytest.mark.django_db


def queries(client, url, params=None) -> tuple[int, dict]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(captured.captured_queries), response.json()


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/api/orders/", lambda channel: create_order_at("confirmed", channel, lines=3)),
        ("/api/sessions/", lambda channel: create_session_at(channel, lines=3)),
        ("/api/channels/", None),
    ],
    ids=["orders", "sessions", "channels"],
)
def test_list_queries_do_not_grow_with_rows(manager, channel, url, make):
    if make is None:
        from tests.factories import make_channel

        make = lambda _channel: make_channel()  # noqa: E731
    make(channel)
    one, body = queries(manager, url)
    assert body["count"] == (2 if url == "/api/channels/" else 1)
    for _ in range(49):
        make(channel)
    fifty, body = queries(manager, url)
    assert len(body["results"]) == 50
    assert fifty == one, f"{url}: {one} queries for one row, {fifty} for fifty"


def test_order_detail_queries_do_not_grow_with_items_or_events(manager, channel):
    small = create_order_at("new", channel, lines=1)
    big = create_order_at("completed", channel, lines=40)
    a, _ = queries(manager, f"/api/orders/{small.ref}/")
    b, body = queries(manager, f"/api/orders/{big.ref}/")
    assert len(body["items"]) == 40 and len(body["events"]) > 3
    assert a == b


def test_a_token_request_reads_its_roles_in_the_token_query(pos, channel):
    """The token, its user and the user's roles in one query (omniman.api.authentication)."""
    from omniman.services import SessionService

    session = SessionService.open_session(channel.code)
    with CaptureQueriesContext(connection) as captured:
        response = pos.post(
            f"/api/sessions/{session.session_key}/modify/",
            {"channel_code": channel.code, "ops": [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 100}]},
            format="json",
        )
    assert response.status_code == 200, response.content
    sql = [q["sql"] for q in captured.captured_queries]
    token_queries = [q for q in sql if "authtoken_token" in q]
    assert len(token_queries) == 1 and "auth_user_groups" in token_queries[0]
    assert not [q for q in sql if "auth_user_groups" in q and "authtoken_token" not in q], sql


def test_a_role_removed_between_two_requests_counts_at_once(pos, channel):
    from django.contrib.auth.models import Group

    assert pos.get("/api/sessions/").status_code == 200
    Group.objects.get(name="pos").user_set.clear()
    response = pos.get("/api/sessions/")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
