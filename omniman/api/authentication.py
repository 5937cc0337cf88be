"""Token authentication that reads the caller's roles in the same query as its token.

DRF's ``TokenAuthentication`` reads the token and its user (one query); every
permission check then asks :func:`omniman.roles.roles_of`, which reads the
user's groups (a second query on every request). Here the token's query also
answers, for each role of :data:`omniman.roles.ROLES`, whether the user is in
that group (an ``EXISTS`` per role), and the user object carries its roles
from there: one query per request instead of two. Nothing is cached across
requests, so a revoked token or a removed role counts from the next request.

That query runs on every API request, so it is written once per process (its
SQL from the models' table and column names, read by
:class:`omniman.models.ModelRows`) instead of being built and compiled by the ORM each time: the ORM
spent about 3 ms of CPU per request on it (``benchmarks/profile_api.py``,
``cProfile``), more than the rest of a check-less ``open`` request. Only the
SQL text is kept; the rows are read fresh on every request.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connections, router
from rest_framework import authentication
from rest_framework.authtoken.models import Token

from omniman.models import ModelRows, kept_per_connection
from omniman.roles import MANAGER, ROLES


def _statement(connection) -> tuple[str, ModelRows, ModelRows]:
    """The token-with-user-and-roles query for one connection, and the readers of its token and user columns.

    Kept on the connection object (one per database and thread), whose
    operations convert the values read.
    """

    def build() -> tuple[str, ModelRows, ModelRows]:
        qn = connection.ops.quote_name
        user_model = get_user_model()
        tokens, users = ModelRows.of(Token, connection, "t"), ModelRows.of(user_model, connection, "u")
        memberships = user_model.groups.through._meta
        group = user_model.groups.field.related_model._meta
        member_user = qn(memberships.get_field(user_model._meta.model_name).column)
        member_group = qn(memberships.get_field(group.model_name).column)
        roles = [
            f"EXISTS(SELECT 1 FROM {qn(memberships.db_table)} m INNER JOIN {qn(group.db_table)} g "
            f"ON m.{member_group} = g.{qn(group.pk.column)} "
            f"WHERE m.{member_user} = u.{qn(user_model._meta.pk.column)} AND g.{qn(group.get_field('name').column)} = %s)"
            for _ in ROLES
        ]
        user_fk = Token._meta.get_field("user")
        sql = (
            f"SELECT {tokens.columns}, {users.columns}, {', '.join(roles)} FROM {qn(Token._meta.db_table)} t "
            f"INNER JOIN {qn(user_model._meta.db_table)} u ON t.{qn(user_fk.column)} = u.{qn(user_fk.target_field.column)} "
            f"WHERE t.{qn(Token._meta.pk.column)} = %s"
        )
        return sql, tokens, users

    return kept_per_connection(connection, "token_with_roles", build)


class _TokensWithRoles:
    """What ``TokenAuthentication.authenticate_credentials`` asks of its ``model``: the tokens, with users and roles.

    DRF calls ``model.objects.select_related("user").get(key=key)``; that
    answers with a :class:`~rest_framework.authtoken.models.Token` whose
    ``user`` is loaded and carries ``_omniman_roles``, or raises
    ``DoesNotExist``.
    """

    DoesNotExist = Token.DoesNotExist

    class objects:  # noqa: N801 - the Manager-like attribute DRF reads
        @classmethod
        def select_related(cls, *fields):
            return cls

        @staticmethod
        def get(*, key: str) -> Token:
            alias = router.db_for_read(Token)
            connection = connections[alias]
            sql, tokens, users = _statement(connection)
            with connection.cursor() as cursor:
                cursor.execute(sql, [*ROLES, key])
                row = cursor.fetchone()
            if row is None:
                raise Token.DoesNotExist
            token = tokens.load(alias, row[: len(tokens)])
            user = users.load(alias, row[len(tokens) : len(tokens) + len(users)])
            roles = {role for role, member in zip(ROLES, row[len(tokens) + len(users) :]) if member}
            if user.is_superuser:
                roles.add(MANAGER)
            user._omniman_roles = roles  # what roles_of() reads (it would otherwise query the groups)
            token.user = user
            return token


class _AuthorizationOnly:
    """What DRF's ``get_authorization_header`` reads of a request: its ``headers``, here only ``Authorization``."""

    __slots__ = ("headers",)

    def __init__(self, header: str | None):
        self.headers = {} if header is None else {"authorization": header}


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with the user's roles read in the same query.

    DRF's ``get_authorization_header`` reads ``request.headers``, a copy of
    every header Django builds on first use, which nothing else on an API
    request needs: DRF's own checks and messages get the one header, read from
    ``request.META`` (as DRF read it before 3.15).
    """

    model = _TokensWithRoles

    def authenticate(self, request):
        return super().authenticate(_AuthorizationOnly(request.META.get("HTTP_AUTHORIZATION")))


__all__ = ["TokenAuthentication"]
