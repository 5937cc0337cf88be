"""Model instances from hand-written SQL, read as the ORM reads them.

A few queries run on every API request (the token and its roles, the session
a service locks, the catalog's prices and names): building and compiling
them with the ORM cost more CPU than the database spent answering them
(``benchmarks/profile_api.py``, ``cProfile``; see
``docs/deployment/performance.rst``). Those queries are written once per
connection from the models' table and column names; :class:`ModelRows` gives
the select list for one model and turns the selected values into an instance
with the database's and the fields' own converters (JSON, datetimes,
SQLite's booleans…), exactly as a queryset would. Only SQL text is kept:
every row is read from the database each time. The writes of the hot path
go the same way: :func:`save_fields` (a ``save(update_fields=…)``) and
:func:`insert_rows` (a ``bulk_create``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Model


class ModelRows:
    """The select list of every concrete field of ``model`` (under ``table_alias``) and the instances of its rows."""

    def __init__(self, model: type[Model], connection: Any, table_alias: str):
        qn = connection.ops.quote_name
        self.model = model
        self.connection = connection
        self.fields = tuple(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self.columns = ", ".join(f"{table_alias}.{qn(field.column)}" for field in self.fields)
        self._converters = []
        for index, field in enumerate(self.fields):
            column = field.get_col(model._meta.db_table)
            # What SQLCompiler.get_converters() applies: the backend's, then the field's.
            converters = [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]
            if converters:
                self._converters.append((index, column, converters))

    def __len__(self) -> int:
        return len(self.fields)

    @classmethod
    def of(cls, model: type[Model], connection: Any, table_alias: str) -> ModelRows:
        """The reader for ``model`` on ``connection`` (one per connection object: its operations convert)."""
        return kept_per_connection(connection, ("rows", model, table_alias), lambda: cls(model, connection, table_alias))

    def load(self, alias: str, values: Any) -> Model:
        """The instance of one row's values (in :attr:`columns`' order), as ``Model.from_db`` makes it."""
        values = list(values)
        for index, column, converters in self._converters:
            value = values[index]
            for converter in converters:
                value = converter(value, column, self.connection)
            values[index] = value
        return self.model.from_db(alias, self.attnames, values)


def kept_per_connection(connection: Any, key: Any, build: Any) -> Any:
    """``build()`` once per connection object and ``key``: the SQL text (and readers) of a hot query, whose quoting
    and converters are that connection's. Only statements are kept, never rows."""
    kept = connection.__dict__.setdefault("_omniman_statements", {})
    if key not in kept:
        kept[key] = build()
    return kept[key]


def first_with_channel(model: type[Model], where: tuple[tuple[str, str], ...], params: list[Any], *, lock: bool) -> Any:
    """``model.objects.select_related("channel").filter(…).first()`` (``select_for_update(of=("self",))`` when
    ``lock``) as SQL written once per connection; ``None`` when no row matches.

    ``where`` names the equality conditions in ``params``' order, each as
    ``("row", field)`` on ``model`` or ``("channel", field)`` on its channel:
    the session a service reads by key and channel code, the order a
    post-commit handler locks by ref. A lock outside a transaction is refused
    as the ORM refuses it.
    """
    from django.db import connections, router
    from django.db.transaction import TransactionManagementError

    from omniman.models.channel import Channel

    alias = router.db_for_write(model) if lock else router.db_for_read(model)
    connection = connections[alias]
    if lock and connection.features.has_select_for_update and connection.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")

    def build() -> tuple[str, ModelRows, ModelRows]:
        qn = connection.ops.quote_name
        rows, channels = ModelRows.of(model, connection, "r"), ModelRows.of(Channel, connection, "c")
        tables = {"row": ("r", model), "channel": ("c", Channel)}
        conditions = " AND ".join(
            f"{tables[side][0]}.{qn(tables[side][1]._meta.get_field(name).column)} = %s" for side, name in where
        )
        sql = (
            f"SELECT {rows.columns}, {channels.columns} FROM {qn(model._meta.db_table)} r "
            f"INNER JOIN {qn(Channel._meta.db_table)} c "
            f"ON r.{qn(model._meta.get_field('channel').column)} = c.{qn(Channel._meta.pk.column)} "
            f"WHERE {conditions} LIMIT 1"
        )
        if lock and connection.features.has_select_for_update:
            sql += " FOR UPDATE OF r" if connection.features.has_select_for_update_of else " FOR UPDATE"
        return sql, rows, channels

    statement = kept_per_connection(connection, ("first_with_channel", model, where, lock), build)
    sql, rows, channels = statement
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    instance = rows.load(alias, row[: len(rows)])
    model._meta.get_field("channel").set_cached_value(instance, channels.load(alias, row[len(rows) :]))
    return instance


