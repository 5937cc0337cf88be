"""PostgreSQL restarted (fast shutdown, then start) under a running ``--watch`` worker and a threaded
web server, both kept busy — directly, then through PgBouncer in transaction pooling mode.

A throwaway PostgreSQL of the test's own (initdb in a temporary folder, a spare port) is the one
restarted: the suite's database is never touched. What must hold: nothing lost, every directive
done exactly once (the test app's Record handler writes one Execution row per run, in the run's
transaction), the worker alive afterwards with no human action and listening again, and the web
answering 503 — never 500 — while the database is away.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from tests.servers import PgBouncer, ThrowawayPostgres, pgbouncer_binary, postgres_bindir, spare_port

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(postgres_bindir() is None, reason="PostgreSQL's initdb/pg_ctl are not installed"),
]

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "omniman_restart"
OUTAGE_SECONDS = 1.5

INSERT = (
    "INSERT INTO omniman_directive (topic, status, payload, attempts, available_at, last_error, dedupe_key, created_at, updated_at) "
    "VALUES ('test.record', 'queued', %s, 0, now(), '', '', now(), now()) RETURNING id"
)
PREPARE = """
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from rest_framework.authtoken.models import Token
user = get_user_model().objects.create_user(username="boss", is_superuser=True, is_staff=True)
session = SessionStore()
session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend", HASH_SESSION_KEY: user.get_session_auth_hash()})
session.create()
print("credentials:", Token.objects.create(user=user).key, session.session_key)
"""


def manage(*args: str, database_url: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", **env}
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def postgres():
    """The throwaway cluster with a migrated database, a superuser's API token and login session."""
    instance = ThrowawayPostgres()
    try:
        instance.init()
        instance.start()
        with psycopg.connect(instance.url(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        url = instance.url(DATABASE)
        migrated = manage("migrate", "--noinput", database_url=url)
        assert migrated.returncode == 0, migrated.stderr
        prepared = manage("shell", "-c", PREPARE, database_url=url)
        assert prepared.returncode == 0, prepared.stderr
        instance.token, instance.session_key = prepared.stdout.split()[-2:]
        yield instance
    finally:
        instance.destroy()


class Output:
    """A subprocess's combined output, read as it comes (a full pipe would block the process)."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(process.stdout), daemon=True)
        self.thread.start()

    def text(self) -> str:
        return "".join(self.lines)


class Load:
    """Threads that enqueue directives and call the web while the database restarts."""

    def __init__(self, *, database_url: str, web: str, token: str, session_key: str):
        self.database_url, self.web, self.token, self.session_key = database_url, web, token, session_key
        self.stopping = threading.Event()
        self.committed: list[int] = []  # ids of inserts whose commit was confirmed
        self.failed_inserts = 0
        self.statuses: dict[str, collections.Counter] = {"api": collections.Counter(), "page": collections.Counter()}
        self.unavailable: list[tuple[str, str | None, bytes]] = []  # (kind, Retry-After, body) of each 503
        self.threads = [threading.Thread(target=self.enqueue, daemon=True)]
        self.threads += [threading.Thread(target=self.call, args=(kind,), daemon=True) for kind in ("api", "api", "page")]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def enqueue(self) -> None:
        conn, n = None, 0
        while not self.stopping.is_set():
            try:
                if conn is None or conn.closed:
                    # No prepared statements (as Django's default): a transaction pooler cannot keep them.
                    conn = psycopg.connect(self.database_url, autocommit=True, connect_timeout=2, prepare_threshold=None)
                n += 1
                (directive_id,) = conn.execute(INSERT, [json.dumps({"n": n})]).fetchone()
                self.committed.append(directive_id)
                time.sleep(0.01)
            except (psycopg.OperationalError, psycopg.InterfaceError):
                self.failed_inserts += 1  # refused, or cut off: its commit is not known — counted below from the table
                conn = None
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    def call(self, kind: str) -> None:
        path, headers = ("/api/channels/", {"Authorization": f"Token {self.token}"}) if kind == "api" else ("/pos/", {"Cookie": f"sessionid={self.session_key}"})
        while not self.stopping.is_set():
            request = urllib.request.Request(self.web + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=15) as response:
                    self.statuses[kind][response.status] += 1
            except urllib.error.HTTPError as error:
                self.statuses[kind][error.code] += 1
                if error.code == 503:
                    self.unavailable.append((kind, error.headers.get("Retry-After"), error.read()))
            time.sleep(0.02)


def rows(database_url: str, sql: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()


def wait_for(predicate, timeout: float, message: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(message())


def run_restart(postgres: ThrowawayPostgres, *, app_url: str, listen_url: str, app_env: dict | None = None) -> dict:
    """Worker + web on ``app_url`` (with ``app_env``); load; restart PostgreSQL; drain; return what was seen."""
    with psycopg.connect(postgres.url(DATABASE), autocommit=True) as conn:
        conn.execute("TRUNCATE omniman_directive, testapp_execution, omniman_workerheartbeat")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": app_url, "LOG_LEVEL": "WARNING", **(app_env or {})}
    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "process_directives", "--watch", "--interval", "30", "-v", "0"],
        cwd=ROOT, env={**env, "OMNIMAN_DIRECTIVE_LISTEN_URL": listen_url}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    port = spare_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", str(ROOT / "gunicorn.conf.py")],
        cwd=ROOT, env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1", "GUNICORN_THREADS": "4", "CONN_MAX_AGE": "60"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    worker_output, web_output = Output(worker), None
    web.stdout = web.stderr
    web_output = Output(web)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: rows(postgres.url(DATABASE), "SELECT count(*) FROM omniman_workerheartbeat")[0][0] == 1, 30,
                 lambda: f"the worker never started:\n{worker_output.text()}")
        wait_for(lambda: _answers(base + "/healthz"), 30, lambda: f"the web never answered:\n{web_output.text()}")
        with Load(database_url=app_url, web=base, token=postgres.token, session_key=postgres.session_key) as load:
            time.sleep(1.5)
            postgres.stop("fast")
            time.sleep(OUTAGE_SECONDS)
            postgres.start()
            time.sleep(3.0)
        total = rows(postgres.url(DATABASE), "SELECT count(*) FROM omniman_directive")[0][0]
        wait_for(
            lambda: rows(postgres.url(DATABASE), "SELECT count(*) FROM omniman_directive WHERE status = 'done'")[0][0] == total,
            20,
            lambda: f"not drained: {rows(postgres.url(DATABASE), 'SELECT status, count(*) FROM omniman_directive GROUP BY 1')}\n{worker_output.text()}",
        )
        alive = worker.poll() is None
        # Listening again: one more directive is picked up at once, not at the 30 s poll.
        started = time.monotonic()
        (probe,) = rows(postgres.url(DATABASE), INSERT.replace("%s", "'{}'"))[0]
        wait_for(
            lambda: rows(postgres.url(DATABASE), f"SELECT status FROM omniman_directive WHERE id = {probe}")[0][0] == "done",
            10,
            lambda: f"the worker does not listen again:\n{worker_output.text()}",
        )
        relisten_seconds = time.monotonic() - started
        after = _answers(base + "/api/channels/", {"Authorization": f"Token {postgres.token}"})
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        web.terminate()
        worker_code = worker.wait(timeout=30)
        web.wait(timeout=30)
        worker_output.thread.join(timeout=5)
    executions = dict(rows(postgres.url(DATABASE), "SELECT directive_id, count(*) FROM testapp_execution GROUP BY 1"))
    directives = rows(postgres.url(DATABASE), "SELECT id, status FROM omniman_directive")
    return {
        "load": load, "alive": alive, "worker_code": worker_code, "worker_output": worker_output.text(),
        "web_output": web_output.text(), "executions": executions, "directives": directives, "after": after,
        "relisten_seconds": relisten_seconds,
    }


def _answers(url: str, headers: dict | None = None) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def assert_survived(seen: dict) -> None:
    load, output = seen["load"], seen["worker_output"]
    assert seen["alive"], f"the worker died:\n{output}"
    assert seen["relisten_seconds"] < 2.0, output
    assert seen["worker_code"] == 0, output  # and it still stops cleanly on SIGTERM
    # Nothing lost: every confirmed insert is there and done; every row ran exactly once.
    statuses = dict(seen["directives"])
    assert len(load.committed) > 100 and set(load.committed) <= set(statuses), "confirmed inserts are missing"
    assert set(statuses.values()) == {"done"}
    assert seen["executions"] == {directive_id: 1 for directive_id in statuses}
    # One warning per outage, one when back: not one per reconnect attempt.
    assert output.count("database connection lost") <= 1 and output.count("database connection back") == output.count("database connection lost"), output
    assert "Traceback" not in output, output
    # The web never answered 500, and answered again once the database was back.
    assert all(500 not in counter for counter in load.statuses.values()), (load.statuses, seen["web_output"])
    assert all(counter[200] > 0 for counter in load.statuses.values()), load.statuses
    assert seen["after"], "the API did not answer 200 after the restart"
    for kind, retry_after, body in load.unavailable:
        assert retry_after == "5"
        if kind == "api":
            assert json.loads(body)["error"]["code"] == "database_unavailable"
        else:
            assert b"Back in a moment" in body


def test_postgres_restarts_under_a_busy_worker_and_web(postgres):
    seen = run_restart(postgres, app_url=postgres.url(DATABASE), listen_url="")
    assert_survived(seen)
    assert seen["worker_output"].count("database connection lost") == 1, seen["worker_output"]
    # The outage was seen, and answered with 503s.
    assert seen["load"].failed_inserts > 0
    assert sum(counter[503] for counter in seen["load"].statuses.values()) > 0, seen["load"].statuses


@pytest.mark.skipif(pgbouncer_binary() is None, reason="pgbouncer is not installed (scripts/test.py installs Debian's)")
def test_postgres_restarts_under_a_busy_worker_and_web_behind_pgbouncer(postgres):
    bouncer = PgBouncer("127.0.0.1", postgres.port)
    bouncer.start(DATABASE)
    try:
        seen = run_restart(
            postgres, app_url=bouncer.url(DATABASE), listen_url=postgres.url(DATABASE), app_env=PgBouncer.CLIENT_ENV
        )
    finally:
        bouncer.stop()
    assert_survived(seen)
