"""The HTTP load generator and the CPU accounting of ``bench_api.py`` and ``bench_gunicorn.py``.

No Django here: the load generator is one asyncio event loop in one thread
(``asyncio.open_connection``), so the client's share of the two cores is a
small, measured one. Requests are bytes built once per order (one ``POST``
with ``Content-Length``); a response is read as far as the benchmark needs —
the status line, ``Content-Length`` and ``Connection`` headers, then the body's
bytes, which the caller searches for the one or two fields it needs instead of
parsing the JSON.

:class:`CpuMeter` reads, at the start and the end of a timed phase, the CPU
time (user + system, from ``/proc``) of this process, of a gunicorn master and
its workers, of the PostgreSQL backends connected to one database and of
PostgreSQL's shared processes (checkpointer, WAL writer, …), and the whole
machine's busy and idle time from ``/proc/stat``; :meth:`CpuMeter.breakdown`
divides each by the orders (or requests) done in between.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


class Connection:
    """One client's connection to the server: a new TCP connection per request unless ``keepalive``."""

    def __init__(self, host: str, port: int, keepalive: bool):
        self.host = host
        self.port = port
        self.keepalive = keepalive
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> tuple[float, int, bytes]:
        """Send one request (all its bytes); the milliseconds to the last byte of the answer, its status and body."""
        start = time.perf_counter()
        reused = self.writer is not None
        try:
            status, body = await self._exchange(data)
        except (ConnectionError, asyncio.IncompleteReadError):
            if not reused:
                raise
            # The server closed an idle kept-alive connection between two requests: once more, on a new one.
            self.close()
            status, body = await self._exchange(data)
        return (time.perf_counter() - start) * 1000, status, body

    async def _exchange(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            body = await self.reader.readexactly(int(lower[at + 17 : lower.index(b"\r\n", at + 2)]))
        else:  # no length: the body runs to the end of the connection
            body = await self.reader.read()
        if not self.keepalive or b"\r\nconnection: close" in lower or at < 0:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def post(host: str, port: int, path: str, headers: bytes, body: bytes) -> bytes:
    """A whole ``POST`` request as bytes; ``headers`` are the fixed ones, each ending in CRLF."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n".encode() + headers + b"\r\n" + body
    )


# -- CPU accounting ------------------------------------------------------------------------------


def wait_until_listening(process, host: str, port: int, seconds: float = 30):
    """``process`` (a server just started) once it accepts connections on ``port``; exits if it dies or is too slow."""
    import socket
    import sys

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    sys.exit(f"the server did not start within {seconds:.0f} s")


def interpreter() -> str:
    """The Python that runs the server (this one: the benchmarks start gunicorn from this venv), and how it was built.

    A ``--enable-shared`` build without ``--enable-optimizations`` (pyenv's default, this machine's ``python3``)
    runs Django about a fifth slower than a PGO/LTO build with libpython linked in (the production image's
    ``python:3.11-slim``; Debian's ``/usr/bin/python3.11``): the figures depend on it, so each run names it.
    """
    import sysconfig

    args = sysconfig.get_config_var("CONFIG_ARGS") or ""
    flags = [flag for flag in ("--enable-optimizations", "--with-lto") if flag in args]
    with open("/proc/self/maps") as maps:
        shared = "libpython" in maps.read()
    build = "libpython shared" if shared else "libpython linked in"
    return f"CPython {sys.version.split()[0]} ({sys.executable}; {build}; {' '.join(flags) or 'no --enable-optimizations'})"


def process_cpu(pid: int | str, children: bool = False) -> float:
    """User + system CPU seconds of a process (and of its reaped children), 0.0 if it is gone or unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / TICK


def child_pids(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # kernels without CONFIG_PROC_CHILDREN: scan
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry.name))
                except (OSError, IndexError):
                    pass
        return found


def tree_cpu(pid: int) -> float:
    """CPU of a process and its live children, each with its reaped children (a gunicorn master and its workers)."""
    return process_cpu(pid, children=True) + sum(process_cpu(child, children=True) for child in child_pids(pid))


def machine_ticks() -> tuple[int, int, int, int]:
    """The whole machine's CPU ticks since boot, all cores, from ``/proc/stat``: busy, interrupts, stolen, total.

    Busy is user + nice + system + irq + softirq (the time the kernel spends
    in interrupts, the loopback's packet handling among them, is charged to
    no process); stolen is time the hypervisor gave to others (not busy, not
    idle); total counts idle and iowait too.
    """
    user, nice, system, idle, iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return user + nice + system + irq + softirq, irq + softirq, steal, user + nice + system + idle + iowait + irq + softirq + steal


@dataclass
class Snapshot:
    wall: float
    client: float
    server: float
    backends: dict[int, float]
    shared: dict[int, float]
    busy: int
    interrupts: int
    stolen: int
    total: int


@dataclass
class Breakdown:
    """CPU milliseconds per unit of work (an order, a request) over one phase, and the machine's idle share."""

    units: int
    seconds: float
    client: float
    server: float
    postgres: float
    postgres_shared: float
    other: float
    interrupts: float
    total: float
    idle_share: float
    stolen_share: float
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    def line(self, unit: str = "order", server: str = "gunicorn") -> str:
        capacity = self.cores * 1000 / self.total if self.total else 0.0
        return (
            f"  CPU per {unit} (ms, {self.units} {unit}s in {self.seconds:.1f} s): client {self.client:.1f}, "
            f"{server} {self.server:.1f}, PostgreSQL {self.postgres:.1f} (+ {self.postgres_shared:.1f} shared processes), "
            f"other {self.other:.1f} (of which interrupts {self.interrupts:.1f}); machine total {self.total:.1f}\n"
            f"  machine idle {self.idle_share * 100:.0f} % of {self.cores} cores"
            + (f" (stolen by the hypervisor {self.stolen_share * 100:.0f} %)" if self.stolen_share >= 0.005 else "")
            + f"; at {self.total:.1f} ms per {unit} the cores can do at most {capacity:.0f} {unit}s/s"
        )


class CpuMeter:
    """Who spent the CPU during a phase: this process, a server process tree, PostgreSQL, the rest of the machine.

    ``pg_dsn``/``database``: a psycopg connection string (to any database but
    the measured one) and the name of the database whose backends serve the
    benchmark; without them PostgreSQL's share stays in "other". PostgreSQL's
    shared processes (no database: checkpointer, WAL writer, background writer,
    autovacuum launcher) serve every database on the server — on a shared
    machine, not only ours.
    """

    def __init__(self, server_pid: int | None, pg_dsn: str | None = None, database: str | None = None):
        self.server_pid = server_pid
        self.database = database
        self.pg = None
        if pg_dsn and database:
            import psycopg

            self.pg = psycopg.connect(pg_dsn, autocommit=True)

    def close(self) -> None:
        if self.pg is not None:
            self.pg.close()
            self.pg = None

    def _postgres(self) -> tuple[dict[int, float], dict[int, float]]:
        if self.pg is None:
            return {}, {}
        rows = self.pg.execute(
            "SELECT pid, datname IS NULL FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND (datname = %s OR datname IS NULL)",
            [self.database],
        ).fetchall()
        backends = {pid: process_cpu(pid) for pid, shared in rows if not shared}
        shared = {pid: process_cpu(pid) for pid, shared in rows if shared}
        return backends, shared

    def snapshot(self) -> Snapshot:
        backends, shared = self._postgres()
        busy, interrupts, stolen, total = machine_ticks()
        return Snapshot(
            wall=time.monotonic(),
            client=time.process_time(),
            server=tree_cpu(self.server_pid) if self.server_pid else 0.0,
            backends=backends,
            shared=shared,
            busy=busy,
            interrupts=interrupts,
            stolen=stolen,
            total=total,
        )

    @staticmethod
    def breakdown(before: Snapshot, after: Snapshot, units: int) -> Breakdown:
        # A backend that connected during the phase counts from zero; one that left takes its time with it.
        postgres = sum(cpu - before.backends.get(pid, 0.0) for pid, cpu in after.backends.items())
        shared = sum(cpu - before.shared.get(pid, 0.0) for pid, cpu in after.shared.items())
        client = after.client - before.client
        server = after.server - before.server
        machine = (after.busy - before.busy) / TICK
        per = 1000 / max(units, 1)
        return Breakdown(
            units=units,
            seconds=after.wall - before.wall,
            client=client * per,
            server=server * per,
            postgres=postgres * per,
            postgres_shared=shared * per,
            other=(machine - client - server - postgres - shared) * per,
            interrupts=(after.interrupts - before.interrupts) / TICK * per,
            total=machine * per,
            idle_share=1 - (after.busy - before.busy + after.stolen - before.stolen) / max(after.total - before.total, 1),
            stolen_share=(after.stolen - before.stolen) / max(after.total - before.total, 1),
        )
