"""``ModelRows``: instances from hand-written SQL equal the ORM's, field for field, on both databases.

The session lookup of every service (``find_session``), ``lock_order`` and the
API's token query read their rows this way (docs/deployment/performance.rst).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from omniman.models import Channel, ModelRows, Order, Session
from omniman.services import find_session, lock_order
from tests.factories import create_order_at, create_session_at, make_channel

pytestmark = pytest.mark.django_db


def values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


def test_rows_read_by_hand_equal_the_orms():
    channel = make_channel("shop")
    session = create_session_at(channel, lines=3)
    Session.objects.filter(pk=session.pk).update(data={"customer": {"name": "Ana"}, "checks": {}})
    order = create_order_at("confirmed", channel, lines=2)
    Channel.objects.filter(pk=channel.pk).update(config={"terms": {"en": {"order": "Ticket"}}})  # nested JSON
    for model, pk in ((Session, session.pk), (Order, order.pk), (Channel, channel.pk)):
        rows = ModelRows.of(model, connection, "x")
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {rows.columns} FROM {connection.ops.quote_name(model._meta.db_table)} x WHERE x.id = %s", [pk])
            loaded = rows.load("default", cursor.fetchone())
        assert values(loaded) == values(model.objects.get(pk=pk)), model.__name__
        assert loaded._state.adding is False and loaded._state.db == "default"


def test_find_session_and_lock_order_answer_as_the_orm():
    channel = make_channel("shop")
    session = create_session_at(channel, lines=2)
    found = find_session(session.session_key, "shop")
    assert values(found) == values(Session.objects.get(pk=session.pk))
    assert values(found.channel) == values(channel)
    order = create_order_at("new", channel)
    with transaction.atomic():
        locked = lock_order(order.ref)
        assert values(locked) == values(Order.objects.get(pk=order.pk)) and locked.channel.code == "shop"
        assert locked._loaded_status == "new"  # Order.from_db ran


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # autocommit between statements, as outside any test
def test_a_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it():
    channel = make_channel("shop")
    session = create_session_at(channel)
    order = create_order_at("new", channel)
    with pytest.raises(TransactionManagementError):
        find_session(session.session_key, "shop", lock=True)
    with pytest.raises(TransactionManagementError):
        lock_order(order.ref)


def test_a_sessions_update_is_one_statement_that_writes_what_the_orm_would():
    from django.db import DatabaseError
    from django.test.utils import CaptureQueriesContext

    session = create_session_at(lines=2)
    before = Session.objects.get(pk=session.pk).updated_at
    session.data = {"checks": {}, "issues": [], "note": "Mesa 4 — sem cebola"}
    session.lines = [{**session.lines[0], "qty": "3", "line_total_q": session.lines[0]["unit_price_q"] * 3}]
    with CaptureQueriesContext(connection) as ran:
        session.save(update_fields=["lines", "data", "updated_at"])
    assert len(ran.captured_queries) == 1 and ran.captured_queries[0]["sql"].startswith("UPDATE")
    saved = Session.objects.get(pk=session.pk)
    assert saved.data == session.data and saved.lines == session.lines
    assert saved.total_q == session.lines[0]["line_total_q"]  # adjustments and total_q are derived and written too
    assert saved.updated_at > before and saved.updated_at == session.updated_at  # auto_now, as save() stamps it
    assert saved.rev == session.rev and saved.state == session.state  # fields not named are left alone

    Session.objects.filter(pk=session.pk).delete()
    with pytest.raises(DatabaseError):
        session.save(update_fields=["data"])


@pytest.mark.parametrize("count", [1, 3])
def test_rows_inserted_by_hand_equal_bulk_creates(count):
    from decimal import Decimal

    from django.test.utils import CaptureQueriesContext

    from omniman.models import OrderItem
    from omniman.models.rows import insert_rows

    order = create_order_at(lines=1)

    def items(prefix):
        return [
            OrderItem(order=order, line_id=f"{prefix}-{i}", sku=f"SKU{i}", name="Pão <b>de</b> queijo", qty=Decimal("1.5") + i,
                      unit_price_q=700 + i, line_total_q=1050 + i, meta={"note": "sem sal", "i": i})
            for i in range(count)
        ]

    with CaptureQueriesContext(connection) as ran:
        mine = insert_rows(OrderItem, items("A"))
    assert len(ran.captured_queries) == 1
    theirs = OrderItem.objects.bulk_create(items("B"))
    assert all(obj.pk is not None and not obj._state.adding for obj in mine)

    def stored(objs):
        return [{k: v for k, v in values(OrderItem.objects.get(pk=obj.pk)).items() if k not in ("id", "line_id")} for obj in objs]

    assert stored(mine) == stored(theirs)
    assert [OrderItem.objects.get(pk=obj.pk).line_id for obj in mine] == [f"A-{i}" for i in range(count)]  # keys in order
