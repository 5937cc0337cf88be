"""Who reaches the POS: anonymous → the login page, kitchen → 403 and nothing changes, pos/manager/superuser → in;
GET-only and POST-only URLs; unknown channels and sessions are 404 (``omniman.web.pos``, ``omniman.web.roles``).
"""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from omniman.models import Channel, Session
from tests.factories import DbState
from tests.integration.web.helpers import (
    CAFE,
    HX,
    LOGIN,
    logged_in,
    basket,
    url,
    text,
)

pytestmark = [pytest.mark.django_db, CAFE]


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
