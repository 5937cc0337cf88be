"""A database outage answers 503 (never 500): JSON under /api/, a short page elsewhere, ``Retry-After``.

The outage is simulated where the driver would raise; test_database_restart.py restarts a real
PostgreSQL under a running server.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import InterfaceError, OperationalError
from django.test import Client, RequestFactory
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from omniman.models import Session
from omniman.services import SessionService
from omniman.web import outage
from tests.factories import make_channel

pytestmark = pytest.mark.django_db

LOST = OperationalError("terminating connection due to administrator command")


@pytest.fixture
def api():
    user = get_user_model().objects.create_user(username="api", is_superuser=True, is_staff=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def assert_unavailable_json(response):
    assert response.status_code == 503
    assert response["Retry-After"] == str(outage.RETRY_AFTER_SECONDS)
    assert response["Content-Type"] == "application/json"
    error = json.loads(response.content)["error"]
    assert error["code"] == "database_unavailable" and error["context"] == {"retry_after": outage.RETRY_AFTER_SECONDS}


def test_the_api_answers_503_json_when_authentication_cannot_reach_the_database(api, monkeypatch):
    def lost(self, key):
        raise LOST

    monkeypatch.setattr(TokenAuthentication, "authenticate_credentials", lost)
    assert_unavailable_json(api.get("/api/channels/"))


@pytest.mark.parametrize("error", [LOST, InterfaceError("connection already closed")])
def test_an_api_write_cut_off_by_the_outage_answers_503_and_writes_nothing(api, monkeypatch, error):
    make_channel("shop")

    def lost(*args, **kwargs):
        raise error

    monkeypatch.setattr(SessionService, "open_session", lost)
    response = api.post("/api/sessions/", {"channel_code": "shop", "handle_type": "tab", "handle_ref": "7"}, format="json")
    assert_unavailable_json(response)
    assert Session.objects.count() == 0


def test_the_operator_app_answers_a_short_503_page(monkeypatch):
    client = Client()
    client.force_login(get_user_model().objects.create_user(username="cashier", is_superuser=True, is_staff=True))

    def lost(self):
        raise LOST

    monkeypatch.setattr(SessionStore, "load", lost)  # the login session is read first
    response = client.get("/pos/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(outage.RETRY_AFTER_SECONDS)
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert "Back in a moment" in page and "database is not answering" in page
    assert "Traceback" not in page and "terminating connection" not in page


def test_an_outage_met_outside_a_view_is_a_503_too_and_other_errors_stay_500():
    from config import urls

    assert urls.handler500 == "omniman.web.outage.server_error"
    request = RequestFactory().get("/api/orders/")
    try:
        raise LOST
    except OperationalError:
        response = outage.server_error(request)
    assert_unavailable_json(response)
    try:
        raise ValueError("a bug")
    except ValueError:
        assert outage.server_error(RequestFactory().get("/pos/")).status_code == 500


def test_other_database_errors_are_not_disguised_as_an_outage(api, monkeypatch):
    from django.db import IntegrityError

    def broken(self, key):
        raise IntegrityError("a bug, not an outage")

    monkeypatch.setattr(TokenAuthentication, "authenticate_credentials", broken)
    with pytest.raises(IntegrityError):
        api.get("/api/channels/")
