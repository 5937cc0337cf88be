"""Who may call what: roles are Django groups (``omniman.roles``).

- read (GET): ``pos``, ``kitchen``, ``manager``, ``integration``
- sessions (open, modify, commit, resolve): ``pos``, ``manager``
- order transitions: ``pos``, ``kitchen``, ``manager`` (the POS closes tables, the kitchen bumps) — and
  then only the moves the channel's flow gives the role (``OrderFlow.may_transition``, checked by
  ``OrderService.transition(roles=…)``: ``forbidden_transition``, 403)
- the ``override_price`` op: ``manager`` only
- external orders (ingestion, status updates): ``integration``, ``manager``

A superuser counts as a manager.
"""

from __future__ import annotations

from rest_framework.authtoken.models import Token
from rest_framework.permissions import SAFE_METHODS, BasePermission

from omniman.roles import INTEGRATION, KITCHEN, MANAGER, POS, has_role

READERS = (POS, KITCHEN, MANAGER, INTEGRATION)
SESSION_WRITERS = (POS, MANAGER)
ORDER_WRITERS = (POS, KITCHEN, MANAGER)
PRICE_OVERRIDERS = (MANAGER,)
INGESTERS = (INTEGRATION, MANAGER)


class RolePermission(BasePermission):
    """Authenticated, with one of ``read_roles`` for safe methods, one of ``write_roles`` otherwise."""

    read_roles: tuple[str, ...] = READERS
    write_roles: tuple[str, ...] = ()

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if not hasattr(view, request.method.lower()):
            return True  # the view answers 405 method_not_allowed
        roles = self.read_roles if request.method in SAFE_METHODS else self.write_roles
        if has_role(user, *roles):
            return True
        self.message = f"This needs the role {' or '.join(roles)}."
        return False


class CanRead(RolePermission):
    write_roles = ()


class CanWriteSessions(RolePermission):
    write_roles = SESSION_WRITERS


class CanTransitionOrders(RolePermission):
    write_roles = ORDER_WRITERS


class CanIngest(RolePermission):
    read_roles = INGESTERS
    write_roles = INGESTERS


def can_override_prices(user) -> bool:
    return has_role(user, *PRICE_OVERRIDERS)


def actor(request) -> str:
    """Who an API write is recorded as: ``token:<username>`` with a token, ``user:<username>`` with a login session."""
    prefix = "token" if isinstance(request.auth, Token) else "user"
    return f"{prefix}:{request.user.get_username()}"


KITCHEN_WRITERS = (KITCHEN, MANAGER)
FIRERS = (POS, MANAGER)


class CanWorkKitchen(RolePermission):
    """Bump, undo, acknowledge voids, 86 products: the kitchen and managers."""

    write_roles = KITCHEN_WRITERS


class CanFireCourses(RolePermission):
    """Fire (or hold) a course: the POS and managers."""

    write_roles = FIRERS
