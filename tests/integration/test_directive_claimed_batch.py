"""``database_only`` handlers: their directives are claimed and marked done inside the batch
transaction (one row version each), a failure rolls back to a savepoint and is recorded in the
batch, and a worker killed mid-batch leaves them queued, untouched, to run once more."""

from __future__ import annotations

import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman import engine, registry
from omniman.models import Directive
from tests.integration.test_directive_reliability import start_worker, stop, wait_for
from tests.testapp.handlers import FailsInBatch
from tests.testapp.models import Execution

# unhurried_batches (tests/conftest.py): a batch here ends by its size, not by the engine's time bound.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("unhurried_batches")]


def enqueue(*topics: str, **payload) -> list[Directive]:
    start = timezone.now() - timedelta(seconds=len(topics))
    return [
        Directive.objects.enqueue(topic, dict(payload), available_at=start + timedelta(milliseconds=i))
        for i, topic in enumerate(topics)
    ]


def rows(directives):
    return list(
        Directive.objects.filter(pk__in=[d.pk for d in directives]).order_by("available_at").values_list("status", "attempts", "last_error")
    )


def test_only_database_only_handlers_are_claimed_in_the_batch():
    assert engine.claims_in_batch(registry.get_directive_handler("test.record-batch"))
    assert not engine.claims_in_batch(registry.get_directive_handler("test.record"))  # the default: a committed claim
    assert not engine.claims_in_batch(registry.get_directive_handler("test.sleep"))


@pytest.mark.contrib(
    "omniman.contrib.payment", "omniman.contrib.notifications", "omniman.contrib.stock", "omniman.contrib.refs",
    "omniman.contrib.pricing",
)
def test_the_contrib_handlers_claimed_in_the_batch_are_those_with_database_only_effects():
    for topic in ("payment.capture", "payment.refund", "notification.send"):  # outside effects
        handler = registry.get_directive_handler(topic)
        assert handler is not None and not engine.claims_in_batch(handler), topic
    for topic in ("stock.hold", "stock.commit", "stock.release", "stock.release_session", "refs.assign_ticket", "pricing.check"):
        assert engine.claims_in_batch(registry.get_directive_handler(topic)), topic


def test_a_pass_claims_marks_done_and_runs_in_one_transaction():
    a, b, c = enqueue("test.record-batch", "test.record-batch", "test.record-batch")
    result = engine.process(requeue=False)
    assert result.outcomes == [(a.pk, "done"), (b.pk, "done"), (c.pk, "done")]
    assert (result.claimed, result.done, result.released) == (3, 3, 0)
    assert rows([a, b, c]) == [("done", 1, "")] * 3
    assert sorted(Execution.objects.values_list("directive_id", "attempt")) == [(a.pk, 1), (b.pk, 1), (c.pk, 1)]
    assert Directive.objects.filter(pk__in=[a.pk, b.pk, c.pk], started_at__isnull=True).count() == 0


@pytest.mark.postgres
def test_a_claimed_batch_costs_three_statements_besides_its_handlers_and_one_row_version():
    for n in (2, 20):
        Directive.objects.all().delete()
        directives = enqueue(*["test.record-batch"] * n)
        with connection.cursor() as cursor:
            cursor.execute("SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'omniman_directive'")
        with CaptureQueriesContext(connection) as queries:
            result = engine.process(topics=["test.record-batch"], requeue=False)
        assert result.done == n
        # BEGIN, the claim (marks them done), the handlers' INSERTs, COMMIT
        assert len(queries) == 3 + n, [q["sql"][:80] for q in queries]
        assert [q["sql"] for q in queries if q["sql"] in ("BEGIN", "COMMIT")] == ["BEGIN", "COMMIT"]
        assert rows(directives) == [("done", 1, "")] * n
    # One UPDATE per directive: xmin of every row is the batch's one transaction.
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT xmin::text) FROM omniman_directive")
        assert cursor.fetchone()[0] == 1


def test_a_failing_handler_rolls_back_to_its_savepoint_and_is_retried_in_the_same_batch():
    FailsInBatch.runs.clear()
    a, bad, b = enqueue("test.record-batch", "test.fail-batch", "test.record-batch")
    result = engine.process(requeue=False)
    assert result.outcomes == [(a.pk, "done"), (bad.pk, "retried"), (b.pk, "done")]
    assert FailsInBatch.runs == [(bad.pk, 1)]  # its failure is recorded, it is not run again
    # a ran twice (the optimistic attempt rolled back), each write of one attempt survives once
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted([a.pk, b.pk])
    bad.refresh_from_db()
    assert (bad.status, bad.attempts) == ("queued", 1)
    assert bad.last_error.startswith("ConnectionError: gateway unreachable (attempt 1)")
    assert bad.available_at > timezone.now() and bad.started_at is not None
    for directive in (a, b):
        directive.refresh_from_db()
        assert (directive.status, directive.attempts, directive.last_error) == ("done", 1, "")


