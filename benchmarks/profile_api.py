"""What one API order costs the server, in counts that do not move with the machine's load.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/omniman_api_bench .venv/bin/python benchmarks/profile_api.py

On a scratch database seeded as ``bench_api.py`` seeds it (the demo's
catalog and channels, a manager's token), it places ``PROFILE_ORDERS``
orders (default 500) per channel through Django's WSGI handler in this one
thread — the same open → modify (3 lines) → commit requests as the benchmark,
with the production settings (``config.settings``, DEBUG off, persistent
connection) — and prints, per order and per request kind:

* **statements** and **commits** (``CaptureQueriesContext`` over the three
  requests of one order: Django counts BEGIN, COMMIT and savepoints);
* **Python CPU** (``time.process_time()`` of this process: the server's
  share of the work, without the HTTP parsing gunicorn does);
* **PostgreSQL CPU** (user + system time of this connection's backend
  process, read from ``/proc/<pid>/stat``; only when the server runs on this
  machine and its processes are readable, else "n/a").

CPU time is what a request costs whatever else runs; the load changes only
how long it waits. What this leaves out — gunicorn's HTTP handling, the
load generator, the kernel — ``bench_api.py`` prints for each of its runs
(CPU per order of the client, gunicorn, PostgreSQL and the machine), and
``bench_gunicorn.py`` measures gunicorn's share alone (a fraction of a
millisecond per request). ``PROFILE_CPROFILE=1`` adds a ``cProfile`` of the counter
orders, timed in process time (the top functions by cumulative and by own
time; ``PROFILE_OUT=<file>`` also saves it for ``pstats``);
``PROFILE_SQL=1`` prints the statements of one order of each channel.
It creates its test database from ``DATABASE_URL``'s name (``test_<name>``):
give it a name no running test suite uses.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omniman_api_bench")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("CONN_MAX_AGE", "600")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")

import django  # noqa: E402

django.setup()

from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection  # noqa: E402

ORDERS = int(os.environ.get("PROFILE_ORDERS", "500"))
PROFILE = os.environ.get("PROFILE_CPROFILE", "") not in {"", "0"}
KINDS = ("open", "modify", "commit")


class Wsgi:
    """Requests straight into Django's WSGI handler, as gunicorn hands them over."""

    def __init__(self, token: str):
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.auth = f"Token {token}"

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        import json

        raw = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": self.auth,
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "wsgi.version": (1, 0),
        }
        status = []
        chunks = self.handler(environ, lambda s, h, exc_info=None: status.append(s))
        try:
            payload = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
        return int(status[0].split()[0]), json.loads(payload or b"{}")


def backend_cpu_seconds() -> float | None:
    """User + system CPU of this connection's PostgreSQL backend, or None where it cannot be read."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def place(client: Wsgi, channel: str, lines, times: dict[str, float]) -> None:
    start = time.process_time()
    status, body = client.post("/api/sessions/", {"channel_code": channel})
    assert status == 201, (status, body)
    now = time.process_time()
    times["open"] += now - start
    ops = [{"op": "add_line", "sku": sku, "qty": qty, "unit_price_q": 500} for sku, qty in lines]
    start = now
    status, body = client.post(
        f"/api/sessions/{body['session_key']}/modify/",
        {"channel_code": channel, "ops": ops, "expected_rev": body["rev"]},
    )
    assert status == 200, (status, body)
    now = time.process_time()
    times["modify"] += now - start
    start = now
    status, result = client.post(
        f"/api/sessions/{body['session_key']}/commit/", {"channel_code": channel, "idempotency_key": uuid.uuid4().hex}
    )
    assert status == 201, (status, result)
    times["commit"] += time.process_time() - start


def count_one(client: Wsgi, channel: str, lines) -> dict[str, tuple[int, int]]:
    """Statements and commits of each request of one order."""
    from django.test.utils import CaptureQueriesContext

    counts = {}
    ops = [{"op": "add_line", "sku": sku, "qty": qty, "unit_price_q": 500} for sku, qty in lines]
    requests = [
        ("open", lambda body: ("/api/sessions/", {"channel_code": channel})),
        (
            "modify",
            lambda body: (
                f"/api/sessions/{body['session_key']}/modify/",
                {"channel_code": channel, "ops": ops, "expected_rev": body["rev"]},
            ),
        ),
        (
            "commit",
            lambda body: (
                f"/api/sessions/{body['session_key']}/commit/",
                {"channel_code": channel, "idempotency_key": uuid.uuid4().hex},
            ),
        ),
    ]
    body: dict = {}
    for kind, make in requests:
        path, payload = make(body)
        with CaptureQueriesContext(connection) as ctx:
            status, answer = client.post(path, payload)
        assert status in (200, 201), (kind, status, answer)
        if kind != "commit":
            body = answer
        sqls = [q["sql"] for q in ctx.captured_queries]
        counts[kind] = (len(sqls), sum(sql.strip().upper() == "COMMIT" for sql in sqls))
        if os.environ.get("PROFILE_SQL"):
            print(f"-- {channel} {kind}")
            for sql in sqls:
                print("   ", sql[:220])
    return counts


def run() -> None:
    from benchmarks.bench_api import LINES, setup

    token = setup()
    client = Wsgi(token)
    for channel in ("counter", "bench"):
        lines = LINES[channel]
        for _ in range(20):  # warm-up: imports, caches, the connection
            place(client, channel, lines, dict.fromkeys(KINDS, 0.0))
        counts = count_one(client, channel, lines)
        times = dict.fromkeys(KINDS, 0.0)
        profiler = cProfile.Profile(time.process_time) if PROFILE and channel == "counter" else None
        pg_before = backend_cpu_seconds()
        if profiler:
            profiler.enable()
        for _ in range(ORDERS):
            place(client, channel, lines, times)
        if profiler:
            profiler.disable()
        pg_after = backend_cpu_seconds()
        label = "demo counter channel, with its checks" if channel == "counter" else "check-less channel (reference)"
        print(f"\n{channel} ({label}), {ORDERS} orders in one thread{' (under cProfile)' if profiler else ''}")
        total_statements = sum(c[0] for c in counts.values())
        total_commits = sum(c[1] for c in counts.values())
        print(
            "  statements per order: "
            + " + ".join(f"{counts[k][0]}" for k in KINDS)
            + f" = {total_statements} (open + modify + commit); commits: "
            + " + ".join(f"{counts[k][1]}" for k in KINDS)
            + f" = {total_commits}"
        )
        python_ms = sum(times.values()) / ORDERS * 1000
        print(
            f"  Python CPU per order: {python_ms:.2f} ms ("
            + ", ".join(f"{k} {times[k] / ORDERS * 1000:.2f}" for k in KINDS)
            + ")"
        )
        if pg_before is not None and pg_after is not None:
            pg_ms = (pg_after - pg_before) / ORDERS * 1000
            print(f"  PostgreSQL backend CPU per order: {pg_ms:.2f} ms; together {python_ms + pg_ms:.2f} ms")
        else:
            print("  PostgreSQL backend CPU per order: n/a (the server's processes are not readable here)")
        if profiler and os.environ.get("PROFILE_OUT"):
            profiler.dump_stats(os.environ["PROFILE_OUT"])
        if profiler:
            for key in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(45)
                print(out.getvalue())


if __name__ == "__main__":
    if connection.vendor != "postgresql":
        sys.exit(f"profile_api needs PostgreSQL (DATABASE_URL=postgres://…); this is {connection.vendor}.")
    run_on_scratch_database(run)
