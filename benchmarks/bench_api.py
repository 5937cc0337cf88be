"""API benchmark: committed orders per second through the REST API, and the latency of a modify call.

Run against PostgreSQL (it creates and drops its own test database, as the
other benchmarks do):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/omniman_api_bench .venv/bin/python benchmarks/bench_api.py

It migrates a scratch database, seeds the demo's catalog and channels
(``seed_demo --no-users``, stock levels raised so that no order runs short),
creates a ``manager`` with a token, then starts gunicorn (``config.wsgi``, 2 sync
workers, DEBUG off, persistent database connections) on a free port against
that database. The load generator is a pool of ``BENCH_CLIENTS`` Python threads
(default 8) on the same machine, each placing orders over HTTP for
``BENCH_SECONDS`` (default 20) after a 3 s warm-up: open a session
(``POST /api/sessions/``), add three lines in one ``modify`` (``expected_rev``),
commit (``POST …/commit/`` with an idempotency key). Each request is a new
connection (gunicorn's sync workers close after every response).

Two channels, measured on the same server in the same run:

* ``counter`` — the demo's counter channel **with its checks**: each modify
  enqueues the stock check (``stock.hold``, run after the request's commit:
  ``DISPATCH_ON_COMMIT``), the commit requires it fresh and enqueues
  ``stock.commit`` and ``refs.assign_ticket`` (the ticket number is dispatched
  in the request too). Two of the three lines are stock-tracked. The target
  of issue 19: ≥ 100 orders/s with 8 clients, p99 ≤ 100 ms.
* ``bench`` — a channel with no checks and no post-commit directives: the
  kernel and HTTP alone, the reference the counter is compared to.

For each: one client thread for ``BENCH_SECONDS / 2`` (the latency of each
call without queueing), then ``BENCH_CLIENTS`` threads (the throughput, with
the latency a client sees when the workers are busy). Each prints committed
orders per second, the p50 / p99 of each call in milliseconds, how many
orders failed (none should), and the ratio to the check-less channel; the
machine reference (``sum(range(10**6))``, best of 5) is printed before and
after, since the machine is shared.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import statistics
import subprocess
import tempfile
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omniman_api_bench")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WARMUP_SECONDS = 3.0
WORKERS = 2
THREADS = int(os.environ.get("BENCH_THREADS", "1"))  # > 1: gunicorn's gthread worker (GUNICORN_THREADS in production)
HOST = "127.0.0.1"
EMPTY_CONFIG = Path(tempfile.gettempdir()) / "omniman-bench-api-gunicorn.conf.py"


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit(f"bench_api needs PostgreSQL (DATABASE_URL=postgres://…); this is {connection.vendor}.")
    run_on_scratch_database(run)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


# The three lines of each order, per channel: the counter's are the demo's products (two stock-tracked).
LINES = {
    "counter": [("PDQ", 2), ("CRO", 1), ("ESP", 1)],
    "bench": [("PDQ", 2), ("CRO", 1), ("ESP", 1)],
}
TARGET_ORDERS_PER_SECOND = 100.0
TARGET_P99_MS = 100.0


def setup() -> str:
    from decimal import Decimal

    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from omniman.contrib.stock.models import StockLevel
    from omniman.models import Channel, Session

    call_command("seed_demo", "--no-users", verbosity=0, stdout=open(os.devnull, "w"))
    Session.objects.all().delete()  # the demo's open baskets: not part of the benchmark
    StockLevel.objects.filter(track=True).update(on_hand=Decimal(10**8))
    Channel.objects.create(code="bench", name="Bench (no checks)")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    user = User.objects.create_user("bench-manager")
    user.groups.add(Group.objects.get_or_create(name="manager")[0])
    return Token.objects.create(user=user).key


def start_gunicorn(port: int) -> subprocess.Popen:
    EMPTY_CONFIG.write_text("# bench_api.py: gunicorn's defaults, the command line's settings\n")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        # Plain http on the loopback: no redirect to https (DEBUG is off).
        "SECURE_SSL_REDIRECT": "0",
        "CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
    }
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "config.wsgi:application",
        # Not the repository's gunicorn.conf.py (an access log line per request, worker recycling): the defaults.
        "--config", str(EMPTY_CONFIG),
        "--workers", str(WORKERS),
        "--threads", str(THREADS),
        "--bind", f"{HOST}:{port}",
        "--log-level", "warning",
    ]
    process = subprocess.Popen(command, cwd=REPO, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"gunicorn exited with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    sys.exit("gunicorn did not start within 30 s")


class Client:
    def __init__(self, port: int, token: str):
        self.port = port
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def post(self, path: str, body: dict) -> tuple[float, int, dict]:
        start = time.perf_counter()
        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            conn.request("POST", path, json.dumps(body), self.headers)
            response = conn.getresponse()
            payload = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        return (time.perf_counter() - start) * 1000, response.status, payload


FAILURES: list[str] = []


def place_order(client: Client, channel: str) -> dict[str, float] | None:
    """Open, add three lines, commit; the milliseconds of each call, or ``None`` if one failed."""
    times = {}
    ms, status, body = client.post("/api/sessions/", {"channel_code": channel})
    times["open"] = ms
    if status != 201:
        FAILURES.append(f"open {status} {str(body)[:200]}")
        return None
    key = body["session_key"]
    ops = [{"op": "add_line", "sku": sku, "qty": qty, "unit_price_q": 500} for sku, qty in LINES[channel]]
    ms, status, body = client.post(
        f"/api/sessions/{key}/modify/", {"channel_code": channel, "ops": ops, "expected_rev": body["rev"]}
    )
    times["modify"] = ms
    if status != 200:
        FAILURES.append(f"modify {status} {str(body)[:200]}")
        return None
    ms, status, body = client.post(
        f"/api/sessions/{key}/commit/", {"channel_code": channel, "idempotency_key": uuid.uuid4().hex}
    )
    times["commit"] = ms
    if status != 201:
        FAILURES.append(f"commit {status} {str(body)[:200]}")
        return None
    return times


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(client: Client, channel: str, clients: int, seconds: float) -> tuple[list[dict[str, float]], int]:
    """Place orders from ``clients`` threads for ``seconds`` after the warm-up: the timings, the failures."""
    results: list[dict[str, float]] = []
    failures = 0
    lock = threading.Lock()
    measure_from = time.monotonic() + WARMUP_SECONDS
    stop_at = measure_from + seconds

    def worker() -> None:
        nonlocal failures
        while True:
            began = time.monotonic()
            if began >= stop_at:
                return
            times = place_order(client, channel)
            with lock:
                if began >= measure_from and time.monotonic() <= stop_at:
                    if times is None:
                        failures += 1
                    else:
                        results.append(times)

    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(worker)
    return results, failures


def report(title: str, results: list[dict[str, float]], failures: int, seconds: float) -> dict[str, float]:
    print(f"\n{title}")
    print(f"  committed orders: {len(results)} in {seconds:.0f} s; failed: {failures}")
    rate = len(results) / seconds
    print(f"  throughput: {rate:.1f} committed orders/s (open + modify + commit, 3 requests each)")
    figures = {"rate": rate, "p99": 0.0}
    for call in ("open", "modify", "commit"):
        samples = [r[call] for r in results] or [0.0]
        p99 = percentile(samples, 0.99)
        figures[call] = statistics.median(samples)
        figures["p99"] = max(figures["p99"], p99)
        print(f"  {call:<7} p50 {statistics.median(samples):6.1f} ms   p99 {p99:6.1f} ms   n={len(samples)}")
    return figures


def reference_ms() -> float:
    import timeit

    return min(timeit.repeat("sum(range(10**6))", number=5, repeat=5)) / 5 * 1000


def run() -> None:
    token = setup()
    port = free_port()
    server = start_gunicorn(port)
    before = reference_ms()
    figures = {}
    try:
        client = Client(port, token)
        for channel in ("counter", "bench"):
            single = measure(client, channel, 1, SECONDS / 2)
            loaded = measure(client, channel, CLIENTS, SECONDS)
            figures[channel] = (single, loaded)
    finally:
        server.terminate()
        server.wait(timeout=30)
    after = reference_ms()
    kind = f"gthread workers × {THREADS} threads" if THREADS > 1 else "sync workers"
    print(f"database: PostgreSQL; gunicorn {WORKERS} {kind} (config.wsgi, DEBUG off); load generator on the same machine")
    print(f"machine reference (sum(range(10**6)), best of 5): {before:.1f} ms before, {after:.1f} ms after")
    summary = {}
    for channel, label in (("counter", "demo counter channel, with its stock check"), ("bench", "check-less channel (reference)")):
        single, loaded = figures[channel]
        report(f"{channel} ({label}) — one client ({SECONDS / 2:.0f} s): latency without queueing", *single, SECONDS / 2)
        summary[channel] = report(f"{channel} ({label}) — {CLIENTS} client threads ({SECONDS:.0f} s): throughput", *loaded, SECONDS)
    counter, bench = summary["counter"], summary["bench"]
    ratio = counter["rate"] / bench["rate"] if bench["rate"] else 0.0
    print(f"\ncounter / check-less: {ratio:.2f}x the throughput")
    ok = counter["rate"] >= TARGET_ORDERS_PER_SECOND and counter["p99"] <= TARGET_P99_MS
    print(
        f"target (counter, {CLIENTS} clients): >= {TARGET_ORDERS_PER_SECOND:.0f} orders/s and every call's p99 <= "
        f"{TARGET_P99_MS:.0f} ms: {counter['rate']:.1f} orders/s, worst p99 {counter['p99']:.1f} ms: {'PASS' if ok else 'FAIL'}"
    )
    if FAILURES:
        print(f"first failures ({len(FAILURES)}):", *FAILURES[:5], sep="\n  ")


if __name__ == "__main__":
    main()
