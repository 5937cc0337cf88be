"""Gunicorn's own CPU per request, without Django: which worker settings cost least on this machine.

    .venv/bin/python benchmarks/bench_gunicorn.py

Runs gunicorn (2 workers, on a free port) with :func:`application` — a WSGI
app that reads the request body and answers 1.5 kB of JSON, about what an
API call of ``bench_api.py`` sends and receives, and does nothing else — in
each of these settings, one after the other:

* ``sync``: the sync worker (a new connection per request: it closes after
  each response), heartbeat file in the default temporary directory;
* ``sync /dev/shm``: the same, ``--worker-tmp-dir /dev/shm`` (the production
  ``gunicorn.conf.py``'s setting);
* ``sync access log``: the same, plus an access log line per request
  (``--access-logfile`` to ``/dev/null``, the production format);
* ``gthread ×4``: the gthread worker, 4 threads per worker, a new
  connection per request;
* ``gthread ×4 keep-alive``: the same, each client keeping its connection.

For each, ``BENCH_CLIENTS`` asyncio clients (default 8, ``benchmarks/loadgen.py``)
send requests back to back for ``BENCH_SECONDS`` (default 8) after a 2 s
warm-up, and it prints requests per second, the p50 / p99 latency and the CPU
milliseconds per request of the client, gunicorn (master and workers) and
the rest of the machine ("irq": its interrupts, part of "other"; see ``bench_api.py``: the same accounting). The app
costs a few microseconds, so gunicorn's column is its HTTP handling: add it,
three times, to the Django CPU ``profile_api.py`` measures to get an order's
cost in the server.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.loadgen import Connection, CpuMeter, post, wait_until_listening  # noqa: E402

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
WARMUP_SECONDS = 2.0
HOST = "127.0.0.1"
ANSWER = b'{"session_key": "' + b"k" * 32 + b'", "rev": 1, "items": [' + b", ".join([b'{"sku": "PDQ", "qty": 2, "name": "' + b"x" * 100 + b'"}'] * 10) + b"]}"
EMPTY_CONFIG = Path(tempfile.gettempdir()) / "omniman-bench-gunicorn.conf.py"
ACCESS_FORMAT = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'  # gunicorn.conf.py's

SETTINGS = [
    ("sync", [], False),
    ("sync /dev/shm", ["--worker-tmp-dir", "/dev/shm"], False),
    ("sync access log", ["--access-logfile", os.devnull, "--access-logformat", ACCESS_FORMAT], False),
    ("gthread ×4", ["--threads", "4"], False),
    ("gthread ×4 keep-alive", ["--threads", "4"], True),
]


def application(environ, start_response):
    """Read the body, answer the same JSON every time."""
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(ANSWER)))])
    return [ANSWER]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start(port: int, options: list[str]) -> subprocess.Popen:
    EMPTY_CONFIG.write_text("# bench_gunicorn.py: gunicorn's defaults, the command line's settings\n")
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "benchmarks.bench_gunicorn:application",
        "--config", str(EMPTY_CONFIG),
        "--workers", "2",
        "--bind", f"{HOST}:{port}",
        "--log-level", "warning",
        *options,
    ]
    process = subprocess.Popen(command, cwd=REPO)
    return wait_until_listening(process, HOST, port)


async def measure(port: int, keepalive: bool, meter: CpuMeter):
    headers = b"Content-Type: application/json\r\n" + (b"" if keepalive else b"Connection: close\r\n")
    request = post(HOST, port, "/api/sessions/", headers, b'{"channel_code": "bench"}')
    samples: list[float] = []
    failures = 0
    measure_from = time.monotonic() + WARMUP_SECONDS
    stop_at = measure_from + SECONDS

    async def client() -> None:
        nonlocal failures
        conn = Connection(HOST, port, keepalive)
        try:
            while (began := time.monotonic()) < stop_at:
                try:
                    ms, status, _ = await conn.request(request)
                except (OSError, asyncio.IncompleteReadError):
                    conn.close()
                    status, ms = 0, 0.0
                ended = time.monotonic()
                if measure_from <= ended <= stop_at:
                    if status == 201:
                        samples.append(ms)
                    elif began >= measure_from:
                        failures += 1
        finally:
            conn.close()

    async def cpu():
        await asyncio.sleep(measure_from - time.monotonic())
        before = meter.snapshot()
        await asyncio.sleep(stop_at - time.monotonic())
        return before, meter.snapshot()

    *_, (before, after) = await asyncio.gather(*(client() for _ in range(CLIENTS)), cpu())
    return samples, failures, CpuMeter.breakdown(before, after, len(samples))


def main() -> None:
    load = os.getloadavg()
    rows = []
    for name, options, keepalive in SETTINGS:
        port = free_port()
        server = start(port, options)
        meter = CpuMeter(server.pid)
        try:
            rows.append((name, *asyncio.run(measure(port, keepalive, meter))))
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"gunicorn, 2 workers, a WSGI app that does nothing; {CLIENTS} asyncio clients, {SECONDS:.0f} s each")
    print("load average before: " + " ".join(f"{v:.1f}" for v in load) + "; after: " + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    print(f"\n{'':24} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7}   CPU ms per request: {'client':>6} {'gunicorn':>8} {'other':>6} {'irq':>6} {'total':>6}  idle")
    for name, samples, failures, cpu in rows:
        ordered = sorted(samples) or [0.0]
        print(
            f"{name:24} {len(samples) / SECONDS:7.0f} {statistics.median(ordered):7.2f} "
            f"{ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]:7.2f}   {'':20}"
            f"{cpu.client:6.3f} {cpu.server:8.3f} {cpu.other:6.3f} {cpu.interrupts:6.3f} {cpu.total:6.3f}  {cpu.idle_share * 100:3.0f} %"
            + (f"  failed: {failures}" if failures else "")
        )


if __name__ == "__main__":
    main()
