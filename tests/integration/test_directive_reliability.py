"""The directive engine under real workers on PostgreSQL: processes, SIGKILL, SIGTERM, fencing, NOTIFY."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from omniman import engine
from omniman.models import Directive
from tests.testapp.handlers import SleepAfterWrite
from tests.testapp.models import Execution

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_worker(*args: str, **env: str) -> subprocess.Popen:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "LOG_LEVEL": "WARNING",
        **env,
    }
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "process_directives", *args],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        raise AssertionError(f"worker did not stop within {timeout} s:\n{output}")
    return process.returncode, output


def wait_for(predicate, timeout: float, step: float = 0.05, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(message or f"condition not met within {timeout} s")


def test_four_workers_drain_5000_directives_exactly_once():
    total = 5000
    workers = [start_worker("--watch", "--limit", "50", "--interval", "1") for _ in range(4)]
    try:
        now = timezone.now()
        Directive.objects.bulk_create(
            [Directive(topic="test.record", payload={"n": n}, available_at=now) for n in range(total)], batch_size=1000
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
    duplicates = Execution.objects.values("directive_id").annotate(n=Count("id")).filter(n__gt=1)
    assert list(duplicates) == []
    assert set(Directive.objects.values_list("attempts", flat=True)) == {1}
    # The work was shared: more than one worker process ran directives.
    assert Execution.objects.values("worker_pid").distinct().count() > 1


def test_killed_worker_mid_handler_is_rerun_once_after_the_stuck_timeout():
    directive = Directive.objects.enqueue("test.sleep", {"sleep": 60, "slow_attempts": [1]})
    worker = start_worker("--watch", "--interval", "0.2", OMNIMAN_DIRECTIVE_STUCK_AFTER_SECONDS="2")
    try:
        wait_for(
            lambda: Directive.objects.filter(pk=directive.pk, status="running", started_at__isnull=False).exists(),
            timeout=20,
            message="the worker never started the directive",
        )
        time.sleep(0.3)  # it is now sleeping inside its transaction, after writing its row
    finally:
        code, _ = stop(worker, signal.SIGKILL)
    assert code == -signal.SIGKILL
    # The killed run's write was rolled back with its connection.
    assert Execution.objects.filter(directive_id=directive.pk).count() == 0
    assert Directive.objects.get(pk=directive.pk).status == "running"
    with override_settings(OMNIMAN={"DIRECTIVE_STUCK_AFTER_SECONDS": 2}):
        time.sleep(2.1)
        result = engine.process()
    assert result.stuck_requeued == 1 and result.outcomes == [(directive.pk, "done")]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 2)
    assert "stuck" in directive.last_error or directive.last_error == ""
    assert list(Execution.objects.filter(directive_id=directive.pk).values_list("attempt", flat=True)) == [2]


def test_slow_run_that_outlives_the_stuck_timeout_is_fenced_out():
    directive = Directive.objects.enqueue("test.sleep", {"slow_attempts": [1]})
    gate = threading.Event()
    SleepAfterWrite.gate = gate
    SleepAfterWrite.started.clear()
    outcome = {}

    def slow_run():
        try:
            (claimed,) = engine.claim(topics=["test.sleep"])
            outcome["slow"] = engine.execute(claimed)
        finally:
            connections.close_all()

    thread = threading.Thread(target=slow_run)
    try:
        thread.start()
        assert SleepAfterWrite.started.wait(timeout=10)
        with override_settings(OMNIMAN={"DIRECTIVE_STUCK_AFTER_SECONDS": 0.5}):
            time.sleep(0.6)
            newer = engine.process(topics=["test.sleep"])  # re-queues it and runs attempt 2
        assert newer.stuck_requeued == 1 and newer.outcomes == [(directive.pk, "done")]
    finally:
        gate.set()
        thread.join(timeout=30)
        SleepAfterWrite.gate = None
    assert outcome["slow"] == "fenced"
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 2)
    assert list(Execution.objects.filter(directive_id=directive.pk).values_list("attempt", flat=True)) == [2]


def test_watch_wakes_on_notify_not_on_the_interval():
    worker = start_worker("--watch", "--interval", "30")
    try:
        # Started and past its first pass: a warm-up directive done means the loop runs (a loaded
        # machine takes seconds to import Django); then it waits on LISTEN with a 30 s interval.
        warm_up = Directive.objects.enqueue("test.record", {})
        wait_for(lambda: Directive.objects.filter(pk=warm_up.pk, status="done").exists(), timeout=30)
        time.sleep(0.3)
        latencies = []
        for _ in range(5):
            started = time.monotonic()
            directive = Directive.objects.enqueue("test.record", {})
            wait_for(lambda: Directive.objects.filter(pk=directive.pk, status="done").exists(), timeout=5)
            latencies.append(time.monotonic() - started)
    finally:
        code, output = stop(worker)
    assert code == 0, output
    assert max(latencies) < 3.0, latencies  # polling would take up to 30 s


def _handler_in_transaction(model) -> bool:
    """A backend of this database sits in an open transaction whose last statement inserted into ``model``'s table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS(SELECT 1 FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'idle in transaction' AND query LIKE %s)",
            [f'INSERT INTO "{model._meta.db_table}"%'],
        )
        return cursor.fetchone()[0]


def test_sigterm_lets_the_directive_in_hand_finish():
    directive = Directive.objects.enqueue("test.sleep", {"sleep": 2, "slow_attempts": [1]})
    waiting = Directive.objects.enqueue("test.record", {}, available_at=timezone.now())
    worker = start_worker("--watch", "--limit", "10", "--interval", "0.2", "--topic", "test.sleep")
    try:
        # In hand: the handler has written its row and sleeps in its transaction. (``started_at`` alone is not
        # enough: the claim stamps it, and a SIGTERM between the claim and the handler gives the row back.)
        wait_for(lambda: _handler_in_transaction(Execution), timeout=20)
        started = time.monotonic()
        code, output = stop(worker, signal.SIGTERM, timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 0, output
    assert time.monotonic() - started >= 1.0  # it waited for the handler
    assert "stopped after 1 directives" in output
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 1)
    assert Directive.objects.get(pk=waiting.pk).status == "queued"  # other topic: untouched


def test_overlapping_cron_passes_never_run_a_directive_twice():
    Directive.objects.bulk_create([Directive(topic="test.record", payload={}) for _ in range(300)])
    passes = [start_worker("--limit", "300") for _ in range(3)]
    outputs = [stop(p, sig=0, timeout=60) for p in passes]  # wait for each pass to exit by itself
    assert [code for code, _ in outputs] == [0, 0, 0]
    assert Directive.objects.filter(status="done").count() == 300
    assert Execution.objects.count() == 300
