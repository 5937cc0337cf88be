"""Refs: tables as session handles, marketplace ids, daily pickup tickets (16 threads on PostgreSQL)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from django.utils import timezone

from omniman import engine, registry
from omniman.contrib.refs.exceptions import RefError
from omniman.contrib.refs.models import Ref, TicketSequence
from omniman.contrib.refs.services import Locator, RefService
from omniman.models import Directive, Order, OrderEvent
from omniman.services import SessionService
from tests.threads import THREADS, run_together
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "refs.assign_ticket"


def ticket_channel(code=None):
    return make_channel(code, config={"post_commit_directives": [TOPIC]})


def order_for(channel, **kwargs) -> Order:
    return Order.objects.get(ref=commit(create_session_at(channel, **kwargs))["order_ref"])


def snapshot_rows():
    return (
        list(Ref.objects.order_by("id").values_list("scope", "key", "session_key", "order_ref", "released_at")),
        list(TicketSequence.objects.order_by("id").values_list("scope", "day", "last")),
    )


# -- pickup tickets --------------------------------------------------------------------------


def test_tickets_count_per_channel_and_day():
    today = timezone.localdate()
    assert [RefService.next_ticket("counter") for _ in range(3)] == [1, 2, 3]
    assert RefService.next_ticket("drive") == 1
    assert RefService.next_ticket("counter", day=today + timedelta(days=1)) == 1
    assert RefService.next_ticket("counter") == 4
    assert sorted(TicketSequence.objects.values_list("scope", "day", "last")) == [
        ("pickup:counter", today, 4),
        ("pickup:counter", today + timedelta(days=1), 1),
        ("pickup:drive", today, 1),
    ]


def test_a_ticket_needs_a_channel():
    with pytest.raises(RefError) as caught:
        RefService.next_ticket("")
    assert caught.value.code == "invalid_ref"
    assert TicketSequence.objects.count() == 0


def test_assign_ticket_through_the_engine_gives_each_order_one_number():
    channel = ticket_channel("counter")
    first, second = order_for(channel), order_for(channel)
    directives = list(Directive.objects.filter(topic=TOPIC).order_by("id"))
    assert [d.payload["order_ref"] for d in directives] == [first.ref, second.ref]
    assert [outcome for _, outcome in engine.process(topics=[TOPIC]).outcomes] == ["done", "done"]

    day = timezone.localdate(first.created_at).isoformat()
    assert RefService.tickets_for([first.ref, second.ref, "ORD-NONE"]) == {first.ref: 1, second.ref: 2}
    assert RefService.ticket_for(second.ref) == 2 and RefService.ticket_for("ORD-NONE") is None
    assert RefService.order_for_ticket("counter", 2) == second.ref
    event = OrderEvent.objects.get(order=first, type="ticket.assigned")
    assert event.payload == {"ticket": 1, "day": day} and event.actor == f"directive:{TOPIC}"
    assert Ref.objects.get(order_ref=second.ref).scope == f"pickup:counter:{day}"

    # Twice, and again through the engine: the same numbers, nothing new.
    handler = registry.get_directive_handler(TOPIC)
    for _ in range(2):
        handler.handle(message=directives[0], ctx={"attempt": 2, "actor": "test"})
    Directive.objects.filter(pk=directives[1].pk).update(status="queued", available_at=timezone.now())
    engine.process(topics=[TOPIC])
    assert RefService.assign_ticket(first.ref) == 1
    assert OrderEvent.objects.filter(type="ticket.assigned").count() == 2
    assert Ref.objects.count() == 2
    assert TicketSequence.objects.get().last == 2


def test_the_ticket_belongs_to_the_day_the_order_was_created(monkeypatch):
    channel = ticket_channel("counter")
    yesterday = timezone.now() - timedelta(days=1)
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: yesterday)
    order = order_for(channel)  # created yesterday; its directive runs after midnight
    monkeypatch.setattr(timezone, "now", real_now)
    assert timezone.localdate(order.created_at) == timezone.localdate(yesterday)
    RefService.next_ticket("counter")  # today's counter is at 1
    assert RefService.assign_ticket(order.ref) == 1
    assert RefService.order_for_ticket("counter", 1, day=timezone.localdate(yesterday)) == order.ref


def test_an_unknown_order_gets_no_ticket():
    with pytest.raises(RefError) as caught:
        RefService.assign_ticket("ORD-NOPE")
    assert caught.value.code == "order_not_found"
    assert snapshot_rows() == ([], [])


@pytest.mark.postgres
def test_sixteen_threads_get_sixteen_distinct_consecutive_numbers():
    results = run_together(lambda i: RefService.next_ticket("counter"))
    numbers = sorted(value for kind, value in results if kind == "ok")
    assert numbers == list(range(1, THREADS + 1))
    assert TicketSequence.objects.get().last == THREADS


@pytest.mark.postgres
def test_sixteen_orders_assigned_concurrently_get_distinct_numbers_and_one_each():
    channel = ticket_channel("counter")
    orders = [order_for(channel) for _ in range(THREADS)]
    results = run_together(lambda i: RefService.assign_ticket(orders[i % 8].ref))  # each order by two threads
    by_order = {}
    for i, (kind, number) in enumerate(results):
        assert kind == "ok"
        by_order.setdefault(orders[i % 8].ref, set()).add(number)
    assert all(len(numbers) == 1 for numbers in by_order.values())
    assert sorted(n for numbers in by_order.values() for n in numbers) == list(range(1, 9))
    assert OrderEvent.objects.filter(type="ticket.assigned").count() == 8
    assert TicketSequence.objects.get().last == 8


# -- tables ------------------------------------------------------------------------------------


def test_a_table_resolves_to_its_open_session_and_frees_itself_on_commit():
    channel = make_channel("tables")
    assert RefService.resolve("table:tables", "5") is None
    tab = create_session_at(channel, handle_type="table", handle_ref="5")
    assert RefService.resolve("table:tables", "5") == Locator("table:tables", "5", session_key=tab.session_key)
    assert RefService.resolve("table:other-channel", "5") is None

    commit(tab)
    assert RefService.resolve("table:tables", "5") is None
    next_tab = SessionService.open_session("tables", handle_type="table", handle_ref="5")
    assert RefService.resolve("table:tables", "5").session_key == next_tab.session_key != tab.session_key
    assert Ref.objects.count() == 0  # nothing stored: the session's handle is the table's state


def test_a_table_is_what_the_channels_flow_calls_a_table():
    make_channel("diner", config={"order_flow": {"table_handle_types": ["booth"]}})
    SessionService.open_session("diner", handle_type="table", handle_ref="5")
    booth = SessionService.open_session("diner", handle_type="booth", handle_ref="5")
    assert RefService.resolve("table:diner", "5") == Locator("table:diner", "5", session_key=booth.session_key)
    make_channel("takeaway", config={"order_flow": {"table_handle_types": []}})
    SessionService.open_session("takeaway", handle_type="table", handle_ref="1")
    assert RefService.resolve("table:takeaway", "1") is None  # a flow without tables


@pytest.mark.parametrize("scope", ["table:tables", "pickup:tables", "pickup:tables:2026-01-01"])
def test_tables_and_tickets_cannot_be_bound_or_released_by_hand(scope):
    tab = create_session_at(make_channel("tables"), handle_type="table", handle_ref="5")
    with pytest.raises(RefError) as caught:
        RefService.bind(scope, "5", session_key=tab.session_key)
    assert caught.value.code == "reserved_scope"
    with pytest.raises(RefError) as caught:
        RefService.release(scope, "5")
    assert caught.value.code == "reserved_scope"
    assert Ref.objects.count() == 0


# -- marketplace ids and other bound refs ---------------------------------------------------------


def test_a_marketplace_id_follows_its_session_to_the_order_and_stays_unique():
    channel = make_channel("ifood", pricing_policy="external")
    scope = "marketplace:ifood"
    basket = create_session_at(channel)
    ref = RefService.bind(scope, "IF-123", session_key=basket.session_key)
    assert RefService.bind(scope, "IF-123", session_key=basket.session_key).pk == ref.pk  # idempotent
    assert RefService.resolve(scope, "IF-123") == Locator(scope, "IF-123", session_key=basket.session_key)

    # A second delivery of the same marketplace order finds it taken.
    duplicate = create_session_at(channel)
    before = snapshot_rows()
    with pytest.raises(RefError) as caught:
        RefService.bind(scope, "IF-123", session_key=duplicate.session_key)
    assert caught.value.code == "ref_taken" and caught.value.context["session_key"] == basket.session_key
    assert snapshot_rows() == before

    order_ref = commit(basket)["order_ref"]
    assert RefService.resolve(scope, "IF-123").order_ref == order_ref
    assert RefService.bind(scope, "IF-123", order_ref=order_ref).pk == ref.pk
    assert Ref.objects.get(pk=ref.pk).order_ref == order_ref
    other = order_for(channel)
    for kwargs in ({"order_ref": other.ref}, {"session_key": duplicate.session_key}):
        with pytest.raises(RefError) as caught:
            RefService.bind(scope, "IF-123", **kwargs)
        assert caught.value.code == "ref_taken"
    # Forever: not even after the order is done.
    assert RefService.resolve(scope, "IF-123").order_ref == order_ref
    assert RefService.resolve("marketplace:other", "IF-123") is None


def test_an_order_only_ref_accepts_its_own_session_only():
    channel = make_channel("shop")
    order = order_for(channel)
    RefService.bind("marketplace:shop", "M-9", order_ref=order.ref)
    stranger = create_session_at(channel)
    with pytest.raises(RefError) as caught:
        RefService.bind("marketplace:shop", "M-9", session_key=stranger.session_key)
    assert caught.value.code == "ref_taken"
    assert RefService.bind("marketplace:shop", "M-9", session_key=order.session_key).session_key == order.session_key


def test_an_abandoned_session_frees_its_key():
    channel = make_channel("pagers")
    first = create_session_at(channel)
    RefService.bind("pager:pagers", "12", session_key=first.session_key)
    SessionService.abandon_session(first.session_key, "pagers")
    assert RefService.resolve("pager:pagers", "12") is None

    second = create_session_at(channel)
    RefService.bind("pager:pagers", "12", session_key=second.session_key)
    assert RefService.resolve("pager:pagers", "12").session_key == second.session_key
    rows = list(Ref.objects.order_by("id").values_list("session_key", "released_at"))
    assert rows[0][0] == first.session_key and rows[0][1] is not None  # history kept, released
    assert rows[1] == (second.session_key, None)

    assert RefService.release("pager:pagers", "12") is True
    assert RefService.release("pager:pagers", "12") is False
    assert RefService.resolve("pager:pagers", "12") is None


@pytest.mark.parametrize(
    "scope, key, kwargs",
    [("", "1", {"order_ref": "X"}), ("marketplace:x", "", {"order_ref": "X"}), ("marketplace:x", "1", {}), ("m" * 129, "1", {"order_ref": "X"})],
)
def test_invalid_refs(scope, key, kwargs):
    with pytest.raises(RefError) as caught:
        RefService.bind(scope, key, **kwargs)
    assert caught.value.code == "invalid_ref"
    assert Ref.objects.count() == 0


@pytest.mark.postgres
def test_concurrent_binds_of_one_key_leave_one_winner():
    channel = make_channel("ifood", pricing_policy="external")
    sessions = [create_session_at(channel) for _ in range(THREADS)]
    results = run_together(lambda i: RefService.bind("marketplace:ifood", "IF-1", session_key=sessions[i].session_key).pk)
    outcomes = Counter(kind for kind, _ in results)
    assert outcomes == {"ok": 1, "error": THREADS - 1}
    assert {value for kind, value in results if kind == "error"} == {"ref_taken"}
    assert Ref.objects.count() == 1


def test_day_is_a_date():
    # next_ticket takes the day explicitly (a date), e.g. for a business day that ends after midnight.
    assert RefService.next_ticket("night", day=date(2026, 1, 1)) == 1
    assert TicketSequence.objects.get().day == date(2026, 1, 1)
