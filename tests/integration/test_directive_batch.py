"""The engine's batch transactions: a savepoint per directive, one commit per batch, handlers that run alone."""

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

pytestmark = pytest.mark.django_db(transaction=True)


class Spy:
    """Records, per run, whether it ran inside a batch (an engine savepoint open) and registers an on_commit."""

    def __init__(self, topic: str, *, own_transaction: bool = False, fail: bool = False):
        self.topic = topic
        if own_transaction:
            self.own_transaction = True
        self.fail = fail
        self.runs: list[tuple[int, bool]] = []
        self.committed: list[int] = []

    def handle(self, *, message, ctx):
        in_batch = any(sid.startswith("omniman_d") for sid in connection.savepoint_ids)
        self.runs.append((message.pk, in_batch))
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


def test_a_failing_handler_rolls_back_to_its_savepoint_and_the_batch_commits_the_rest(spies):
    a, bad, b = enqueue("test.spy", "test.spy-fail", "test.spy")
    result = engine.process(requeue=False)
    assert result.outcomes == [(a.pk, "done"), (bad.pk, "retried"), (b.pk, "done")]
    # Only the successful runs' writes and on_commit callbacks survive, after the batch committed.
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted([a.pk, b.pk])
    assert spies["batched"].committed == [a.pk, b.pk]
    assert spies["failing"].committed == []
    assert [in_batch for _, in_batch in spies["batched"].runs + spies["failing"].runs] == [True, True, True]
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
    assert spies["alone"].runs == [(alone.pk, False)]  # not inside the batch's savepoint
    assert spies["batched"].runs == [(a.pk, True), (b.pk, True)]
    assert spies["batched"].committed == [a.pk, b.pk] and spies["alone"].committed == [alone.pk]


@pytest.mark.postgres
def test_a_directive_costs_one_statement_besides_its_handler(spies):
    for n in (2, 20):
        Directive.objects.all().delete()
        enqueue(*["test.spy"] * n)
        with CaptureQueriesContext(connection) as queries:
            result = engine.process(requeue=False)
        assert result.done == n
        # the claim, BEGIN, then per directive: savepoint + done mark (one statement) and the handler's INSERT; COMMIT
        assert len(queries) == 3 + 2 * n, [q["sql"][:80] for q in queries]
        assert sum(q["sql"] == "COMMIT" for q in queries) == 1


def test_a_fenced_row_in_a_batch_is_not_run(spies):
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
    assert [pk for pk, _ in spies["batched"].runs] == [a.pk]
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
