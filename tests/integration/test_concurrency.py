"""Real threads on PostgreSQL: row locks make the guarantees hold under contention."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

from omniman.models import Order, OrderEvent, OrderItem, Session
from omniman.services import CommitService, ModifyService, OrderService, SessionService
from tests.factories import create_order_at, create_session_at, make_channel
from tests.threads import THREADS, run_together

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]



def test_concurrent_commits_with_the_same_key_make_one_order():
    session = create_session_at(lines=3)
    results = run_together(
        lambda i: CommitService.commit(session.session_key, session.channel.code, idempotency_key="same-key")
    )
    assert Order.objects.count() == 1
    assert OrderItem.objects.count() == 3
    order = Order.objects.get()
    oks = [value for kind, value in results if kind == "ok"]
    errors = Counter(value for kind, value in results if kind == "error")
    assert set(errors) <= {"in_progress"}, errors
    assert len(oks) + sum(errors.values()) == THREADS
    assert all(result["order_ref"] == order.ref for result in oks)
    assert sum(1 for result in oks if result["idempotent"] is False) == 1
    assert OrderEvent.objects.filter(order=order, type="created").count() == 1


def test_concurrent_commits_with_different_keys_make_one_order():
    session = create_session_at(lines=2)
    results = run_together(
        lambda i: CommitService.commit(session.session_key, session.channel.code, idempotency_key=f"key-{i}")
    )
    assert Order.objects.count() == 1
    oks = [value for kind, value in results if kind == "ok"]
    errors = Counter(value for kind, value in results if kind == "error")
    assert len(oks) == 1 and oks[0]["idempotent"] is False
    assert errors == {"already_committed": THREADS - 1}
    assert Session.objects.get(pk=session.pk).state == "committed"


def test_concurrent_modifications_with_one_expected_rev_apply_once():
    session = create_session_at(lines=1, rev=4)
    rev = session.rev
    results = run_together(
        lambda i: ModifyService.modify_session(
            session.session_key,
            session.channel.code,
            [{"op": "add_line", "sku": f"T-{i}", "qty": 1, "unit_price_q": 100}],
            expected_rev=rev,
        ).rev
    )
    oks = [value for kind, value in results if kind == "ok"]
    errors = Counter(value for kind, value in results if kind == "error")
    assert oks == [rev + 1]
    assert errors == {"stale_rev": THREADS - 1}
    stored = Session.objects.get(pk=session.pk)
    assert stored.rev == rev + 1
    assert len(stored.lines) == 2


def test_concurrent_modifications_without_expected_rev_all_apply():
    session = create_session_at(lines=0)
    run_together(
        lambda i: ModifyService.modify_session(
            session.session_key, session.channel.code, [{"op": "add_line", "sku": f"T-{i}", "qty": 1, "unit_price_q": 10}]
        )
    )
    stored = Session.objects.get(pk=session.pk)
    assert stored.rev == THREADS
    assert len(stored.lines) == THREADS
    assert stored.total_q == 10 * THREADS


def test_concurrent_open_with_one_handle_makes_one_session():
    channel = make_channel("tables")
    results = run_together(lambda i: SessionService.open_session(channel.code, handle_type="table", handle_ref="5").session_key)
    keys = {value for kind, value in results if kind == "ok"}
    assert len(keys) == 1
    assert Session.objects.filter(channel=channel, handle_type="table", handle_ref="5").count() == 1


def test_concurrent_bumps_with_expected_status_make_one_transition():
    order = create_order_at("confirmed")
    results = run_together(
        lambda i: OrderService.transition(order.ref, "processing", actor=f"screen-{i}", expected_status="confirmed").status
    )
    errors = Counter(value for kind, value in results if kind == "error")
    assert [value for kind, value in results if kind == "ok"] == ["processing"]
    assert errors == {"stale_status": THREADS - 1}
    assert OrderEvent.objects.filter(order=order, type="status_changed", payload__to="processing").count() == 1


def test_database_is_postgresql():
    assert connection.vendor == "postgresql"


def test_concurrent_enqueues_with_one_dedupe_key_make_one_directive():
    from omniman.models import Directive

    results = run_together(lambda i: Directive.objects.enqueue("stock.hold", {"i": i}, dedupe_key="S-1:stock:1").pk)
    assert len({value for kind, value in results if kind == "ok"}) == 1
    assert Directive.objects.filter(topic="stock.hold").count() == 1