def test_the_last_failed_attempt_is_failed(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_MAX_ATTEMPTS": 1}
    (bad,) = enqueue("test.fail-batch")
    assert engine.process(requeue=False).outcomes == [(bad.pk, "failed")]
    bad.refresh_from_db()
    assert (bad.status, bad.attempts) == ("failed", 1) and "gateway unreachable" in bad.last_error
    assert Execution.objects.count() == 0


def test_a_stop_gives_back_the_rest_of_the_claimed_batch_untouched():
    directives = enqueue(*["test.record-batch"] * 4)
    calls = []

    def stop_after_two():
        calls.append(1)
        return len(calls) > 2

    result = engine.process(topics=["test.record-batch"], requeue=False, should_stop=stop_after_two)
    assert (result.claimed, result.done, result.released) == (4, 2, 2)
    assert rows(directives) == [("done", 1, ""), ("done", 1, ""), ("queued", 0, ""), ("queued", 0, "")]
    assert Directive.objects.filter(status="queued", started_at__isnull=False).count() == 0
    assert engine.process(topics=["test.record-batch"], requeue=False).done == 2
    assert Execution.objects.count() == 4


def test_the_time_bound_commits_what_ran_and_gives_back_the_rest(monkeypatch):
    monkeypatch.setattr(engine, "BATCH_MAX_SECONDS", 0.0)  # every directive after the first is past the bound
    directives = enqueue(*["test.record-batch"] * 3)
    result = engine.process(topics=["test.record-batch"], requeue=False)
    assert (result.claimed, result.done, result.released) == (3, 1, 2)
    assert rows(directives) == [("done", 1, ""), ("queued", 0, ""), ("queued", 0, "")]
    # Its pace learnt, the next batches claim only what fits in the bound (nothing to give back).
    for _ in range(2):
        result = engine.process(topics=["test.record-batch"], requeue=False)
        assert (result.claimed, result.done, result.released) == (1, 1, 0)
    assert rows(directives) == [("done", 1, "")] * 3
    assert list(Execution.objects.values_list("attempt", flat=True)) == [1, 1, 1]


def test_a_pass_runs_both_kinds_and_ordinary_ones_keep_their_committed_claim():
    plain, batched = enqueue("test.record", "test.record-batch")
    result = engine.process(requeue=False)
    assert sorted(result.outcomes) == sorted([(plain.pk, "done"), (batched.pk, "done")])
    assert rows([plain, batched]) == [("done", 1, ""), ("done", 1, "")]


def test_a_handler_that_enqueues_directives_sees_them_run_after_its_batch_commits():
    (parent,) = enqueue("test.enqueue-batch")
    first = engine.process(requeue=False)
    assert first.outcomes == [(parent.pk, "done")]
    child = Directive.objects.get(topic="test.record-batch")
    assert (child.status, child.payload) == ("queued", {"from": parent.pk})
    assert engine.process(requeue=False).outcomes == [(child.pk, "done")]


def test_a_stale_committed_claim_cannot_finish_a_row_a_batch_took_over():
    (directive,) = enqueue("test.record-batch")
    (stale,) = engine.claim(topics=["test.record-batch"], start=True)  # an old-style run, presumed dead
    Directive.objects.filter(pk=directive.pk).update(status="queued")  # the stuck pass re-queued it
    assert engine.process(topics=["test.record-batch"], requeue=False).outcomes == [(directive.pk, "done")]
    assert engine.execute(stale) == "fenced"
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 2)
    assert list(Execution.objects.values_list("attempt", flat=True)) == [2]


def locked_by_another_transaction(pk: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM omniman_directive WHERE id = %s AND status = 'queued' "
            "AND id NOT IN (SELECT id FROM omniman_directive WHERE id = %s FOR UPDATE SKIP LOCKED)",
            [pk, pk],
        )
        return cursor.fetchone()[0] == 1


@pytest.mark.postgres
def test_a_worker_killed_mid_batch_leaves_its_rows_queued_untouched_and_they_run_once():
    worker = start_worker("--watch", "--interval", "0.2", "--topic", "test.sleep-batch")
    try:
        others = enqueue("test.sleep-batch", "test.sleep-batch", sleep_in_pid=-1)
        wait_for(lambda: Directive.objects.filter(pk__in=[d.pk for d in others], status="done").count() == 2, timeout=30)
        (directive,) = enqueue("test.sleep-batch", sleep=60, sleep_in_pid=worker.pid)
        wait_for(lambda: locked_by_another_transaction(directive.pk), timeout=20, message="the worker never took the row")
        time.sleep(0.3)  # it is sleeping inside its batch transaction, after writing its row
    finally:
        code, _ = stop(worker, signal.SIGKILL)
    assert code == -signal.SIGKILL
    # Everything of the killed batch went with its connection: the claim and the handler's write.
    directive.refresh_from_db()
    assert (directive.status, directive.attempts, directive.started_at) == ("queued", 0, None)
    assert Execution.objects.filter(directive_id=directive.pk).count() == 0
    # Due again at once (no stuck timeout to wait for), and it runs once.
    result = engine.process(topics=["test.sleep-batch"], requeue=False)
    assert result.outcomes == [(directive.pk, "done")]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 1)
    assert list(Execution.objects.filter(directive_id=directive.pk).values_list("attempt", flat=True)) == [1]


@pytest.mark.postgres
def test_four_workers_drain_database_only_directives_exactly_once():
    total = 3000
    workers = [start_worker("--watch", "--limit", "50", "--interval", "1") for _ in range(4)]
    try:
        now = timezone.now()
        Directive.objects.bulk_create(
            [Directive(topic="test.record-batch", payload={"n": n}, available_at=now) for n in range(total)], batch_size=1000
        )
        wait_for(
            lambda: Directive.objects.filter(status="done").count() == total,
            timeout=180,
            step=0.25,
            message=f"not all done: {dict(Directive.objects.values_list('status').annotate(n=Count('id')))}",
        )
    finally:
        results = [stop(worker) for worker in workers]
    assert [code for code, _ in results] == [0, 0, 0, 0], [out for _, out in results]
    assert Execution.objects.count() == total
    assert Execution.objects.values("directive_id").distinct().count() == total
    assert set(Directive.objects.values_list("attempts", flat=True)) == {1}
    assert Execution.objects.values("worker_pid").distinct().count() > 1
