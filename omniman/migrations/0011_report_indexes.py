"""PostgreSQL: four indexes for the manager's reports (issue #18), so a month's report reads only the rows that
can matter instead of every order's snapshot.

- ``omniman_order_discounted`` — the orders whose snapshot holds a ``discount`` adjustment, or no adjustments at all
  (an order from before them: its stored totals say), by ``bill_id``. The reports' discount figures
  (``kpi_summary``, the adjustments report: ``omniman.services.reports._discounted``) ask for exactly these orders;
  without the index PostgreSQL reads and parses every order's JSON snapshot of the period (a month of ~150 orders a
  day: 840 pages, 8.8 ms; with it: 1 page, 0.3 ms, ``EXPLAIN (ANALYZE, BUFFERS)``).
- ``omniman_bill_adjusted`` — the bills with adjustments (discounts, voids, write-offs, service charge), by
  ``settled_at``: the reports read only those bills' adjustments.
- ``omniman_orderitem_sku_latest`` — ``(sku, id)``: the product report's names (the latest name each SKU was sold
  under) in one index probe per SKU, not a read of every item ever sold of those SKUs (which grows with the history).
- ``omniman_orderevent_kitchen_to`` — the kitchen's bumps by order and the status they moved to: the kitchen report
  reads only the bumps to a station's done status (``_kitchen_sql``), not every event of every order of the period
  (a month: 2,626 buffers instead of 17,210). Only ``kitchen.bumped`` rows are in it.

The predicates are the reports' own filters, written as Django writes them, so the planner can prove them. Built
``CONCURRENTLY`` (writes to the orders go on meanwhile: the migration is not atomic). Other databases: nothing.
"""

from django.db import migrations

INDEXES = {
    "omniman_order_discounted": (
        "omniman_order",
        "(bill_id) WHERE ((snapshot -> 'adjustments') @> '[{\"kind\": \"discount\"}]'::jsonb OR NOT (snapshot ? 'adjustments'))",
    ),
    "omniman_bill_adjusted": ("omniman_bill", "(settled_at) WHERE NOT (adjustments = '[]'::jsonb)"),
    "omniman_orderitem_sku_latest": ("omniman_orderitem", "(sku, id)"),
    "omniman_orderevent_kitchen_to": ("omniman_orderevent", "(order_id, (payload ->> 'to')) WHERE type = 'kitchen.bumped'"),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, (table, definition) in INDEXES.items():
            schema_editor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("omniman", "0010_directive_fillfactor"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
