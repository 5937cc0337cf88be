"""The input guard's API prefix (``omniman.web.clean_input.api_prefix``): reversed once, not on every request,
and again whenever what ``reverse`` reads changes (the URLconf, the script prefix). No database."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import get_script_prefix, include, path, set_script_prefix

from omniman import conf
from omniman.web import clean_input

urlpatterns = [path("v2/", include("omniman.api.urls"))]  # this module as a URLconf: the API elsewhere


@pytest.fixture
def reversals(monkeypatch) -> list[str]:
    """The ``reverse`` calls the guard makes, from a cold cache."""
    calls: list[str] = []
    original = clean_input.reverse

    def counting(name, *args, **kwargs):
        calls.append(name)
        return original(name, *args, **kwargs)

    monkeypatch.setattr(clean_input, "reverse", counting)
    monkeypatch.setattr(clean_input, "_api_prefix", None, raising=False)
    return calls


def test_the_prefix_is_reversed_once(reversals):
    assert [clean_input.api_prefix() for _ in range(3)] == ["/api/"] * 3
    assert reversals == ["api:root"]


def test_the_guard_reverses_once_across_requests(reversals):
    """Oversized bodies answer the API's 413 before anything reads them, request after request."""
    oversized = str(conf.get("API_MAX_BODY_BYTES") + 1)
    for _ in range(3):
        response = Client().generic("POST", "/api/sessions/", b"{}", "application/json", CONTENT_LENGTH=oversized)
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
    assert reversals == ["api:root"]


def test_another_urlconf_moves_the_prefix(reversals):
    assert clean_input.api_prefix() == "/api/"
    with override_settings(ROOT_URLCONF=__name__):
        assert clean_input.api_prefix() == "/v2/"
        oversized = str(conf.get("API_MAX_BODY_BYTES") + 1)
        moved = Client().generic("POST", "/v2/sessions/", b"{}", "application/json", CONTENT_LENGTH=oversized)
        assert moved.status_code == 413 and moved.json()["error"]["code"] == "payload_too_large"
    assert clean_input.api_prefix() == "/api/"


def test_a_script_prefix_moves_the_prefix(reversals):
    before = get_script_prefix()
    try:
        set_script_prefix("/omniman/")
        assert clean_input.api_prefix() == "/omniman/api/"
    finally:
        set_script_prefix(before)
    assert clean_input.api_prefix() == "/api/"
