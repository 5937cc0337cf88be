"""API benchmark: committed orders per second through the REST API, and the latency of a modify call.

Run against PostgreSQL (it creates and drops its own test database, as the
other benchmarks do):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/omniman_api_bench .venv/bin/python benchmarks/bench_api.py

It migrates a scratch database, seeds the demo's catalog and channels
(``seed_demo --no-users``, stock levels raised so that no order runs short),
creates a ``manager`` with a token, then starts gunicorn (``config.wsgi``, 2 sync
workers, DEBUG off, persistent database connections, no access log) on a free
port against that database. The load generator (``benchmarks/loadgen.py``) is
one asyncio event loop in this process running ``BENCH_CLIENTS`` clients
(default 8), each placing orders back to back over HTTP for ``BENCH_SECONDS``
(default 20) after a 3 s warm-up: open a session (``POST /api/sessions/``),
add three lines in one ``modify`` (``expected_rev``), commit (``POST
…/commit/`` with an idempotency key). Requests are bytes built once per
order; of each answer it reads the status line and ``Content-Length``, takes
the session key and ``rev`` from the open's body and checks the commit's
``order_ref``. Each request is a new TCP connection, as a browser or an
integrator without keep-alive would make (gunicorn's sync workers close after
every response). ``BENCH_THREADS=N`` runs gunicorn's gthread worker (2 workers
× N threads, ``GUNICORN_THREADS`` in production) and ``BENCH_KEEPALIVE=1`` then
keeps each client's connection open between requests.

Two channels, measured on the same server in the same run:

* ``counter`` — the demo's counter channel **with its checks**: each modify
  enqueues the stock check (``stock.hold``, run after the request's commit:
  ``DISPATCH_ON_COMMIT``), the commit requires it fresh and enqueues
  ``stock.commit`` and ``refs.assign_ticket`` (the ticket number is dispatched
  in the request too). Two of the three lines are stock-tracked. The target
  of issue 19: ≥ 100 orders/s with 8 clients, p99 ≤ 100 ms.
* ``bench`` — a channel with no checks and no post-commit directives: the
  kernel and HTTP alone, the reference the counter is compared to.

For each: one client for ``BENCH_SECONDS / 2`` (the latency of each
call without queueing), then ``BENCH_CLIENTS`` clients (the throughput, with
the latency a client sees when the workers are busy). Each prints committed
orders per second, the p50 / p99 of each call in milliseconds, how many
orders failed (none should), and the ratio to the check-less channel; the
machine reference (``sum(range(10**6))``, best of 5) is printed before and
after, since the machine is shared.

And for each phase, **where the CPU went**, in milliseconds per committed
order (user + system time from ``/proc``, read at the start and the end of the
timed window): the load generator (this process), gunicorn (master and
workers), the PostgreSQL backends connected to the scratch database, the
server's shared processes (WAL writer, checkpointer…), the rest of the
machine ("other": the kernel's interrupts, and whatever else runs — on a
shared machine, other people's work), the machine total from ``/proc/stat``,
and the cores' idle share. With 2 cores, 100 orders/s needs a machine total
≤ 20 ms per order; if the cores sit idle while the rate stays low, the limit
is latency or locks, not CPU. The one-client phase also prints what its
latency allows: a sync worker places orders one after another, waiting for
PostgreSQL (and the WAL flush of each commit) in between, so 2 sync workers
place at most 2 × 1000 / (one order's milliseconds) orders per second however
idle the cores are.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omniman_api_bench")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from benchmarks.loadgen import Breakdown, Connection, CpuMeter, Snapshot, interpreter, post, wait_until_listening  # noqa: E402
from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WARMUP_SECONDS = 3.0
WORKERS = 2
THREADS = int(os.environ.get("BENCH_THREADS", "1"))  # > 1: gunicorn's gthread worker (GUNICORN_THREADS in production)
KEEPALIVE = os.environ.get("BENCH_KEEPALIVE", "") not in {"", "0"}  # reuse connections (the gthread worker keeps them)
HOST = "127.0.0.1"
EMPTY_CONFIG = Path(tempfile.gettempdir()) / "omniman-bench-api-gunicorn.conf.py"


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit(f"bench_api needs PostgreSQL (DATABASE_URL=postgres://…); this is {connection.vendor}.")
    if KEEPALIVE and THREADS <= 1:
        sys.exit("BENCH_KEEPALIVE needs BENCH_THREADS > 1: gunicorn's sync worker closes every connection.")
    run_on_scratch_database(run)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def maintenance_dsn() -> str:
    """The same server's ``postgres`` database: the CPU meter's connection stays off the benchmark's database."""
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/postgres"


# The three lines of each order, per channel: the counter's are the demo's products (two stock-tracked).
LINES = {
    "counter": [("PDQ", 2), ("CRO", 1), ("ESP", 1)],
    "bench": [("PDQ", 2), ("CRO", 1), ("ESP", 1)],
}
TARGET_ORDERS_PER_SECOND = 100.0
ANALYZE_SECONDS = float(os.environ.get("BENCH_ANALYZE_SECONDS", "5"))
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
    return wait_until_listening(process, HOST, port)


