"""What a pickup number costs (issue 19): ``refs.assign_ticket`` runs after every commit of a ticket channel.

Counted as Django counts them: the order's lock (none when the caller holds
the order), the counter's bump (one upsert, skipped when the order has its
number), the ref, the event — on PostgreSQL the bump, the ref and the event
are one statement (a data-modifying ``WITH``); no savepoint inside the
caller's transaction (the directive engine's).
"""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman.contrib.refs.handlers import AssignTicketHandler
from omniman.contrib.refs.models import Ref, TicketSequence
from omniman.contrib.refs.services import RefService
from omniman.models import Directive, Order, OrderEvent
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db(transaction=True)


def _order(code: str = "counter") -> Order:
    channel = make_channel(code, config={"post_commit_directives": ["refs.assign_ticket"]})
    return Order.objects.get(ref=commit(create_session_at(channel))["order_ref"])


def _statements(ctx) -> list[str]:
    return [q["sql"].split()[0].upper() for q in ctx.captured_queries]


def _writes() -> list[str]:
    """The bump, the ref and the event: one statement on PostgreSQL, three elsewhere."""
    return ["WITH"] if connection.vendor == "postgresql" else ["INSERT", "INSERT", "INSERT"]


def test_a_ticket_in_the_callers_transaction_is_the_lock_and_the_writes_and_no_savepoint():
    order = _order()
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        assert RefService.assign_ticket(order.ref, actor="directive:refs.assign_ticket") == 1
    assert _statements(ctx) == ["SELECT", *_writes()]  # lock; counter upsert, ref, event
    day = timezone.localdate(order.created_at)
    assert list(TicketSequence.objects.values_list("scope", "day", "last")) == [("pickup:counter", day, 1)]
    assert list(Ref.objects.values_list("scope", "key", "order_ref", "session_key")) == [
        (f"pickup:counter:{day.isoformat()}", "1", order.ref, "")
    ]
    event = OrderEvent.objects.get(order=order, type="ticket.assigned")
    assert (event.actor, event.payload) == ("directive:refs.assign_ticket", {"ticket": 1, "day": day.isoformat()})


def test_the_ref_and_the_event_carry_their_times_and_the_ref_is_active():
    order = _order()
    before = timezone.now()
    assert RefService.assign_ticket(order.ref) == 1
    after = timezone.now()
    ref, event = Ref.objects.get(), OrderEvent.objects.get(order=order, type="ticket.assigned")
    assert ref.released_at is None and before <= ref.created_at <= after and before <= event.created_at <= after
    assert RefService.order_for_ticket("counter", 1, day=timezone.localdate(order.created_at)) == order.ref


def test_the_order_the_callers_transaction_holds_is_not_locked_again():
    order = Order.objects.select_related("channel").get(pk=_order().pk)
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        assert RefService.assign_ticket(order.ref, held=order) == 1
    assert _statements(ctx) == _writes()  # counter upsert, ref, event: no lock
    day = timezone.localdate(order.created_at)
    assert list(Ref.objects.values_list("scope", "key", "order_ref")) == [(f"pickup:counter:{day.isoformat()}", "1", order.ref)]
    assert OrderEvent.objects.get(order=order, type="ticket.assigned").payload == {"ticket": 1, "day": day.isoformat()}


def test_the_handler_takes_the_shared_order_only_when_it_is_the_directives():
    channel = make_channel("counter", config={"post_commit_directives": ["refs.assign_ticket"]})
    one, two = (Order.objects.select_related("channel").get(ref=commit(create_session_at(channel))["order_ref"]) for _ in range(2))
    handler = AssignTicketHandler()
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        handler.handle(message=Directive(topic=handler.topic, payload={"order_ref": one.ref}), ctx={"locked": {"order": two}})
    assert _statements(ctx) == ["SELECT", *_writes()]  # another order: this one is locked first
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        handler.handle(message=Directive(topic=handler.topic, payload={"order_ref": two.ref}), ctx={"locked": {"order": two}})
    assert _statements(ctx) == _writes()
    assert RefService.tickets_for([one.ref, two.ref]) == {one.ref: 1, two.ref: 2}


def test_run_in_the_commits_transaction_it_reads_no_order(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DISPATCH_ON_COMMIT": ["refs.assign_ticket"]}
    channel = make_channel("counter", config={"post_commit_directives": ["refs.assign_ticket"]})
    session = create_session_at(channel)
    with CaptureQueriesContext(connection) as ctx:
        result = commit(session)
    reads = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().startswith("SELECT") and 'FROM "omniman_order"' in q["sql"]]
    assert reads == []  # the commit shared the order it inserted (ctx["locked"]["order"])
    assert Directive.objects.get(topic="refs.assign_ticket").status == "done"
    assert RefService.ticket_for(result["order_ref"]) == 1


def test_on_its_own_it_opens_its_transaction():
    order = _order()
    with CaptureQueriesContext(connection) as ctx:
        assert RefService.assign_ticket(order.ref) == 1
    assert _statements(ctx) == ["BEGIN", "SELECT", *_writes(), "COMMIT"]


def test_an_order_with_its_number_keeps_it_and_the_counter_does_not_move():
    first, second = _order(), None
    assert RefService.assign_ticket(first.ref) == 1
    second = Order.objects.get(ref=commit(create_session_at(first.channel))["order_ref"])
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        assert RefService.assign_ticket(first.ref) == 1
    assert _statements(ctx) == ["SELECT", _writes()[0], "SELECT"]  # lock, the upsert that proposes no row, the event
    assert TicketSequence.objects.get().last == 1
    assert RefService.assign_ticket(second.ref) == 2  # the next order gets the next number, none was skipped
    assert OrderEvent.objects.filter(type="ticket.assigned").count() == 2 and Ref.objects.count() == 2


def test_next_ticket_is_one_statement():
    with CaptureQueriesContext(connection) as ctx:
        assert RefService.next_ticket("drive") == 1
        assert RefService.next_ticket("drive") == 2
    assert _statements(ctx) == ["INSERT", "INSERT"]
    assert TicketSequence.objects.get().last == 2


def test_a_ticket_that_fails_in_the_commit_rolls_back_alone_and_a_worker_assigns_it_later(settings, monkeypatch):
    from omniman import engine
    from omniman.contrib.refs import services as ref_services

    settings.OMNIMAN = {**settings.OMNIMAN, "DISPATCH_ON_COMMIT": ["refs.assign_ticket"]}
    channel = make_channel("counter", config={"post_commit_directives": ["refs.assign_ticket"]})

    class Failing:
        def info(self, *args, **kwargs):  # after the ticket's writes: they must roll back with the handler's savepoint
            raise RuntimeError("after the writes")

    monkeypatch.setattr(ref_services, "logger", Failing())
    result = commit(create_session_at(channel))
    order = Order.objects.get(ref=result["order_ref"])  # the commit itself went through, with the shared order
    assert (Ref.objects.count(), TicketSequence.objects.count()) == (0, 0)
    assert not OrderEvent.objects.filter(order=order, type="ticket.assigned").exists()
    directive = Directive.objects.get(topic="refs.assign_ticket")
    assert (directive.status, directive.attempts) == ("queued", 1) and "after the writes" in directive.last_error
    monkeypatch.undo()
    Directive.objects.filter(pk=directive.pk).update(available_at=timezone.now())
    engine.process(topics=["refs.assign_ticket"])  # a worker: no shared order, it locks the order
    assert RefService.ticket_for(order.ref) == 1
    assert Directive.objects.get(pk=directive.pk).status == "done"
