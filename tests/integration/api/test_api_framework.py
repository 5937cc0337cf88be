"""The framework's share of an API request: content negotiation and the token header, answered as DRF answers
them, without the per-request work DRF does (``request.headers``, parsing ``Accept``)."""

from __future__ import annotations

import pytest
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication as DrfTokenAuthentication
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer, TemplateHTMLRenderer
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.authtoken.models import Token

from omniman.api.authentication import TokenAuthentication
from omniman.api.negotiation import ContentNegotiation
from omniman.api.views import SessionListView
from tests.integration.api.conftest import error_of, make_user

ACCEPTS = [
    None,
    "*/*",
    "application/json",
    "",
    "text/html",
    "application/json; indent=4",
    "application/json;q=0.5, text/html",
    "text/html, */*;q=0.1",
    "application/*",
    "APPLICATION/JSON",
    " application/json",
    "image/png",
]
QUERIES = ["", "format=json", "format=api", "a=1"]
RENDERER_LISTS = [[JSONRenderer()], [BrowsableAPIRenderer(), JSONRenderer()], [JSONRenderer(), TemplateHTMLRenderer()]]


def negotiate(negotiation, accept, query, renderers, suffix):
    extra = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/orders/{'?' + query if query else ''}", **extra))
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except Exception as exc:  # noqa: BLE001 - the same exception is the answer to compare
        return type(exc).__name__
    return type(renderer).__name__, media_type


@pytest.mark.parametrize("accept", ACCEPTS)
@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("renderers", range(len(RENDERER_LISTS)))
@pytest.mark.parametrize("suffix", [None, "json"])
def test_negotiation_answers_as_drf(accept, query, renderers, suffix):
    listed = RENDERER_LISTS[renderers]
    assert negotiate(ContentNegotiation(), accept, query, listed, suffix) == negotiate(
        DefaultContentNegotiation(), accept, query, listed, suffix
    )


def test_the_api_uses_it():
    assert SessionListView().get_content_negotiator().__class__ is ContentNegotiation


def authenticate(authentication, header):
    request = Request(APIRequestFactory().get("/api/orders/", **({} if header is None else {"HTTP_AUTHORIZATION": header})))
    try:
        answer = authentication.authenticate(request)
    except exceptions.AuthenticationFailed as exc:
        return "failed", str(exc.detail)
    return None if answer is None else (answer[0].pk, answer[1].pk)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [None, "", "Token", "token", "Token a b", "Token n\xf3pe", "Bearer x", "Basic eA==", "Token nope", "TOKEN {key}", "Token {key}"],
)
def test_the_token_header_reads_as_drf_reads_it(header):
    key = Token.objects.create(user=make_user("ana", "pos")).key
    header = header.format(key=key) if header else header
    ours = authenticate(TokenAuthentication(), header)
    drf = DrfTokenAuthentication()
    drf.model = TokenAuthentication.model  # the same query: only the header reading is compared
    assert ours == authenticate(drf, header)


@pytest.mark.django_db
def test_an_api_request_builds_no_copy_of_the_headers(channel):
    """Neither the negotiation nor the token authentication reads ``request.headers`` on a usual API request."""
    key = Token.objects.create(user=make_user("ana", "pos")).key
    request = APIRequestFactory().post(
        "/api/sessions/", {"channel_code": "shop"}, format="json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    response = SessionListView.as_view()(request)
    assert response.status_code == 201, response.data
    assert "headers" not in request.__dict__


@pytest.mark.django_db
def test_a_malformed_token_header_is_401(channel):
    for header in ("Token", "Token a b", "Token n\xf3pe"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        response = client.post("/api/sessions/", {"channel_code": "shop"}, format="json")
        assert response.status_code == 401 and error_of(response) == "authentication_failed"
