"""API benchmark: committed orders per second through the REST API, and the latency of a modify call.

Run against PostgreSQL (it creates and drops its own test database, as the
other benchmarks do):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/omniman_api_bench .venv/bin/python benchmarks/bench_api.py

It migrates a scratch database, creates a channel without checks and a
``manager`` with a token, then starts gunicorn (``config.wsgi``, 2 sync
workers, DEBUG off, persistent database connections) on a free port against
that database. The load generator is a pool of ``BENCH_CLIENTS`` Python threads
(default 8) on the same machine, each placing orders over HTTP for
``BENCH_SECONDS`` (default 20) after a 3 s warm-up: open a session
(``POST /api/sessions/``), add a line (``POST …/modify/`` with ``expected_rev``),
commit (``POST …/commit/`` with an idempotency key). Each request is a new
connection (gunicorn's sync workers close after every response).

Two runs on the same server: one client thread for ``BENCH_SECONDS / 2``
(the latency of each call without queueing), then ``BENCH_CLIENTS`` threads
(the throughput, with the latency a client sees when the workers are busy).
Each prints committed orders per second, the p50 / p99 of each call in
milliseconds, and how many orders failed (none should).
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


def setup() -> str:
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from omniman.models import Channel

    Channel.objects.create(code="bench", name="Bench")
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


def place_order(client: Client) -> dict[str, float] | None:
    """Open, add a line, commit; the milliseconds of each call, or ``None`` if one failed."""
    times = {}
    ms, status, body = client.post("/api/sessions/", {"channel_code": "bench"})
    times["open"] = ms
    if status != 201:
        return None
    key = body["session_key"]
    line = {"op": "add_line", "sku": "ESP", "name": "Espresso", "qty": 2, "unit_price_q": 450}
    ms, status, body = client.post(
        f"/api/sessions/{key}/modify/", {"channel_code": "bench", "ops": [line], "expected_rev": body["rev"]}
    )
    times["modify"] = ms
    if status != 200:
        return None
    ms, status, _ = client.post(
        f"/api/sessions/{key}/commit/", {"channel_code": "bench", "idempotency_key": uuid.uuid4().hex}
    )
    times["commit"] = ms
    return times if status == 201 else None


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(client: Client, clients: int, seconds: float) -> tuple[list[dict[str, float]], int]:
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
            times = place_order(client)
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


def report(title: str, results: list[dict[str, float]], failures: int, seconds: float) -> None:
    print(f"\n{title}")
    print(f"  committed orders: {len(results)} in {seconds:.0f} s; failed: {failures}")
    print(f"  throughput: {len(results) / seconds:.1f} committed orders/s (open + modify + commit, 3 requests each)")
    for call in ("open", "modify", "commit"):
        samples = [r[call] for r in results]
        print(
            f"  {call:<7} p50 {statistics.median(samples):6.1f} ms   p99 {percentile(samples, 0.99):6.1f} ms   "
            f"n={len(samples)}"
        )


def run() -> None:
    token = setup()
    port = free_port()
    server = start_gunicorn(port)
    try:
        client = Client(port, token)
        single = measure(client, 1, SECONDS / 2)
        loaded = measure(client, CLIENTS, SECONDS)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"database: PostgreSQL; gunicorn {WORKERS} sync workers (config.wsgi, DEBUG off); load generator on the same machine")
    report(f"one client ({SECONDS / 2:.0f} s): latency without queueing", *single, SECONDS / 2)
    report(f"{CLIENTS} client threads ({SECONDS:.0f} s): throughput", *loaded, SECONDS)


if __name__ == "__main__":
    main()
