"""Token authentication that reads the caller's roles in the same query as its token.

DRF's ``TokenAuthentication`` reads the token and its user (one query); every
permission check then asks :func:`omniman.roles.roles_of`, which reads the
user's groups (a second query on every request). Here the token's query also
answers, for each role of :data:`omniman.roles.ROLES`, whether the user is in
that group (an ``EXISTS`` per role), and the user object carries its roles
from there: one query per request instead of two. Nothing is cached across
requests, so a revoked token or a removed role counts from the next request.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from rest_framework import authentication
from rest_framework.authtoken.models import Token

from omniman.roles import MANAGER, ROLES


def _role_flags() -> dict[str, Exists]:
    memberships = get_user_model().groups.through.objects
    return {
        f"omniman_role_{role}": Exists(memberships.filter(user_id=OuterRef("user_id"), group__name=role))
        for role in ROLES
    }


class _TokensWithRoles:
    """What ``TokenAuthentication.authenticate_credentials`` asks of its ``model``: the tokens, annotated."""

    DoesNotExist = Token.DoesNotExist

    class objects:  # noqa: N801 - the Manager-like attribute DRF reads
        @staticmethod
        def select_related(*fields):
            return Token.objects.select_related(*fields).annotate(**_role_flags())


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with the user's roles read in the same query."""

    model = _TokensWithRoles

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        if all(hasattr(token, f"omniman_role_{role}") for role in ROLES):
            roles = {role for role in ROLES if getattr(token, f"omniman_role_{role}")}
            if user.is_superuser:
                roles.add(MANAGER)
            user._omniman_roles = roles  # what roles_of() reads (it would otherwise query the groups)
        return user, token


__all__ = ["TokenAuthentication"]
