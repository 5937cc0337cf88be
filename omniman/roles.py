"""Who someone is to Omniman: roles, below every layer (no HTTP here).

Roles are Django groups: ``pos``, ``kitchen``, ``manager``, and ``integration``
for machine clients of the API (a marketplace connector). A superuser counts
as a manager. The operator app, the API and the admin all ask this module;
what each role may do to an order is the channel's flow
(``OrderFlow.may_transition``).
"""

from __future__ import annotations

POS, KITCHEN, MANAGER = "pos", "kitchen", "manager"
# Machine clients (a marketplace connector) that deliver external orders through the API.
INTEGRATION = "integration"
ROLES = (POS, KITCHEN, MANAGER, INTEGRATION)


def roles_of(user) -> set[str]:
    """The user's roles (its group names; a superuser is also a manager), read once per user object."""
    if user is None or not user.is_authenticated:
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


def actor_of(user) -> str:
    """How a signed-in person's changes are recorded (``OrderEvent.actor``): ``user:<username>``."""
    return f"user:{user.get_username()}"


__all__ = ["POS", "KITCHEN", "MANAGER", "INTEGRATION", "ROLES", "roles_of", "has_role", "actor_of"]
