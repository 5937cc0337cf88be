"""The operator app's door: ``role_required`` (a view decorator) and ``actor(request)``.

The roles themselves live below every layer, in ``omniman.roles``.
"""

from __future__ import annotations

from functools import wraps

from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import resolve_url
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from omniman.roles import actor_of, has_role


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
    """Who a request's changes are recorded as (``omniman.roles.actor_of``)."""
    return actor_of(request.user)
