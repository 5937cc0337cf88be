"""The directive engine behind PgBouncer in transaction pooling mode (a PgBouncer the test starts).

A pooled connection cannot LISTEN (the notifications go to whichever client holds the server
connection next, or nowhere), so the worker LISTENs on ``DIRECTIVE_LISTEN_URL`` — a direct
connection — while every query goes through the pooler; with ``"off"`` it polls instead.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection
from django.db.models import Count

from omniman.models import Directive, WorkerHeartbeat
from tests.integration.test_directive_reliability import database_url, start_worker, stop, wait_for
from tests.servers import PgBouncer, pgbouncer_binary
from tests.testapp.models import Execution

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(pgbouncer_binary() is None, reason="pgbouncer is not installed (scripts/test.py installs Debian's)"),
]


@pytest.fixture
def bouncer():
    s = connection.settings_dict
    instance = PgBouncer(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432), user=s["USER"], password=s.get("PASSWORD") or "")
    instance.start(s["NAME"])
    yield instance
    instance.stop()


def pooled_clients(bouncer: PgBouncer) -> list[str]:
    """Databases of PgBouncer's client connections (its admin console's SHOW CLIENTS)."""
    with psycopg.connect(bouncer.url("pgbouncer"), autocommit=True) as admin:
        cursor = admin.execute("SHOW CLIENTS")
        columns = [c.name for c in cursor.description]
        return [dict(zip(columns, row))["database"] for row in cursor.fetchall()]


def assert_each_done_once(total: int) -> None:
    assert Directive.objects.filter(status="done").count() == total
    assert Execution.objects.count() == total
    assert not Execution.objects.values("directive_id").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_a_worker_behind_pgbouncer_listens_on_the_direct_url(bouncer):
    name = connection.settings_dict["NAME"]
    worker = start_worker(
        "--watch", "--interval", "30", DATABASE_URL=bouncer.url(name), OMNIMAN_DIRECTIVE_LISTEN_URL=database_url(),
        **PgBouncer.CLIENT_ENV,
    )
    try:
        wait_for(lambda: WorkerHeartbeat.objects.exists(), timeout=20, message="the worker never started")
        assert name in pooled_clients(bouncer)  # its queries go through the pooler
        time.sleep(0.5)
        latencies = []
        for _ in range(5):
            started = time.monotonic()
            directive = Directive.objects.enqueue("test.record", {})
            wait_for(lambda: Directive.objects.filter(pk=directive.pk, status="done").exists(), timeout=10)
            latencies.append(time.monotonic() - started)
        Directive.objects.bulk_create([Directive(topic="test.record", payload={"n": n}) for n in range(300)])
        Directive.objects.enqueue("test.record", {})  # the bulk insert announces nothing by itself
        wait_for(lambda: Directive.objects.filter(status="done").count() == 306, timeout=60, step=0.2)
    finally:
        code, output = stop(worker)
    assert code == 0, output
    assert max(latencies) < 1.0, latencies  # woken by NOTIFY: the poll is every 30 s
    assert_each_done_once(306)
    assert "LISTEN failed" not in output and "Traceback" not in output, output


def test_a_worker_behind_pgbouncer_without_listen_polls(bouncer):
    worker = start_worker(
        "--watch", "--interval", "0.3", DATABASE_URL=bouncer.url(connection.settings_dict["NAME"]), OMNIMAN_DIRECTIVE_LISTEN_URL="off",
        **PgBouncer.CLIENT_ENV,
    )
    try:
        Directive.objects.bulk_create([Directive(topic="test.record", payload={"n": n}) for n in range(200)])
        wait_for(lambda: Directive.objects.filter(status="done").count() == 200, timeout=60, step=0.2)
    finally:
        code, output = stop(worker)
    assert code == 0, output
    assert_each_done_once(200)
    assert "LISTEN" not in output, output
