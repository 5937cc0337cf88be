"""Roles are Django groups: ``pos``, ``kitchen``, ``manager`` (and ``integration`` for API clients). A superuser counts as a manager."""

from __future__ import annotations

from functools import wraps

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import resolve_url
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

POS, KITCHEN, MANAGER = "pos", "kitchen", "manager"
# Machine clients (a marketplace connector) that deliver external orders through the API.
INTEGRATION = "integration"


def roles_of(user) -> set[str]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_omniman_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            cached.add(MANAGER)
        user._omniman_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(roles_of(user) & set(roles))


def role_required(*roles: str):
    """Login first (redirect to ``/accounts/login/``), then one of ``roles`` (403 otherwise)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    # Not a 302 htmx would follow and swap into a region: reload into the login page.
                    page = request.htmx.current_url_abs_path or request.get_full_path()
                    return HttpResponseClientRedirect(f"{resolve_url(settings.LOGIN_URL)}?{urlencode({'next': page})}")
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, *roles):
                raise PermissionDenied(_("This screen needs the role %(roles)s.") % {"roles": " / ".join(roles)})
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def actor(request) -> str:
    return f"user:{request.user.get_username()}"
