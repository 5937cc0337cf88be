"""Roles are Django groups: ``pos``, ``kitchen``, ``manager``. A superuser counts as a manager."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

POS, KITCHEN, MANAGER = "pos", "kitchen", "manager"


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
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied(f"This screen needs the role {' or '.join(roles)}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def actor(request) -> str:
    return f"user:{request.user.get_username()}"
