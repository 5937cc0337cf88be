"""Token authentication that reads the caller's roles in the same query as its token.

DRF's ``TokenAuthentication`` reads the token and its user (one query); every
permission check then asks :func:`omniman.roles.roles_of`, which reads the
user's groups (a second query on every request). Here the token's query also
answers, for each role of :data:`omniman.roles.ROLES`, whether the user is in
that group (an ``EXISTS`` per role), and the user object carries its roles
from there: one query per request instead of two. Nothing is cached across
requests, so a revoked token or a removed role counts from the next request.

That query runs on every API request, so it is written once per process (its
SQL from the models' table and column names, the database's own converters for
each column) instead of being built and compiled by the ORM each time: the ORM
spent about 3 ms of CPU per request on it (``benchmarks/profile_api.py``,
``cProfile``), more than the rest of a check-less ``open`` request. Only the
SQL text is kept; the rows are read fresh on every request.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connections, router
from rest_framework import authentication
from rest_framework.authtoken.models import Token

from omniman.roles import MANAGER, ROLES


def _converters(field, connection) -> list:
    """What the ORM applies to a column's value as read (``SQLCompiler.get_converters``)."""
    column = field.get_col(field.model._meta.db_table)
    return [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]


def _statement(connection) -> tuple[str, tuple, tuple, list, list]:
    """The token-with-user-and-roles query for one connection: SQL, token fields, user fields, their converters.

    Kept on the connection object (one per database and thread), whose
    operations the converters belong to.
    """
    statement = getattr(connection, "_omniman_token_statement", None)
    if statement is None:
        statement = connection._omniman_token_statement = _build_statement(connection)
    return statement


def _build_statement(connection) -> tuple[str, tuple, tuple, list, list]:
    qn = connection.ops.quote_name
    user_model = get_user_model()
    token_fields = tuple(Token._meta.concrete_fields)
    user_fields = tuple(user_model._meta.concrete_fields)
    memberships = user_model.groups.through._meta
    group = user_model.groups.field.related_model._meta
    member_user = qn(memberships.get_field(user_model._meta.model_name).column)
    member_group = qn(memberships.get_field(group.model_name).column)
    columns = [f"t.{qn(f.column)}" for f in token_fields] + [f"u.{qn(f.column)}" for f in user_fields]
    roles = [
        f"EXISTS(SELECT 1 FROM {qn(memberships.db_table)} m INNER JOIN {qn(group.db_table)} g "
        f"ON m.{member_group} = g.{qn(group.pk.column)} "
        f"WHERE m.{member_user} = u.{qn(user_model._meta.pk.column)} AND g.{qn(group.get_field('name').column)} = %s)"
        for _ in ROLES
    ]
    user_fk = Token._meta.get_field("user")
    sql = (
        f"SELECT {', '.join(columns + roles)} FROM {qn(Token._meta.db_table)} t "
        f"INNER JOIN {qn(user_model._meta.db_table)} u ON t.{qn(user_fk.column)} = u.{qn(user_fk.target_field.column)} "
        f"WHERE t.{qn(Token._meta.pk.column)} = %s"
    )
    return (
        sql,
        token_fields,
        user_fields,
        [_converters(f, connection) for f in token_fields],
        [_converters(f, connection) for f in user_fields],
    )


def _convert(values, fields, converters, connection) -> list:
    out = []
    for value, field, field_converters in zip(values, fields, converters):
        if field_converters:
            column = field.get_col(field.model._meta.db_table)
            for converter in field_converters:
                value = converter(value, column, connection)
        out.append(value)
    return out


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
            sql, token_fields, user_fields, token_converters, user_converters = _statement(connection)
            with connection.cursor() as cursor:
                cursor.execute(sql, [*ROLES, key])
                row = cursor.fetchone()
            if row is None:
                raise Token.DoesNotExist
            n_token, n_user = len(token_fields), len(user_fields)
            token = Token.from_db(
                alias,
                [f.attname for f in token_fields],
                _convert(row[:n_token], token_fields, token_converters, connection),
            )
            user = get_user_model().from_db(
                alias,
                [f.attname for f in user_fields],
                _convert(row[n_token : n_token + n_user], user_fields, user_converters, connection),
            )
            roles = {role for role, member in zip(ROLES, row[n_token + n_user :]) if member}
            if user.is_superuser:
                roles.add(MANAGER)
            user._omniman_roles = roles  # what roles_of() reads (it would otherwise query the groups)
            token.user = user
            return token


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, with the user's roles read in the same query."""

    model = _TokensWithRoles


__all__ = ["TokenAuthentication"]
