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
every row is read from the database each time.
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
        readers = connection.__dict__.setdefault("_omniman_model_rows", {})
        reader = readers.get((model, table_alias))
        if reader is None:
            reader = readers[(model, table_alias)] = cls(model, connection, table_alias)
        return reader

    def load(self, alias: str, values: Any) -> Model:
        """The instance of one row's values (in :attr:`columns`' order), as ``Model.from_db`` makes it."""
        values = list(values)
        for index, column, converters in self._converters:
            value = values[index]
            for converter in converters:
                value = converter(value, column, self.connection)
            values[index] = value
        return self.model.from_db(alias, self.attnames, values)


__all__ = ["ModelRows"]
