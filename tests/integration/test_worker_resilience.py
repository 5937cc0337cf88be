"""A ``--watch`` worker whose database connections are cut (in-process, PostgreSQL): it reconnects,
listens again, gives back what it held and carries on; its heartbeat row shows it alive.

The full story — PostgreSQL restarted under a worker subprocess and a web server, directly and
through PgBouncer — is in test_database_restart.py.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import OperationalError, connection, connections
from django.utils import timezone

from omniman import engine
from omniman.models import Directive, WorkerHeartbeat
from tests.testapp.handlers import SleepAfterWrite
from tests.testapp.models import Execution

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def count(self, text: str) -> int:
        return sum(text in message for message in self.messages)


@pytest.fixture
def engine_log():
    handler = Captured()
    logger = logging.getLogger("omniman.directives")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def worker():
    """A --watch worker in a thread (its own connections), interval 30 s: only NOTIFY wakes it quickly."""
    instance = engine.Worker(interval=30, name="test-host:1")
    instance.RECONNECT_BASE = 0.05
    outcome = {}

    def run():
        try:
            outcome["processed"] = instance.run()
        except BaseException as exc:  # noqa: BLE001 - the test asserts it never happens
            outcome["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    instance.thread, instance.outcome = thread, outcome
    yield instance
    instance.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()


def wait_for(predicate, timeout: float, message: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(message or f"not within {timeout} s")


def cut_other_connections() -> int:
    """What a PostgreSQL restart does to a client: every other backend of this database is terminated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def done_quickly(timeout: float = 3.0) -> float:
    started = time.monotonic()
    directive = Directive.objects.enqueue("test.record", {})
    wait_for(lambda: Directive.objects.filter(pk=directive.pk, status="done").exists(), timeout, "not done: LISTEN is not back")
    return time.monotonic() - started


def test_the_worker_reconnects_listens_again_and_logs_each_outage_once(worker, engine_log):
    wait_for(lambda: worker.listener is not None, 10, "the worker never listened")
    done_quickly()
    for outage in (1, 2):
        assert cut_other_connections() >= 2  # its connection and its LISTEN connection
        wait_for(lambda: engine_log.count("database connection back") == outage, 15, f"not back: {engine_log.messages}")
        wait_for(lambda: worker.listener is not None, 10, "it did not LISTEN again")
        assert done_quickly() < 2.0  # woken by NOTIFY, not by the 30 s poll
    assert worker.thread.is_alive() and "error" not in worker.outcome
    assert engine_log.count("database connection lost") == 2  # once per outage, not once per attempt
    assert engine_log.count("LISTEN failed") == 0  # the LISTEN connection's loss is part of the outage
    assert Execution.objects.count() == 3
    wait_for(lambda: WorkerHeartbeat.objects.filter(name="test-host:1", processed=3).exists(), 5, "heartbeat not updated")


def test_the_directive_in_hand_when_the_connection_drops_is_given_back_and_run_once(worker, engine_log):
    gate = threading.Event()
    SleepAfterWrite.gate = gate
    SleepAfterWrite.started.clear()
    try:
        directive = Directive.objects.enqueue("test.sleep", {"slow_attempts": [1]})
        assert SleepAfterWrite.started.wait(timeout=10)  # attempt 1 wrote its row, inside its transaction
        cut_other_connections()
        gate.set()  # the handler returns; its commit cannot happen
        wait_for(lambda: Directive.objects.filter(pk=directive.pk, status="done").exists(), 15, f"not rerun: {engine_log.messages}")
    finally:
        SleepAfterWrite.gate = None
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 2)
    # Attempt 1's write went with its transaction; attempt 2 ran once — well before the stuck timeout (300 s).
    assert list(Execution.objects.filter(directive_id=directive.pk).values_list("attempt", flat=True)) == [2]
    assert engine_log.count("given back") == 1
    assert worker.thread.is_alive()


def test_a_lost_listen_connection_alone_is_reopened(worker, engine_log):
    wait_for(lambda: worker.listener is not None, 10)
    listen_pid = worker.listener.conn.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [listen_pid])
    wait_for(lambda: engine_log.count("LISTEN connection was lost") == 1, 10, f"{engine_log.messages}")
    assert done_quickly() < 2.0
    assert engine_log.count("database connection lost") == 0


def test_a_worker_started_while_the_database_is_away_waits_for_it(engine_log, monkeypatch):
    Directive.objects.bulk_create([Directive(topic="test.record", payload={}, available_at=timezone.now())])
    connection.close()
    wrapper = type(connections["default"])
    real = wrapper.ensure_connection
    refusals = []

    def refusing(self):
        if len(refusals) < 3:
            refusals.append(1)
            raise OperationalError("connection refused")
        return real(self)

    monkeypatch.setattr(wrapper, "ensure_connection", refusing)
    worker = engine.Worker(interval=0.05, name="test-host:2")
    worker.RECONNECT_BASE = 0.01
    assert worker.run(max_passes=2) == 1
    assert len(refusals) == 3
    assert engine_log.count("database connection lost") == 1 and engine_log.count("database connection back") == 1
    assert WorkerHeartbeat.objects.get(name="test-host:2").processed == 1