SESSION_KEY = re.compile(rb'"session_key":\s*"([^"]+)"')
REV = re.compile(rb'"rev":\s*(\d+)')  # the session's own rev comes before its checks' (the serializer's field order)
ORDER_REF = re.compile(rb'"order_ref":\s*"[^"]+"')


class Orders:
    """The requests of one order on one channel, as bytes: only the session key, rev and idempotency key vary."""

    def __init__(self, port: int, token: str, channel: str):
        self.port = port
        self.channel = channel
        self.headers = (
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            + ("" if KEEPALIVE else "Connection: close\r\n")
        ).encode()
        self.open = post(HOST, port, "/api/sessions/", self.headers, json.dumps({"channel_code": channel}).encode())
        ops = [{"op": "add_line", "sku": sku, "qty": qty, "unit_price_q": 500} for sku, qty in LINES[channel]]
        self.modify_ops = json.dumps({"channel_code": channel, "ops": ops})[:-1]  # closed with the expected_rev

    def modify(self, key: str, rev: int) -> bytes:
        body = f'{self.modify_ops}, "expected_rev": {rev}}}'.encode()
        return post(HOST, self.port, f"/api/sessions/{key}/modify/", self.headers, body)

    def commit(self, key: str) -> bytes:
        body = f'{{"channel_code": "{self.channel}", "idempotency_key": "{uuid.uuid4().hex}"}}'.encode()
        return post(HOST, self.port, f"/api/sessions/{key}/commit/", self.headers, body)


FAILURES: list[str] = []


async def place_order(conn: Connection, orders: Orders) -> dict[str, float] | None:
    """Open, add three lines, commit; the milliseconds of each call, or ``None`` if one failed."""
    times = {}
    try:
        ms, status, body = await conn.request(orders.open)
        times["open"] = ms
        key, rev = SESSION_KEY.search(body), REV.search(body)
        if status != 201 or not key or not rev:
            FAILURES.append(f"open {status} {body[:200]!r}")
            return None
        key = key.group(1).decode()
        ms, status, body = await conn.request(orders.modify(key, int(rev.group(1))))
        times["modify"] = ms
        if status != 200:
            FAILURES.append(f"modify {status} {body[:200]!r}")
            return None
        ms, status, body = await conn.request(orders.commit(key))
        times["commit"] = ms
        if status != 201 or not ORDER_REF.search(body):
            FAILURES.append(f"commit {status} {body[:200]!r}")
            return None
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        FAILURES.append(f"{('open', 'modify', 'commit')[len(times)]} {type(exc).__name__}: {exc}")
        return None
    return times


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def measure(
    orders: Orders, meter: CpuMeter, clients: int, seconds: float
) -> tuple[list[dict[str, float]], int, Breakdown]:
    """Place orders from ``clients`` clients for ``seconds`` after the warm-up: timings, failures, CPU per order.

    An order is timed if it began after the warm-up and ended in the window; the
    CPU is divided by the orders whose commit was answered in the window.
    """
    results: list[dict[str, float]] = []
    failures = 0
    committed_in_window = 0
    measure_from = time.monotonic() + WARMUP_SECONDS
    stop_at = measure_from + seconds

    async def client() -> None:
        nonlocal failures, committed_in_window
        conn = Connection(HOST, orders.port, KEEPALIVE)
        try:
            while True:
                began = time.monotonic()
                if began >= stop_at:
                    return
                times = await place_order(conn, orders)
                ended = time.monotonic()
                if times is not None and measure_from <= ended <= stop_at:
                    committed_in_window += 1
                if began >= measure_from and ended <= stop_at:
                    if times is None:
                        failures += 1
                    else:
                        results.append(times)
        finally:
            conn.close()

    async def cpu() -> tuple[Snapshot, Snapshot]:
        await asyncio.sleep(measure_from - time.monotonic())
        before = meter.snapshot()
        await asyncio.sleep(stop_at - time.monotonic())
        after = meter.snapshot()
        return before, after

    *_, (before, after) = await asyncio.gather(*(client() for _ in range(clients)), cpu())
    return results, failures, CpuMeter.breakdown(before, after, committed_in_window)


