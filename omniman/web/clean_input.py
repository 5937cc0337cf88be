"""Refuse control characters before any view sees them, and oversized API bodies before anything reads them.

One middleware for the whole site (operator app, kitchen, admin, API): a
request whose path, query or form fields carry a NUL or another control
character never reaches a view, so no text column is ever asked to store one
(PostgreSQL refuses NUL with a ``DataError``, which would be a 500).

- Path segments and field *names* may hold no control character at all.
- Field *values* may hold tab, newline and carriage return (multi-line notes);
  every other C0 control character and DEL are refused.
- Under the API prefix only the path and the query are checked here: its
  bodies are JSON, refused by its parser when they hold a NUL.

The answer: under the API prefix, the API's own 400 body (code ``invalid``,
``context.fields``); an HTMX request gets 422 with the message swapped into the
page's ``#input-error`` region; any other request a short 400 page. Under the
API prefix a body larger than ``OMNIMAN["API_MAX_BODY_BYTES"]`` (declared by
``Content-Length``) answers 413 ``payload_too_large`` before anything reads it;
a body without a declared length is capped by the API's parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import get_resolver, get_script_prefix, get_urlconf, reverse
from django.utils.html import format_html
from django.utils.translation import get_language, gettext as _

from omniman import conf


# C0 controls and DEL; values keep tab, newline and carriage return.
NAME_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
VALUE_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

INPUT_ERROR_ID = "input-error"


def bad_field(request: HttpRequest, *, form: bool = True) -> str | None:
    """The name of the first field (``"path"`` for the URL) that carries a refused character, or ``None``.

    ``form=False`` leaves the body alone (the API's bodies are JSON, read and checked by its parser).
    """
    if NAME_CONTROL.search(request.path):
        return "path"
    sources = [request.GET]
    if form and request.method not in ("GET", "HEAD", "OPTIONS"):
        sources.append(request.POST)
    for source in sources:
        for name, values in source.lists():
            if NAME_CONTROL.search(name):
                return _("field name")
            if any(VALUE_CONTROL.search(value) for value in values):
                return name
    return None


_api_prefix: tuple[object, str, str | None, str] | None = None  # the last (resolver, script prefix, language, prefix)


def api_prefix() -> str:
    """``reverse("api:root")``, reversed again only when what it depends on changes, not on every request.

    The key is what ``reverse`` reads: the resolver (Django builds a new one when the URLconf changes: the
    request's ``urlconf``, ``override_settings(ROOT_URLCONF=…)``, ``clear_url_caches()``), the script prefix
    and the active language (translated paths). One entry: the last one seen.
    """
    global _api_prefix
    key = (get_resolver(get_urlconf()), get_script_prefix(), get_language())
    cached = _api_prefix
    if cached is not None and cached[0] is key[0] and cached[1] == key[1] and cached[2] == key[2]:
        return cached[3]
    prefix = reverse("api:root")
    _api_prefix = (*key, prefix)
    return prefix


def declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def too_large_response(limit: int) -> JsonResponse:
    """The API's 413 (also answered by its parser for a body without a declared length)."""
    return JsonResponse(
        {
            "error": {
                "code": "payload_too_large",
                "message": _("The request body is larger than %(limit)d bytes.") % {"limit": limit},
                "context": {"max_bytes": limit},
            }
        },
        status=413,
    )


def refused_response(request: HttpRequest, field: str, *, api: bool) -> HttpResponse:
    message = _("“%(field)s” contains a control character (such as NUL). Remove it and try again.") % {"field": field}
    if api:
        return JsonResponse(
            {
                "error": {
                    "code": "invalid",
                    "message": _("The request is invalid: see context.fields."),
                    "context": {"fields": {field: [message]}},
                }
            },
            status=400,
        )
    body = format_html('<div id="{}" class="flash" role="alert"><p class="flash-error">{}</p></div>', INPUT_ERROR_ID, message)
    if request.headers.get("HX-Request") == "true":
        response = HttpResponse(body, status=422)
        response["HX-Retarget"] = f"#{INPUT_ERROR_ID}"
        response["HX-Reswap"] = "outerHTML"
        return response
    page = format_html(
        '<!doctype html><html><head><meta charset="utf-8"><title>{}</title></head><body>{}</body></html>',
        _("Bad request"),
        body,
    )
    return HttpResponse(page, status=400)


class CleanInputMiddleware:
    """Answer 400 (422 for HTMX, JSON under ``/api/``) to control characters, 413 to oversized API bodies."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        api = request.path_info.startswith(api_prefix())
        if api:
            limit = conf.get("API_MAX_BODY_BYTES")
            if declared_length(request) > limit:
                return too_large_response(limit)
        field = bad_field(request, form=not api)
        if field is not None:
            return refused_response(request, field, api=api)
        return self.get_response(request)
