"""A database outage answers 503, never 500: JSON for the API, a short page for the operator app.

PostgreSQL restarting, a failover or a lost network raise Django's
``OperationalError`` or ``InterfaceError`` wherever a request touches the
database. :class:`DatabaseUnavailableMiddleware` turns those raised by a view
(the API's included: its exception handler leaves them alone) into a 503 with
``Retry-After``; :func:`server_error` (``handler500``) does the same for one
raised by a middleware (a session saved on the way out). Django drops a
connection that errored at the end of the request, and with persistent
connections checks it before reuse (``CONN_HEALTH_CHECKS``), so the first
request after the outage gets a fresh one.

Nothing here touches the database: the page renders without the request's
context processors (no user, no session).
"""

from __future__ import annotations

import logging
import sys
import time

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.views import defaults

logger = logging.getLogger("omniman.web")

CODE = "database_unavailable"
RETRY_AFTER_SECONDS = 5
DATABASE_ERRORS = (OperationalError, InterfaceError)
LOG_EVERY_SECONDS = 10.0  # one warning per process per this long, not one per request of an outage

_last_logged = float("-inf")


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def database_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """The 503 for ``request``: ``{"error": {"code": "database_unavailable", …}}`` under /api/, else the page."""
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= LOG_EVERY_SECONDS:
        _last_logged = now
        logger.warning(
            "database unavailable: answering 503",
            extra={"path": request.path_info, "error": type(exc).__name__, "status_code": 503},
        )
    if is_api(request):
        body = {
            "error": {
                "code": CODE,
                "message": _("The database is unavailable. Try again shortly; a commit retried with the same idempotency key is safe."),
                "context": {"retry_after": RETRY_AFTER_SECONDS},
            }
        }
        response: HttpResponse = JsonResponse(body, status=503)
    else:
        html = render_to_string("errors/database_unavailable.html", {"retry_after": RETRY_AFTER_SECONDS})
        response = HttpResponse(html, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """``process_exception``: a view that lost the database answers 503 instead of 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            return database_unavailable(request, exception)
        return None


def server_error(request: HttpRequest, template_name: str = defaults.ERROR_500_TEMPLATE_NAME) -> HttpResponse:
    """``handler500``: an outage met outside a view (in a middleware) is a 503 too; anything else is Django's 500."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_ERRORS):
        return database_unavailable(request, exc)
    return defaults.server_error(request, template_name)
