"""The directive engine, in-process: claim, run, fence, back off, re-queue — on both databases."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import timezone

from omniman import engine
from omniman.models import Directive, IdempotencyKey, Session
from omniman.services import SessionService
from tests.factories import create_session_at
from tests.testapp.handlers import AlwaysFails
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db(transaction=True)


def enqueue(topic="test.record", n=1, **kwargs):
    return [Directive.objects.enqueue(topic, {"n": i}, **kwargs) for i in range(n)]


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("process_directives", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_a_pass_with_nothing_due_exits_quietly():
    assert "nothing due" in run_command()
    result = engine.process()
    assert result.claimed == 0 and result.outcomes == []


def test_a_pass_runs_due_directives_once():
    directives = enqueue(n=3)
    output = run_command()
    assert "claimed 3, done 3" in output
    for directive in directives:
        directive.refresh_from_db()
        assert (directive.status, directive.attempts, directive.last_error) == ("done", 1, "")
        assert directive.started_at is not None and directive.started_at >= directive.created_at
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted(d.pk for d in directives)
    # A second pass finds nothing: done is done.
    assert engine.process().claimed == 0
    assert Execution.objects.count() == 3


def test_unregistered_topics_and_future_rows_are_left_untouched():
    orphan = Directive.objects.enqueue("nobody.handles.this", {})
    later = Directive.objects.enqueue("test.record", {}, available_at=timezone.now() + timedelta(minutes=5))
    assert engine.process().claimed == 0
    for directive in (orphan, later):
        directive.refresh_from_db()
        assert (directive.status, directive.attempts, directive.started_at) == ("queued", 0, None)


def test_topic_filter_and_limit():
    records = enqueue("test.record", n=5)
    failing = enqueue("test.fail", n=1)
    output = run_command("--topic", "test.record", "--limit", "2")
    assert "claimed 2, done 2" in output
    assert Directive.objects.filter(pk__in=[d.pk for d in records], status="done").count() == 2
    assert Directive.objects.get(pk=failing[0].pk).attempts == 0
    assert "No handler registered for: ghost" in run_command("--topic", "ghost")


def test_claim_order_is_oldest_due_first():
    now = timezone.now()
    late = Directive.objects.enqueue("test.record", {}, available_at=now - timedelta(seconds=1))
    early = Directive.objects.enqueue("test.record", {}, available_at=now - timedelta(seconds=10))
    result = engine.process(limit=1)
    assert result.outcomes == [(early.pk, "done")]
    assert Directive.objects.get(pk=late.pk).status == "queued"


@override_settings(OMNIMAN={"DIRECTIVE_MAX_ATTEMPTS": 4, "DIRECTIVE_BACKOFF_BASE_SECONDS": 2, "DIRECTIVE_BACKOFF_MAX_SECONDS": 5})
def test_failures_back_off_then_fail_after_max_attempts():
    AlwaysFails.runs.clear()
    (directive,) = enqueue("test.fail")
    expected_delays = [2, 4, 5]  # min(2·2^(n−1), 5)
    for attempt, delay in enumerate(expected_delays, start=1):
        before = timezone.now()
        result = engine.process()
        after = timezone.now()
        assert result.outcomes == [(directive.pk, "retried")]
        directive.refresh_from_db()
        assert (directive.status, directive.attempts) == ("queued", attempt)
        assert directive.last_error.startswith(f"ConnectionError: gateway unreachable (attempt {attempt})")
        assert before + timedelta(seconds=delay) <= directive.available_at <= after + timedelta(seconds=delay * 1.1)
        # Not due yet: a pass leaves it alone.
        assert engine.process().claimed == 0
        Directive.objects.filter(pk=directive.pk).update(available_at=timezone.now())
    result = engine.process()
    assert result.outcomes == [(directive.pk, "failed")]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("failed", 4)
    assert "ConnectionError" in directive.last_error
    assert AlwaysFails.runs == [(directive.pk, n) for n in (1, 2, 3, 4)]
    assert Execution.objects.count() == 0  # every failed run's writes rolled back
    Directive.objects.filter(pk=directive.pk).update(available_at=timezone.now() - timedelta(hours=1))
    assert engine.process().claimed == 0  # failed is final


def test_backoff_schedule_matches_the_spec():
    with override_settings(OMNIMAN={"DIRECTIVE_BACKOFF_BASE_SECONDS": 2, "DIRECTIVE_BACKOFF_MAX_SECONDS": 300}):
        for attempts, base in ((1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (20, 300)):
            samples = [engine.backoff_seconds(attempts) for _ in range(50)]
            assert all(base <= s <= base * 1.1 for s in samples), (attempts, min(samples), max(samples))
            assert len(set(samples)) > 1  # jittered


@override_settings(OMNIMAN={"DIRECTIVE_STUCK_AFTER_SECONDS": 60, "DIRECTIVE_MAX_ATTEMPTS": 3})
def test_stuck_running_rows_are_requeued_or_failed():
    long_ago = timezone.now() - timedelta(minutes=5)
    recent = timezone.now() - timedelta(seconds=5)
    retry, dead, alive, claimed_long_ago = (Directive.objects.enqueue("test.record", {}) for _ in range(4))
    Directive.objects.filter(pk=retry.pk).update(status="running", attempts=1, started_at=long_ago)
    Directive.objects.filter(pk=dead.pk).update(status="running", attempts=3, started_at=long_ago)
    Directive.objects.filter(pk=alive.pk).update(status="running", attempts=1, started_at=recent)
    Directive.objects.filter(pk=claimed_long_ago.pk).update(status="running", attempts=1, started_at=None, updated_at=long_ago)
    result = engine.process()
    assert (result.stuck_requeued, result.stuck_failed) == (2, 1)
    assert {d for d, outcome in result.outcomes if outcome == "done"} == {retry.pk, claimed_long_ago.pk}
    retry.refresh_from_db()
    assert (retry.status, retry.attempts) == ("done", 2)
    dead.refresh_from_db()
    assert dead.status == "failed" and dead.last_error.startswith("stuck:")
    alive.refresh_from_db()
    assert (alive.status, alive.attempts) == ("running", 1)


def test_a_fenced_run_cannot_finish_and_its_writes_roll_back():
    (directive,) = enqueue()
    (claimed,) = engine.claim()
    # While it works, the row is presumed dead, re-queued and claimed again (attempt 2).
    Directive.objects.filter(pk=directive.pk).update(status="queued")
    (newer,) = engine.claim()
    assert newer.attempts == 2
    assert engine.execute(claimed) == "fenced"
    assert Execution.objects.count() == 0
    assert engine.execute(newer) == "done"
    assert list(Execution.objects.values_list("attempt", flat=True)) == [2]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 2)


def test_a_fenced_failure_does_not_overwrite_the_newer_attempt():
    (directive,) = enqueue("test.fail")
    (claimed,) = engine.claim()
    Directive.objects.filter(pk=directive.pk).update(status="done", attempts=2, last_error="")
    assert engine.execute(claimed) == "fenced"
    directive.refresh_from_db()
    assert (directive.status, directive.attempts, directive.last_error) == ("done", 2, "")


def test_stopping_gives_back_the_unstarted_rest_of_the_batch():
    directives = enqueue(n=4)
    calls = []

    def stop_after_two():
        calls.append(1)
        return len(calls) > 2

    result = engine.process(should_stop=stop_after_two)
    assert (result.claimed, result.done, result.released) == (4, 2, 2)
    statuses = sorted(Directive.objects.filter(pk__in=[d.pk for d in directives]).values_list("status", "attempts"))
    assert statuses == [("done", 1), ("done", 1), ("queued", 0), ("queued", 0)]


def test_watch_worker_runs_until_stopped():
    enqueue(n=3)
    worker = engine.Worker(limit=2, interval=0.05)
    processed = worker.run(max_passes=3)
    assert processed == 3
    assert Directive.objects.filter(status="done").count() == 3


def test_dispatch_on_commit_runs_the_topic_after_the_transaction():
    with override_settings(OMNIMAN={"DISPATCH_ON_COMMIT": ["test.record"]}):
        with transaction.atomic():
            directive = Directive.objects.enqueue("test.record", {})
            other = Directive.objects.enqueue("test.fail", {})
            assert Execution.objects.count() == 0  # not before the commit
        directive.refresh_from_db()
        assert (directive.status, directive.attempts) == ("done", 1)
        assert Directive.objects.get(pk=other.pk).status == "queued"  # not a dispatch topic


def test_dispatch_never_takes_a_directive_a_worker_holds():
    (directive,) = enqueue()
    engine.claim()
    assert engine.dispatch(directive.pk) is None
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("running", 1)


def test_dispatch_failure_is_recorded_not_raised():
    with override_settings(OMNIMAN={"DISPATCH_ON_COMMIT": ["test.fail"]}):
        with transaction.atomic():
            directive = Directive.objects.enqueue("test.fail", {})
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("queued", 1)
    assert directive.last_error.startswith("ConnectionError")


def test_cleanup_idempotency_keys():
    now = timezone.now()
    IdempotencyKey.objects.create(scope="s", key="old", status="done", expires_at=now - timedelta(hours=1))
    IdempotencyKey.objects.create(scope="s", key="failed", status="failed", expires_at=now - timedelta(hours=1))
    IdempotencyKey.objects.create(scope="s", key="held", status="in_progress", expires_at=now - timedelta(hours=1))
    IdempotencyKey.objects.create(scope="s", key="fresh", status="done", expires_at=now + timedelta(hours=1))
    out = io.StringIO()
    call_command("cleanup_idempotency_keys", "--dry-run", stdout=out)
    assert "would delete 2 expired keys" in out.getvalue()
    assert IdempotencyKey.objects.count() == 4
    call_command("cleanup_idempotency_keys", stdout=out)
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == ["fresh", "held"]


@override_settings(OMNIMAN={"SESSION_TTL_HOURS": 24})
def test_abandon_stale_sessions():
    stale = create_session_at()
    fresh = create_session_at(stale.channel)
    Session.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(hours=25))
    out = io.StringIO()
    call_command("abandon_stale_sessions", "--dry-run", stdout=out)
    assert stale.session_key in out.getvalue() and "would abandon 1 sessions" in out.getvalue()
    assert Session.objects.get(pk=stale.pk).state == "open"
    call_command("abandon_stale_sessions", stdout=out)
    assert Session.objects.get(pk=stale.pk).state == "abandoned"
    assert Session.objects.get(pk=fresh.pk).state == "open"
    # A handle freed by abandoning opens a new session.
    assert SessionService.open_session(stale.channel.code).state == "open"


def test_done_and_the_next_start_are_fenced_each_on_its_own():
    first, second, third = enqueue(n=3)
    a, b, c = engine.claim(limit=3)
    # The next one was taken away meanwhile (re-queued): the first is done, the next isn't stamped.
    Directive.objects.filter(pk=b.pk).update(status="queued")
    assert engine.execute(a, then=b) == "done"
    assert b.started_at is None
    assert Directive.objects.get(pk=b.pk).started_at is None
    # The run itself was fenced out: nothing of it stays, the next one's stamp rolls back with it.
    Directive.objects.filter(pk=c.pk).update(status="queued")
    (c2,) = engine.claim(ids=[c.pk])
    (b2,) = engine.claim(ids=[b.pk])
    Directive.objects.filter(pk=c2.pk).update(attempts=5)
    assert engine.execute(c2, then=b2) == "fenced"
    assert Directive.objects.get(pk=b2.pk).started_at is None
    assert engine.execute(b2) == "done"
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted([first.pk, second.pk])


@pytest.mark.postgres
def test_postgres_trigger_notifies_due_directives_on_commit():
    import psycopg

    settings = connection.settings_dict
    listener = psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"] or None, port=settings["PORT"] or None, autocommit=True
    )
    try:
        listener.execute("LISTEN omniman_directives")
        with transaction.atomic():
            Directive.objects.enqueue("test.record", {})
            Directive.objects.enqueue("test.later", {}, available_at=timezone.now() + timedelta(hours=1))
            assert list(listener.notifies(timeout=0.2, stop_after=1)) == []  # not before the commit
        got = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
        assert got == ["test.record"]
        assert [n.payload for n in listener.notifies(timeout=0.3)] == []  # nothing for the future one
    finally:
        listener.close()


def test_each_run_keeps_a_heartbeat_row():
    import socket

    from omniman.models import WorkerHeartbeat

    enqueue(n=2)
    run_command("--limit", "10")  # a cron pass: one row per host, shared by its passes
    enqueue(n=1)
    run_command()
    (cron,) = WorkerHeartbeat.objects.filter(name=f"{socket.gethostname()}:pass")
    assert cron.processed == 3 and cron.pid is None
    worker = engine.Worker(interval=0.05, name="box:123")
    enqueue(n=2)
    assert worker.run(max_passes=2) == 2
    beat = WorkerHeartbeat.objects.get(name="box:123")
    assert (beat.host, beat.pid, beat.processed) == ("box", 123, 2)
    assert beat.started_at <= beat.last_seen_at
