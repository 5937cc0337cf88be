"""``engine.dispatch_before_commit()``: database-only ``DISPATCH_ON_COMMIT`` directives run in the enqueuing transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman import engine
from omniman.models import Directive
from tests.testapp.handlers import EnqueueInBatch, FailsInBatch, Record, RecordInBatch
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)

DISPATCH = [RecordInBatch.topic, FailsInBatch.topic, Record.topic, EnqueueInBatch.topic]


def dispatching(*topics, **more):
    return override_settings(OMNIMAN={"DISPATCH_ON_COMMIT": list(topics or DISPATCH), **more})


def row(directive: Directive) -> tuple:
    directive.refresh_from_db()
    return directive.status, directive.attempts


def test_a_database_only_directive_runs_at_the_blocks_end_and_commits_done_with_the_work():
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                Execution.objects.create(directive_id=0, attempt=0, worker_pid=0)  # the service's own work
                directive = Directive.objects.enqueue(RecordInBatch.topic, {})
                assert Execution.objects.count() == 1  # not yet: at the block's end
            # Run, marked done in this transaction: no claim of its own, nothing after the commit.
            assert block.outcomes == [(directive.pk, "done")]
            assert Execution.objects.filter(directive_id=directive.pk, attempt=1).exists()
            assert connection.run_on_commit == []
            assert Directive.objects.filter(pk=directive.pk, status="done").exists()
    assert row(directive) == ("done", 1)
    assert directive.started_at is not None and directive.last_error == ""
    assert Execution.objects.count() == 2


def test_a_directive_costs_one_round_trip_and_its_handlers_statements():
    with dispatching():
        with transaction.atomic():
            with CaptureQueriesContext(connection) as ran:
                with engine.dispatch_before_commit():
                    directive = Directive.objects.enqueue(RecordInBatch.topic, {})
    sql = [query["sql"] for query in ran.captured_queries]
    # The row's INSERT (already done), its savepoint, the handler's INSERT: the run writes nothing of its own.
    assert len(sql) == 3, sql
    assert sql[0].startswith('INSERT INTO "omniman_directive"') and "'done'" in sql[0]
    assert sql[1].upper().startswith("SAVEPOINT")
    assert not any(statement.upper().startswith("UPDATE") for statement in sql), sql
    assert "RELEASE" not in " ".join(sql).upper()  # the last savepoint ends with the commit
    assert row(directive) == ("done", 1)


def test_two_directives_cost_one_round_trip_each_for_their_savepoints():
    with dispatching():
        with transaction.atomic():
            with CaptureQueriesContext(connection) as ran:
                with engine.dispatch_before_commit() as block:
                    first = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1})
                    second = Directive.objects.enqueue(RecordInBatch.topic, {"n": 2})
    sql = [query["sql"] for query in ran.captured_queries]
    # Two INSERTs, then per directive one savepoint statement (the second also releases the first's: one round trip
    # on PostgreSQL, prepared statements or not) and the handler's INSERT.
    assert len(sql) == (6 if connection.vendor == "postgresql" else 7), sql
    assert block.outcomes == [(first.pk, "done"), (second.pk, "done")]
    assert row(first) == row(second) == ("done", 1)
    assert sorted(Execution.objects.values_list("directive_id", "attempt")) == [(first.pk, 1), (second.pk, 1)]


def test_a_failing_handler_rolls_back_alone_and_stays_queued_with_its_failure_recorded():
    FailsInBatch.runs.clear()
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                Execution.objects.create(directive_id=0, attempt=0, worker_pid=0)
                failing = Directive.objects.enqueue(FailsInBatch.topic, {})
                fine = Directive.objects.enqueue(RecordInBatch.topic, {})
    assert block.outcomes == [(failing.pk, "retried"), (fine.pk, "done")]
    assert FailsInBatch.runs == [(failing.pk, 1)]
    failing.refresh_from_db()
    assert (failing.status, failing.attempts) == ("queued", 1)
    assert failing.last_error.startswith("ConnectionError: gateway unreachable (attempt 1)")
    assert failing.available_at > timezone.now() and failing.started_at is not None
    # Its writes rolled back; the service's own work and the next directive committed.
    assert not Execution.objects.filter(directive_id=failing.pk).exists()
    assert Execution.objects.filter(directive_id=0).exists() and row(fine) == ("done", 1)
    # The workers take it from there.
    assert engine.claim(topics=[FailsInBatch.topic]) == []  # backing off
    Directive.objects.filter(pk=failing.pk).update(available_at=timezone.now())
    assert engine.process(topics=[FailsInBatch.topic]).retried == 1
    assert row(failing) == ("queued", 2)


def test_a_failure_on_the_last_attempt_fails_the_directive():
    with dispatching(DIRECTIVE_MAX_ATTEMPTS=1):
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                failing = Directive.objects.enqueue(FailsInBatch.topic, {})
    assert block.outcomes == [(failing.pk, "failed")]
    assert row(failing) == ("failed", 1)


def test_a_handler_that_leaves_the_transaction_for_rollback_is_a_failure(monkeypatch):
    def broken(self, *, message, ctx):
        Execution.objects.create(directive_id=message.pk, attempt=ctx["attempt"], worker_pid=0)
        transaction.on_commit(lambda: Execution.objects.create(directive_id=-1, attempt=0, worker_pid=0))
        transaction.set_rollback(True)

    monkeypatch.setattr(RecordInBatch, "handle", broken)
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                Execution.objects.create(directive_id=0, attempt=0, worker_pid=0)
                directive = Directive.objects.enqueue(RecordInBatch.topic, {})
    assert block.outcomes == [(directive.pk, "retried")]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("queued", 1)
    assert "marked for rollback" in directive.last_error
    # The service committed; the handler's write and its on_commit callback did not happen.
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [0]


def test_nothing_runs_and_nothing_stays_when_the_block_raises():
    with dispatching():
        with pytest.raises(ZeroDivisionError):
            with transaction.atomic():
                with engine.dispatch_before_commit() as block:
                    Directive.objects.enqueue(RecordInBatch.topic, {})
                    Execution.objects.create(directive_id=0, attempt=0, worker_pid=0)
                    1 / 0  # noqa: B018 - the service fails after enqueueing
    assert block.outcomes == []
    assert not Directive.objects.exists() and not Execution.objects.exists()


def test_a_handler_with_outside_effects_keeps_the_after_commit_dispatch():
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                directive = Directive.objects.enqueue(Record.topic, {})  # not database_only
            assert block.outcomes == [] and not Execution.objects.exists()  # not in the transaction
            assert Directive.objects.get(pk=directive.pk).status == "queued"
        # …but right after its commit, as DISPATCH_ON_COMMIT always did.
    assert row(directive) == ("done", 1)
    assert Execution.objects.filter(directive_id=directive.pk).count() == 1


def test_held_dispatch_runs_nothing_before_or_after_the_commit():
    with dispatching():
        with engine.dispatch_held():
            with transaction.atomic():
                with engine.dispatch_before_commit() as block:
                    inline = Directive.objects.enqueue(RecordInBatch.topic, {})
                    after = Directive.objects.enqueue(Record.topic, {})
    assert block.outcomes == []
    assert row(inline) == row(after) == ("queued", 0)
    assert not Execution.objects.exists()


def test_topics_outside_dispatch_on_commit_stay_queued():
    with dispatching(Record.topic):
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                directive = Directive.objects.enqueue(RecordInBatch.topic, {})
    assert block.outcomes == [] and row(directive) == ("queued", 0)


def test_a_directive_rolled_back_inside_the_block_or_not_due_is_skipped():
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                try:
                    with transaction.atomic():
                        gone = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1})
                        raise ValueError
                except ValueError:
                    pass
                later = Directive.objects.enqueue(
                    RecordInBatch.topic, {"n": 2}, available_at=timezone.now() + timedelta(minutes=5)
                )
                due = Directive.objects.enqueue(RecordInBatch.topic, {"n": 3})
    assert block.outcomes == [(gone.pk, "skipped"), (later.pk, "skipped"), (due.pk, "done")]
    assert sorted(Directive.objects.values_list("payload__n", flat=True)) == [2, 3]  # (SQLite may reuse gone's id)
    assert row(later) == ("queued", 0) and row(due) == ("done", 1)
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [due.pk]


def test_what_a_handler_enqueues_takes_the_after_commit_way():
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                parent = Directive.objects.enqueue(EnqueueInBatch.topic, {})
            [child] = Directive.objects.filter(topic=RecordInBatch.topic)
            assert block.outcomes == [(parent.pk, "done")] and child.status == "queued"
    assert row(parent) == ("done", 1)
    assert row(child) == ("done", 1)  # dispatched after the commit
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [child.pk]


def test_shared_objects_reach_the_handlers_and_are_read_again_after_a_failure(monkeypatch):
    seen = []

    def record_and_fail(self, *, message, ctx):
        execution = ctx["locked"]["execution"]
        seen.append(execution.attempt)
        execution.attempt = 99
        execution.save()
        raise RuntimeError("after changing the shared row")

    monkeypatch.setattr(FailsInBatch, "handle", record_and_fail)
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                execution = Execution.objects.create(directive_id=0, attempt=7, worker_pid=0)
                block.share(execution=execution)
                Directive.objects.enqueue(FailsInBatch.topic, {})
            assert execution.attempt == 7  # the object is as its row is again
    assert seen == [7]
    assert Execution.objects.get().attempt == 7


def test_the_block_needs_a_transaction():
    with pytest.raises(transaction.TransactionManagementError):
        with engine.dispatch_before_commit():
            pass


def test_its_row_is_inserted_done_and_the_run_writes_nothing_of_its_own():
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                directive = Directive.objects.enqueue(RecordInBatch.topic, {})
                # Already done in this transaction (nobody else sees it before the commit, with the handler's work).
                assert Directive.objects.filter(pk=directive.pk).values_list("status", "attempts").get() == ("done", 1)
                assert Directive.objects.get(pk=directive.pk).started_at is not None
            with CaptureQueriesContext(connection) as after:
                pass
            assert block.outcomes == [(directive.pk, "done")]
    assert row(directive) == ("done", 1)
    assert after.captured_queries == []


def test_a_dedupe_key_enqueued_again_in_the_block_is_the_waiting_row():
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                first = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1}, dedupe_key="k")
                again = Directive.objects.enqueue(RecordInBatch.topic, {"n": 2}, dedupe_key="k")
                with engine.dispatch_held():  # not taken by the block, still deduped against the waiting row
                    held = Directive.objects.enqueue(RecordInBatch.topic, {"n": 3}, dedupe_key="k")
                [many, other] = Directive.objects.enqueue_many(
                    [(RecordInBatch.topic, {"n": 4}, "k"), (RecordInBatch.topic, {"n": 5}, "other")]
                )
    assert first.pk == again.pk == held.pk == many.pk != other.pk
    assert block.outcomes == [(first.pk, "done"), (other.pk, "done")]
    assert list(Directive.objects.order_by("id").values_list("payload", "status", "attempts")) == [
        ({"n": 1}, "done", 1),
        ({"n": 5}, "done", 1),
    ]
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted([first.pk, other.pk])


def test_a_committed_active_duplicate_is_returned_and_not_run():
    with dispatching():
        with engine.dispatch_held():
            queued = Directive.objects.enqueue(RecordInBatch.topic, {"n": 0}, dedupe_key="k")
            queued_too = Directive.objects.enqueue(RecordInBatch.topic, {"n": 0}, dedupe_key="m")
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                same = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1}, dedupe_key="k")
                [same_too, new] = Directive.objects.enqueue_many(
                    [(RecordInBatch.topic, {"n": 2}, "m"), (RecordInBatch.topic, {"n": 3}, "n")]
                )
    assert (same.pk, same_too.pk) == (queued.pk, queued_too.pk) and new.pk not in (queued.pk, queued_too.pk)
    assert block.outcomes == [(new.pk, "done")]
    assert row(queued) == row(queued_too) == ("queued", 0)
    assert row(new) == ("done", 1)
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [new.pk]


def test_a_finished_duplicate_does_not_dedupe():
    with dispatching():
        with engine.dispatch_held():
            finished = Directive.objects.enqueue(RecordInBatch.topic, {"n": 0}, dedupe_key="k")
        Directive.objects.filter(pk=finished.pk).update(status="done")
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                directive = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1}, dedupe_key="k")
    assert directive.pk != finished.pk and block.outcomes == [(directive.pk, "done")]


def test_a_key_rolled_back_with_a_savepoint_is_enqueued_anew():
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                try:
                    with transaction.atomic():
                        gone = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1}, dedupe_key="k")
                        raise ValueError
                except ValueError:
                    pass
                kept = Directive.objects.enqueue(RecordInBatch.topic, {"n": 2}, dedupe_key="k")
    assert block.outcomes == [(gone.pk, "skipped"), (kept.pk, "done")]
    assert list(Directive.objects.values_list("payload", "status")) == [({"n": 2}, "done")]
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [kept.pk]


def test_what_a_handler_enqueues_with_a_waiting_key_is_that_row(monkeypatch):
    def enqueue_the_next(self, *, message, ctx):
        Execution.objects.create(directive_id=message.pk, attempt=ctx["attempt"], worker_pid=0)
        if message.payload["n"] == 1:
            Directive.objects.enqueue(RecordInBatch.topic, {"n": 9}, dedupe_key="second")  # waiting behind this one
            Directive.objects.enqueue(RecordInBatch.topic, {"n": 9}, dedupe_key="first")  # this one: running, no dedupe

    monkeypatch.setattr(RecordInBatch, "handle", enqueue_the_next)
    with dispatching():
        with transaction.atomic():
            with engine.dispatch_before_commit() as block:
                first = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1}, dedupe_key="first")
                second = Directive.objects.enqueue(RecordInBatch.topic, {"n": 2}, dedupe_key="second")
    assert block.outcomes == [(first.pk, "done"), (second.pk, "done")]
    # The running one's key enqueued again: a new row (after the commit), as a done row never dedupes.
    assert Directive.objects.count() == 3 and Directive.objects.filter(dedupe_key="second").count() == 1
    assert row(first) == row(second) == ("done", 1)


def test_a_block_that_raises_in_a_transaction_that_commits_leaves_its_directives_queued():
    with dispatching():
        with transaction.atomic():
            try:
                with engine.dispatch_before_commit() as block:
                    directive = Directive.objects.enqueue(RecordInBatch.topic, {}, dedupe_key="k")
                    Execution.objects.create(directive_id=0, attempt=0, worker_pid=0)
                    raise KeyError("the service gives up")
            except KeyError:
                pass
            assert connection.run_on_commit == []
            # Queued as enqueued the ordinary way, and the active row of its key again.
            assert Directive.objects.enqueue(RecordInBatch.topic, {}, dedupe_key="k").pk == directive.pk
    assert block.outcomes == []
    directive.refresh_from_db()
    assert (directive.status, directive.attempts, directive.started_at) == ("queued", 0, None)
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [0]
    assert engine.process(topics=[RecordInBatch.topic]).done == 1  # the workers take it
    assert row(directive) == ("done", 1)


def test_a_block_whose_transaction_rolls_back_leaves_nothing_behind():
    with dispatching():
        with transaction.atomic():
            try:
                with transaction.atomic():
                    with engine.dispatch_before_commit():
                        Directive.objects.enqueue(RecordInBatch.topic, {}, dedupe_key="k")
                        with connection.cursor() as cursor:
                            cursor.execute("SELECT 1 FROM no_such_table")  # the transaction breaks
            except Exception:  # noqa: BLE001 - the savepoint rolls back
                pass
            survivor = Directive.objects.enqueue(RecordInBatch.topic, {"n": 1}, dedupe_key="k")  # the key is free
    assert list(Directive.objects.values_list("payload", "status")) == [({"n": 1}, "done")]  # dispatched after the commit
    assert list(Execution.objects.values_list("directive_id", flat=True)) == [survivor.pk]
