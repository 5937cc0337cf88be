"""Content-Security-Policy for every response (Django 5.2 has none built in).

``settings.SECURE_CSP`` is the policy, in the shape of Django 6's setting of
the same name (``{"script-src": ["'self'"], ...}``); ``SECURE_CSP_PATHS`` maps
a path prefix to directives that replace the base ones under it (the unfold
admin's relaxation lives there, nowhere else). ``SECURE_CSP_REPORT_ONLY``
sends the policy as ``Content-Security-Policy-Report-Only`` instead, to try a
change without breaking anything. A response that already carries the header
keeps it. On Django 6 this middleware gives way to
``django.middleware.csp.ContentSecurityPolicyMiddleware``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
REPORT_ONLY_HEADER = "Content-Security-Policy-Report-Only"


def build_policy(directives: Mapping[str, Sequence[str]]) -> str:
    """``{"default-src": ["'self'"], "upgrade-insecure-requests": []}`` → ``default-src 'self'; upgrade-insecure-requests``."""
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


def policy_for(path: str) -> str:
    """The policy for a request path: the base directives, with the longest matching prefix's on top."""
    directives = dict(getattr(settings, "SECURE_CSP", {}) or {})
    prefixes = getattr(settings, "SECURE_CSP_PATHS", {}) or {}
    matching = [prefix for prefix in prefixes if path.startswith(prefix)]
    if matching:
        directives.update(prefixes[max(matching, key=len)])
    return build_policy(directives)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        header = REPORT_ONLY_HEADER if getattr(settings, "SECURE_CSP_REPORT_ONLY", False) else HEADER
        if header not in response:
            policy = policy_for(request.path)
            if policy:
                response[header] = policy
        return response
