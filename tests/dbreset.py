"""Empty the database after a transactional test faster than Django's ``flush``, to the same state.

Django's ``TransactionTestCase`` ends each test with ``flush``: on PostgreSQL one
``TRUNCATE`` of every table (a new file for each table and index: about a second per
test on a busy CI machine), then the ``post_migrate`` signal, which recreates the
content types and permissions the flush deleted (a few hundred queries).

``reset`` leaves the same rows behind, cheaper:

* every table is emptied with ``DELETE`` in one transaction (foreign keys are
  checked at commit, when every table is empty), as Django's SQLite flush does;
* the tables ``post_migrate`` fills (content types, permissions) are kept when they
  hold exactly what the last ``post_migrate`` wrote (a test that changed them gets
  the full flush and the signal again), and the signal is then not sent: it would
  write nothing. The other receivers of ``post_migrate``, if an app ever adds one,
  make every reset the full one.

Anything unexpected (a test case with ``available_apps`` or ``serialized_rollback``,
a constraint that cannot wait for the commit) falls back to Django's own ``flush``.
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal
from django.db import DatabaseError, connections, transaction
from django.db.models.signals import post_migrate

# The tables post_migrate fills, with the receivers that fill them.
KEPT_TABLES = ("django_content_type", "auth_permission")
KNOWN_RECEIVERS = {
    ("django.contrib.contenttypes.management", "create_contenttypes"),
    ("django.contrib.auth.management", "create_permissions"),
}
# Per database alias: the rows of KEPT_TABLES as the last post_migrate left them.
_baseline: dict[str, tuple] = {}
_original_teardown = None


def install() -> None:
    """Use ``reset`` in every ``TransactionTestCase`` teardown (pytest-django's ``transactional_db``)."""
    global _original_teardown
    from django.test import TransactionTestCase

    if _original_teardown is not None:
        return
    _original_teardown = TransactionTestCase._fixture_teardown

    def _fixture_teardown(self):
        if self.available_apps is not None or self.serialized_rollback:
            return _original_teardown(self)
        for db_name in self._databases_names(include_mirrors=False):
            reset(db_name)

    TransactionTestCase._fixture_teardown = _fixture_teardown


def reset(db_name: str) -> None:
    connection = connections[db_name]
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    keep = _only_known_receivers() and _baseline.get(db_name) is not None and _kept_rows(connection) == _baseline[db_name]
    emptied = [table for table in tables if not (keep and table in KEPT_TABLES)]
    try:
        with transaction.atomic(using=db_name):
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                for table in emptied:
                    cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)}")
    except DatabaseError:
        _baseline.pop(db_name, None)
        call_command("flush", verbosity=0, interactive=False, database=db_name, reset_sequences=False)
        return
    if not keep:
        emit_post_migrate_signal(0, False, db_name)
        _baseline[db_name] = _kept_rows(connection) if _only_known_receivers() else None


def _only_known_receivers() -> bool:
    receivers = [ref() if callable(ref) and not hasattr(ref, "__code__") else ref for _key, ref, *_ in post_migrate.receivers]
    return all((getattr(r, "__module__", ""), getattr(r, "__name__", "")) in KNOWN_RECEIVERS for r in receivers)


def _kept_rows(connection) -> tuple:
    existing = set(connection.introspection.table_names())
    rows = []
    with connection.cursor() as cursor:
        for table in KEPT_TABLES:
            if table in existing:
                cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)} ORDER BY 1")
                rows.append(tuple(cursor.fetchall()))
    return tuple(rows)
