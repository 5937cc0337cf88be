"""API fixtures: a user per role with a token, a client per role, the demo's marketplace channel."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import make_channel

ROLES = ("pos", "kitchen", "manager", "integration")

MARKETPLACE_CONFIG = {
    "post_commit_directives": ["stock.commit"],
    "order_flow": {"auto_transitions": {"on_create": "confirmed"}, "on_enter": {"cancelled": ["stock.release"]}},
    "ingestion": {
        "status_map": {"accepted": "confirmed", "preparing": "processing", "picked_up": "dispatched", "canceled": "cancelled"}
    },
}


def make_user(username: str, *roles: str):
    user = get_user_model().objects.create_user(username=username)  # no password: tokens, and no slow hashing
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
    return user


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def clients(db) -> dict[str, APIClient]:
    """One token client per role, plus ``"nobody"`` (a user without a role) and ``"anonymous"``."""
    made = {role: token_client(make_user(role, role)) for role in ROLES}
    made["nobody"] = token_client(make_user("nobody"))
    made["anonymous"] = APIClient()
    return made


@pytest.fixture
def manager(clients) -> APIClient:
    return clients["manager"]


@pytest.fixture
def pos(clients) -> APIClient:
    return clients["pos"]


@pytest.fixture
def channel(db):
    return make_channel("shop", name="Shop")


@pytest.fixture
def marketplace(db):
    return make_channel(
        "marketplace", name="Marketplace", pricing_policy="external", edit_policy="locked", config=MARKETPLACE_CONFIG
    )


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "context"}, body
    return body["error"]["code"]