__all__ = ["ModelRows", "first_with_channel", "kept_per_connection"]


def save_fields(instance: Model, fields: Any) -> None:
    """``instance.save(update_fields=fields)`` as an ``UPDATE`` written once per connection and field list.

    The values go through each field's ``pre_save`` (``auto_now``) and
    ``get_db_prep_save``, as ``Model.save()`` converts them; no ``pre_save``/
    ``post_save`` signals are sent (the caller's model has no receivers). Like
    ``save(update_fields=…)``, a row that is gone raises ``DatabaseError``. The
    ORM spent more CPU compiling these updates than the database spent running them.
    """
    from django.db import DatabaseError, connections, router

    model = type(instance)
    connection = connections[router.db_for_write(model, instance=instance)]
    names = tuple(dict.fromkeys(fields))
    columns = [model._meta.get_field(name) for name in names]

    def build() -> str:
        qn = connection.ops.quote_name
        assignments = ", ".join(f"{qn(field.column)} = %s" for field in columns)
        return f"UPDATE {qn(model._meta.db_table)} SET {assignments} WHERE {qn(model._meta.pk.column)} = %s"

    sql = kept_per_connection(connection, ("save_fields", model._meta.label, names), build)
    params = [field.get_db_prep_save(field.pre_save(instance, False), connection) for field in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, instance.pk])
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")
    instance._state.db = connection.alias


def insert_rows(model: type[Model], objs: list[Model]) -> list[Model]:
    """``model.objects.bulk_create(objs)`` for the hot paths, as one ``INSERT … RETURNING`` written once per
    connection: the same rows, the same conversions (each field's ``pre_save`` and ``get_db_prep_save``), the
    primary keys set on ``objs``, and no signals (``bulk_create`` sends none). On PostgreSQL several rows go
    in as one array per column (``SELECT * FROM UNNEST(…)``, as Django's own bulk insert), so one statement
    serves any number of rows; elsewhere one ``VALUES`` tuple per row. A database that cannot return the
    new keys takes ``bulk_create``."""
    from django.db import connections, router

    objs = list(objs)
    if not objs:
        return objs
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    columns = [field for field in meta.concrete_fields if not field.primary_key]
    unnest = connection.vendor == "postgresql" and len(objs) > 1
    if not connection.features.can_return_rows_from_bulk_insert or (not unnest and len(objs) * len(columns) > 999):
        return model.objects.bulk_create(objs)  # no keys returned, or more parameters than SQLite may take

    def build() -> str:
        qn = connection.ops.quote_name
        names = ", ".join(qn(field.column) for field in columns)
        returning = f" RETURNING {qn(meta.pk.column)}"
        if unnest:
            arrays = ", ".join(f"(%s)::{field.db_type(connection).split('(')[0]}[]" for field in columns)
            return f"INSERT INTO {qn(meta.db_table)} ({names}) SELECT * FROM UNNEST({arrays}){returning}"
        row = f"({', '.join(['%s'] * len(columns))})"
        return f"INSERT INTO {qn(meta.db_table)} ({names}) VALUES {', '.join([row] * len(objs))}{returning}"

    sql = kept_per_connection(connection, ("insert_rows", meta.label, "unnest" if unnest else len(objs)), build)
    for obj in objs:  # a foreign key to an object saved since it was set (the order's events), as bulk_create
        obj._prepare_related_fields_for_save(operation_name="insert_rows")
    rows = [[field.get_db_prep_save(field.pre_save(obj, True), connection) for field in columns] for obj in objs]
    params = [list(values) for values in zip(*rows)] if unnest else [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [row[0] for row in cursor.fetchall()]
    for obj, key in zip(objs, keys, strict=True):
        obj.pk = key
        obj._state.adding = False
        obj._state.db = connection.alias
    return objs
