"""The API's one exception handler: every error answers ``{"error": {"code", "message", "context"}}``.

Kernel errors (``OmnimanError``) get their status from their code (``omniman.exceptions.http_status``, SPEC §4);
Django REST framework's own errors (validation, authentication, permissions,
parse errors, unknown paths, methods, throttling) keep their status and get a
stable code. Anything else is a bug: Django answers 500 and logs it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from omniman.exceptions import OmnimanError, http_status

logger = logging.getLogger("omniman.api")

INVALID = "invalid"


def error_body(code: str, message: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "context": context or {}}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """``REST_FRAMEWORK["EXCEPTION_HANDLER"]``."""
    if isinstance(exc, OmnimanError):
        code = http_status(exc)
        if code >= 500:
            logger.error("kernel error in the API: %r", exc, exc_info=exc)
        set_rollback()
        return Response(error_body(exc.code, exc.message, exc.context), status=code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()
    return Response(_body(exc, context), status=exc.status_code, headers=headers)


def _body(exc: exceptions.APIException, context: dict[str, Any]) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        fields = detail if isinstance(detail, dict) else {"non_field_errors": detail}
        return error_body(INVALID, "The request is invalid: see context.fields.", {"fields": fields})
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    extra: dict[str, Any] = {}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["wait"] = int(exc.wait)
    if isinstance(exc, exceptions.MethodNotAllowed):
        request = context.get("request")
        extra["method"] = getattr(request, "method", "")
    return error_body(code, str(exc.detail), extra)