def report(
    title: str, results: list[dict[str, float]], failures: int, cpu: Breakdown, seconds: float, single: bool = False
) -> dict[str, float]:
    print(f"\n{title}")
    print(f"  committed orders: {len(results)} in {seconds:.0f} s; failed: {failures}")
    rate = len(results) / seconds
    print(f"  throughput: {rate:.1f} committed orders/s (open + modify + commit, 3 requests each)")
    figures = {"rate": rate, "p99": 0.0, "cpu": cpu.total}
    for call in ("open", "modify", "commit"):
        samples = [r[call] for r in results] or [0.0]
        p99 = percentile(samples, 0.99)
        figures[call] = statistics.median(samples)
        figures["p99"] = max(figures["p99"], p99)
        print(f"  {call:<7} p50 {statistics.median(samples):6.1f} ms   p99 {p99:6.1f} ms   n={len(samples)}")
    print(cpu.line())
    if single and results:
        # One client: each order's wall time in the server, without queueing. Each sync worker places
        # orders one after another, waiting for PostgreSQL (and its WAL flush at each commit) in between.
        order_ms = statistics.fmean(sum(r.values()) for r in results)
        in_flight = min(CLIENTS, WORKERS * THREADS)
        print(
            f"  one order takes {order_ms:.1f} ms end to end: {in_flight} in flight at a time "
            f"({WORKERS} workers × {THREADS} thread{'s' if THREADS > 1 else ''}) place at most "
            f"{in_flight * 1000 / order_ms:.0f} orders/s at this latency, whatever the CPU"
        )
    return figures


def reference_ms() -> float:
    import timeit

    return min(timeit.repeat("sum(range(10**6))", number=5, repeat=5)) / 5 * 1000


class AutoAnalyze(threading.Thread):
    """What autovacuum's autoanalyze does on a live server, on this one where it is off: ``ANALYZE`` every
    ``ANALYZE_SECONDS`` while the benchmark runs. The tables start empty and grow by thousands of rows a minute;
    without fresh statistics PostgreSQL keeps the plans it made for empty tables (prepared statements' generic
    plans, foreign-key checks) — sequential scans that grow with the run. Its backend is one of the benchmark
    database's: its CPU counts in PostgreSQL's share."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stopped = threading.Event()
        self.runs = 0

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.stopped.wait(ANALYZE_SECONDS):
                conn.execute("ANALYZE")
                self.runs += 1

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def run() -> None:
    token = setup()
    port = free_port()
    server = start_gunicorn(port)
    analyze = AutoAnalyze(database_url())
    analyze.start()
    load = os.getloadavg()
    before = reference_ms()
    figures = {}
    meter = CpuMeter(server.pid, maintenance_dsn(), connection.settings_dict["NAME"])
    try:
        for channel in ("counter", "bench"):
            orders = Orders(port, token, channel)
            single = asyncio.run(measure(orders, meter, 1, SECONDS / 2))
            loaded = asyncio.run(measure(orders, meter, CLIENTS, SECONDS))
            figures[channel] = (single, loaded)
    finally:
        analyze.stop()
        meter.close()
        server.terminate()
        server.wait(timeout=30)
    after = reference_ms()
    kind = f"gthread workers × {THREADS} threads" if THREADS > 1 else "sync workers"
    connections = "kept alive per client" if KEEPALIVE else "a new TCP connection per request"
    print(
        f"database: PostgreSQL; gunicorn {WORKERS} {kind} (config.wsgi, DEBUG off, no access log); "
        f"load generator: asyncio, {connections}, on the same machine"
    )
    print(f"interpreter: {interpreter()}")
    print(f"machine reference (sum(range(10**6)), best of 5): {before:.1f} ms before, {after:.1f} ms after")
    print(f"ANALYZE every {ANALYZE_SECONDS:.0f} s during the run, as autovacuum would ({analyze.runs} runs)")
    print(
        "load average (1, 5, 15 min): "
        + " ".join(f"{v:.1f}" for v in load)
        + " before, "
        + " ".join(f"{v:.1f}" for v in os.getloadavg())
        + " after"
    )
    summary = {}
    for channel, label in (("counter", "demo counter channel, with its stock check"), ("bench", "check-less channel (reference)")):
        single, loaded = figures[channel]
        report(f"{channel} ({label}) — one client ({SECONDS / 2:.0f} s): latency without queueing", *single, SECONDS / 2, single=True)
        summary[channel] = report(f"{channel} ({label}) — {CLIENTS} clients ({SECONDS:.0f} s): throughput", *loaded, SECONDS)
    counter, bench = summary["counter"], summary["bench"]
    ratio = counter["rate"] / bench["rate"] if bench["rate"] else 0.0
    print(f"\ncounter / check-less: {ratio:.2f}x the throughput")
    ok = counter["rate"] >= TARGET_ORDERS_PER_SECOND and counter["p99"] <= TARGET_P99_MS
    print(
        f"target (counter, {CLIENTS} clients): >= {TARGET_ORDERS_PER_SECOND:.0f} orders/s and every call's p99 <= "
        f"{TARGET_P99_MS:.0f} ms: {counter['rate']:.1f} orders/s, worst p99 {counter['p99']:.1f} ms: {'PASS' if ok else 'FAIL'}"
    )
    cores = os.cpu_count() or 1
    print(
        f"CPU budget for the target on {cores} cores: {cores * 1000 / TARGET_ORDERS_PER_SECOND:.0f} ms per order for the "
        f"whole machine; the counter run spent {counter['cpu']:.1f} ms"
    )
    if FAILURES:
        print(f"first failures ({len(FAILURES)}):", *FAILURES[:5], sep="\n  ")


if __name__ == "__main__":
    main()
