"""The engine's batch transactions: optimistic first (one done mark, one commit), a savepoint per
directive when that fails, handlers that run alone."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman import engine, registry
from omniman.models import Directive
from tests.testapp.models import Execution

# unhurried_batches (tests/conftest.py): a batch here ends by its size, not by the engine's time bound.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("unhurried_batches")]


class Spy:
    """Records each run with the number of on_commit callbacks already pending in its transaction
    (those of the directives before it in the same batch), and registers one of its own."""

    def __init__(self, topic: str, *, own_transaction: bool = False, fail: bool = False):
        self.topic = topic
        if own_transaction:
            self.own_transaction = True
        self.fail = fail
        self.runs: list[tuple[int, bool]] = []
        self.committed: list[int] = []

    def handle(self, *, message, ctx):
        self.runs.append((message.pk, len(connection.run_on_commit)))
        Execution.objects.create(directive_id=message.pk, attempt=ctx["attempt"], worker_pid=0)
        transaction.on_commit(lambda: self.committed.append(message.pk))
        if self.fail:
            raise RuntimeError("the handler failed")


@pytest.fixture
def spies(monkeypatch):
    made = {
        "batched": Spy("test.spy"),
        "alone": Spy("test.spy-alone", own_transaction=True),
        "failing": Spy("test.spy-fail", fail=True),
    }
    for spy in made.values():
        monkeypatch.setitem(registry._directive_handlers, spy.topic, spy)
    return made


def enqueue(*topics: str) -> list[Directive]:
    start = timezone.now() - timedelta(seconds=len(topics))
    # available_at in the order given: the claim runs them oldest first
    return [
        Directive.objects.enqueue(topic, {}, available_at=start + timedelta(milliseconds=i)) for i, topic in enumerate(topics)
    ]


def test_directives_share_one_transaction(spies):
    a, b, c = enqueue("test.spy", "test.spy", "test.spy")
    assert engine.process(requeue=False).outcomes == [(a.pk, "done"), (b.pk, "done"), (c.pk, "done")]
    assert spies["batched"].runs == [(a.pk, 0), (b.pk, 1), (c.pk, 2)]  # each saw the earlier ones' callbacks pending
    assert spies["batched"].committed == [a.pk, b.pk, c.pk]


def test_a_failing_handler_rolls_the_batch_back_and_its_directives_run_again_each_in_a_savepoint(spies):
    a, bad, b = enqueue("test.spy", "test.spy-fail", "test.spy")
    result = engine.process(requeue=False)
    assert result.outcomes == [(a.pk, "done"), (bad.pk, "retried"), (b.pk, "done")]
    # The failing handler ran once (its failure is recorded, not re-run); the one before it ran again.
    assert spies["failing"].runs == [(bad.pk, 1)]
    assert [pk for pk, _ in spies["batched"].runs] == [a.pk, a.pk, b.pk]
    # Only the successful runs' writes and on_commit callbacks survive, after the batch committed.
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted([a.pk, b.pk])
    assert spies["batched"].committed == [a.pk, b.pk]
    assert spies["failing"].committed == []
    bad.refresh_from_db()
    assert (bad.status, bad.attempts) == ("queued", 1)
    assert bad.last_error.startswith("RuntimeError: the handler failed") and bad.available_at > timezone.now()
    for directive in (a, b):
        directive.refresh_from_db()
        assert (directive.status, directive.attempts, directive.last_error) == ("done", 1, "")
        assert directive.started_at is not None


def test_a_handler_with_its_own_transaction_runs_alone(spies):
    a, alone, b = enqueue("test.spy", "test.spy-alone", "test.spy")
    result = engine.process(requeue=False)
    assert result.outcomes == [(a.pk, "done"), (alone.pk, "done"), (b.pk, "done")]
    assert spies["alone"].runs == [(alone.pk, 0)]  # a's batch committed before it ran
    assert spies["batched"].runs == [(a.pk, 0), (b.pk, 0)]  # b is in a new batch
    assert spies["batched"].committed == [a.pk, b.pk] and spies["alone"].committed == [alone.pk]


@pytest.mark.postgres
def test_a_batch_costs_four_statements_besides_its_handlers(spies):
    for n in (2, 20):
        Directive.objects.all().delete()
        enqueue(*["test.spy"] * n)
        with CaptureQueriesContext(connection) as queries:
            result = engine.process(requeue=False)
        assert result.done == n
        # the claim, BEGIN, the handlers' INSERTs, one done mark for all, COMMIT
        assert len(queries) == 4 + n, [q["sql"][:80] for q in queries]
        assert sum(q["sql"] == "COMMIT" for q in queries) == 1


def test_a_fenced_row_in_a_batch_leaves_nothing_and_the_others_are_done(spies):
    a, b = enqueue("test.spy", "test.spy")
    claimed = engine.claim(limit=2, start=True)
    assert [d.pk for d in claimed] == [a.pk, b.pk]
    Directive.objects.filter(pk=b.pk).update(status="queued")  # presumed dead and re-queued
    (newer,) = engine.claim(ids=[b.pk], start=True)
    batch_result = engine.PassResult()
    batch = engine._Batch(batch_result, list(claimed))
    for directive in claimed:
        batch.run(directive, spies["batched"])
    batch.commit()
    assert batch_result.outcomes == [(a.pk, "done"), (b.pk, "fenced")]
    # The optimistic attempt ran both and rolled back at the done mark; the careful one skips the fenced row.
    assert [pk for pk, _ in spies["batched"].runs] == [a.pk, b.pk, a.pk]
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [a.pk]
    assert engine.execute(newer) == "done"
    b.refresh_from_db()
    assert (b.status, b.attempts) == ("done", 2)


@pytest.mark.postgres
def test_the_stuck_pass_skips_a_row_locked_by_a_live_batch():
    (directive,) = enqueue("test.record")
    Directive.objects.filter(pk=directive.pk).update(
        status="running", attempts=1, started_at=timezone.now() - timedelta(hours=1)
    )
    locked, release = threading.Event(), threading.Event()

    def live_batch():
        try:
            with transaction.atomic():
                Directive.objects.filter(pk=directive.pk).update(status="done")  # its done mark, not committed yet
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=live_batch)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        assert engine.requeue_stuck() == (0, 0)  # neither waits for the lock nor re-queues the row
    finally:
        release.set()
        thread.join(timeout=30)
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 1)
