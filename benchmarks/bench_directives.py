#!/usr/bin/env python
"""Directive engine benchmark: Omniman against procrastinate, django-tasks-db and a bare SKIP LOCKED loop.

One command, one PostgreSQL database, one run, the same no-op work for all:

    pip install -e '.[bench]'
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/omniman_bench \\
        .venv/bin/python benchmarks/bench_directives.py [--jobs 5000] [--latency-jobs 200] [--quick]

The database (default ``omniman_bench``) is created if missing and migrated
(procrastinate's schema is a Django migration too). The benchmark TRUNCATEs
the three queue tables between phases: never point it at a database you care
about (it refuses one that holds Omniman orders).

Phases, each applied identically to every system. Enqueue and drain are
measured ``--repeat`` times (default 3) in rounds, each system once per round
in a rotating order, so that slow drifts of the machine (or other work on it)
hit all of them alike; the table shows medians and the runs are listed below it:

* enqueue — N one-by-one enqueues through each library's normal single-job
  API (``Directive.objects.enqueue``, ``Task.defer``, ``Task.enqueue``) in
  autocommit, from this process, no worker running: jobs/s.
* drain W — W real worker processes of each library's own command are
  started on an empty queue and left idle until each holds its database
  connection (plus a settle time); then N jobs are inserted in one
  transaction with each library's bulk path (``bulk_create`` + the engine's
  NOTIFY, ``batch_defer`` whose trigger notifies, ``bulk_create``), the
  tables ANALYZEd in that same transaction (freshly truncated tables have no
  statistics, and this machine runs with autovacuum off: without it the
  one-job-per-fetch peers get sort-all-queued plans and slow down as O(N)),
  and the clock runs from that commit to the last job's done timestamp (read
  from the rows). Neither start-up nor the insert is inside the measured time.
* latency — one idle worker; jobs enqueued one at a time ~20 ms apart (after
  a few un-timed warm-up jobs); each job's enqueue→done is the row's done
  timestamp (``Directive.updated_at``; procrastinate's ``succeeded`` event;
  ``DBTaskResult.finished_at``) minus the wall-clock time just before the
  enqueue call: p50/p99 in ms.

Every phase is bounded (``--phase-timeout``); a phase that runs out says so
in the table and the run goes on. Workers are stopped with SIGTERM, then
SIGKILL after 10 s.

The reference: ``bare`` (benchmarks/bare_worker.py) is the textbook
``SELECT … FOR UPDATE SKIP LOCKED LIMIT 1`` + ``UPDATE`` loop, one job and one
commit per transaction, on a table with only the primary key and a partial
index on queued rows — the floor any queue built on row versions starts from.
Each drain also measures the **WAL per job**: every drain starts after a
``CHECKPOINT``; with ``pg_walinspect`` (PostgreSQL 15+, the extension created
if allowed) it counts the records on the system's own tables and indexes,
those of the transactions that wrote them, and their commits (the server may
be shared: its WAL is one stream for all databases); a temporary replication
slot keeps that WAL until it is read. Without the extension it is the LSN
difference. ``--wal-detail`` also prints each system's WAL per job by record
type and relation.

The machine is small (2 cores) and may be shared: before each timed run the
benchmark waits (``--quiet-wait``, default up to 120 s) for the CPUs to be
idle, and notes any run that had to start busy. Figures taken while a test
suite or a browser runs beside it are not worth comparing. ``--check`` exits
1 when Omniman misses a target: drain ≥ 4× the faster peer at every worker
count, ≥ 2,000 jobs/s with 2 workers, WAL per job ≤ the bare loop's, p99
enqueue→done < 250 ms. Omniman's workers run with the command's default
``--limit`` unless ``--omniman-limit`` says otherwise.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/omniman_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"

SYSTEMS = ("omniman", "procrastinate", "django-tasks-db", "bare")
PEERS = ("procrastinate", "django-tasks-db")  # the libraries Omniman is measured against; "bare" is the floor reference
PHASES = ("enqueue", "drain", "latency")
OMNIMAN_TOPIC = "bench.noop"
POLL = 0.05  # seconds between "how many are done?" queries
STOP_GRACE = 10.0  # SIGTERM, then SIGKILL after this many seconds
PYTHON = sys.executable


class PhaseTimeout(Exception):
    pass


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------- database


def ensure_database(url: str) -> None:
    """Create the benchmark database if it does not exist (connecting to ``postgres``)."""
    import dj_database_url
    import psycopg
    from psycopg import sql

    cfg = dj_database_url.parse(url)
    if cfg["ENGINE"] != "django.db.backends.postgresql":
        raise SystemExit(f"DATABASE_URL must be PostgreSQL, got {cfg['ENGINE']}")
    params = {
        "dbname": "postgres",
        "user": cfg.get("USER") or None,
        "password": cfg.get("PASSWORD") or None,
        "host": cfg.get("HOST") or None,
        "port": cfg.get("PORT") or None,
        "autocommit": True,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v is not None}) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]]).fetchone()
        if not exists:
            print(f"creating database {cfg['NAME']}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(cfg["NAME"])))


def setup_django(force: bool) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from omniman.models import Order

    if Order.objects.exists() and not force:
        raise SystemExit(
            "this database holds Omniman orders: the benchmark truncates queue tables, "
            "so point DATABASE_URL at a scratch database (or pass --force)"
        )


def q(sql_text: str, params=None):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql_text, params or [])
        if cursor.description is None:
            return None
        return cursor.fetchall()


def epoch(value: datetime) -> float:
    return value.timestamp()


# --------------------------------------------------------------------------- systems


class System:
    name = ""

    def tables(self) -> list[str]:
        raise NotImplementedError

    def clean(self) -> None:
        q(f"TRUNCATE {', '.join(self.tables())} RESTART IDENTITY CASCADE")

    def analyze(self) -> None:
        """Planner statistics for the freshly loaded queue (this machine runs with autovacuum off)."""
        q(f"ANALYZE {', '.join(self.tables())}")

    def enqueue_one(self, i: int):
        raise NotImplementedError

    def bulk_load(self, n: int) -> None:
        """Insert ``n`` queued jobs (called inside one transaction)."""
        raise NotImplementedError

    def counts(self) -> tuple[int, int]:
        """(done, failed)"""
        raise NotImplementedError

    def last_done(self) -> float:
        raise NotImplementedError

    def done_times(self, ids: list) -> dict:
        raise NotImplementedError

    def worker_cmd(self, opts, index: int) -> list[str]:
        raise NotImplementedError

    def versions(self) -> str:
        raise NotImplementedError


class Omniman(System):
    name = "omniman"

    def __init__(self):
        from omniman.models import Directive

        self.Directive = Directive
        self.table = Directive._meta.db_table

    def tables(self):
        return [self.table]

    def enqueue_one(self, i):
        return self.Directive.objects.enqueue(OMNIMAN_TOPIC, {"i": i}).pk

    def bulk_load(self, n):
        Directive = self.Directive
        Directive.objects.bulk_create(
            [Directive(topic=OMNIMAN_TOPIC, payload={"i": i}) for i in range(n)], batch_size=1000
        )
        # Workers are woken by the directive table's INSERT trigger (migration 0002), on commit.

    def counts(self):
        done, failed = q(
            f"SELECT count(*) FILTER (WHERE status = 'done'), "
            f"count(*) FILTER (WHERE status = 'failed' OR last_error <> '') FROM {self.table}"
        )[0]
        return done, failed

    def last_done(self):
        return epoch(q(f"SELECT max(updated_at) FROM {self.table} WHERE status = 'done'")[0][0])

    def done_times(self, ids):
        rows = q(f"SELECT id, updated_at FROM {self.table} WHERE status = 'done' AND id = ANY(%s)", [ids])
        return {i: epoch(t) for i, t in rows}

    def worker_cmd(self, opts, index):
        limit = ["--limit", str(opts.omniman_limit)] if opts.omniman_limit else []  # else the command's default
        return [PYTHON, "manage.py", "process_directives", "--watch", *limit, "--verbosity", "0"]

    def versions(self):
        if not hasattr(self, "_versions"):  # taken once, at the start of the run
            engine_files = ["omniman/engine.py", "omniman/models/directive.py", "omniman/management/commands/process_directives.py"]
            rev = ""
            try:
                git = ["git", "-C", str(ROOT)]
                head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5).stdout.strip()
                last = subprocess.run([*git, "log", "-1", "--format=%h", "--", *engine_files], capture_output=True, text=True, timeout=5).stdout.strip()
                dirty = subprocess.run([*git, "status", "--porcelain", "--", *engine_files], capture_output=True, text=True, timeout=5).stdout.strip()
                if head:
                    rev = f" (git {head}; engine last changed in {last}{', with uncommitted changes' if dirty else ''})"
            except (OSError, subprocess.SubprocessError):
                pass
            self._versions = f"django-omniman {dist_version('django-omniman')}{rev}"
        return self._versions


class Procrastinate(System):
    name = "procrastinate"

    def __init__(self):
        from benchmarks.benchapp.tasks import procrastinate_noop

        self.task = procrastinate_noop

    def tables(self):
        return ["procrastinate_events", "procrastinate_periodic_defers", "procrastinate_jobs", "procrastinate_workers"]

    def enqueue_one(self, i):
        return self.task.defer(i=i)

    def bulk_load(self, n):
        for start in range(0, n, 1000):
            self.task.batch_defer(*({"i": i} for i in range(start, min(n, start + 1000))))

    def counts(self):
        done, failed = q(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'), "
            "count(*) FILTER (WHERE status IN ('failed', 'cancelled', 'aborted')) FROM procrastinate_jobs"
        )[0]
        return done, failed

    def last_done(self):
        return epoch(q("SELECT max(at) FROM procrastinate_events WHERE type = 'succeeded'")[0][0])

    def done_times(self, ids):
        rows = q("SELECT job_id, at FROM procrastinate_events WHERE type = 'succeeded' AND job_id = ANY(%s)", [ids])
        return {i: epoch(t) for i, t in rows}

    def worker_cmd(self, opts, index):
        return [
            PYTHON, "manage.py", "procrastinate", "worker",
            "--name", f"bench-{index}",
            "--concurrency", str(opts.procrastinate_concurrency),
        ]

    def versions(self):
        return f"procrastinate {dist_version('procrastinate')}"


class DjangoTasksDB(System):
    name = "django-tasks-db"

    def __init__(self):
        from django_tasks_db.models import DBTaskResult

        from benchmarks.benchapp.tasks import django_tasks_noop

        self.task = django_tasks_noop
        self.Model = DBTaskResult
        self.table = DBTaskResult._meta.db_table

    def tables(self):
        return [self.table]

    def enqueue_one(self, i):
        return self.task.enqueue(i=i).id

    def bulk_load(self, n):
        from django_tasks_db.models import get_date_max

        task, Model = self.task, self.Model
        Model.objects.bulk_create(
            [
                # The fields DatabaseBackend.enqueue() writes (run_after: its pre_save default).
                Model(
                    id=uuid.uuid4(),
                    args_kwargs={"args": [], "kwargs": {"i": i}},
                    priority=task.priority,
                    task_path=task.module_path,
                    queue_name=task.queue_name,
                    run_after=get_date_max(),
                    backend_name=task.backend,
                )
                for i in range(n)
            ],
            batch_size=1000,
        )

    def counts(self):
        done, failed = q(
            f"SELECT count(*) FILTER (WHERE status = 'SUCCESSFUL'), count(*) FILTER (WHERE status = 'FAILED') FROM {self.table}"
        )[0]
        return done, failed

    def last_done(self):
        return epoch(q(f"SELECT max(finished_at) FROM {self.table} WHERE status = 'SUCCESSFUL'")[0][0])

    def done_times(self, ids):
        rows = q(f"SELECT id, finished_at FROM {self.table} WHERE status = 'SUCCESSFUL' AND id = ANY(%s::uuid[])", [[str(i) for i in ids]])
        return {str(i): epoch(t) for i, t in rows}

    def worker_cmd(self, opts, index):
        return [
            PYTHON, "manage.py", "db_worker",
            "--no-reload", "--no-startup-delay",
            "--interval", str(opts.db_worker_interval),
            "--worker-id", f"bench-{index}-{uuid.uuid4().hex[:8]}",
            "--verbosity", "0",
        ]

    def versions(self):
        return f"django-tasks {dist_version('django-tasks')}, django-tasks-db {dist_version('django-tasks-db')}"


class Bare(System):
    """The reference: benchmarks/bare_worker.py, a bare SKIP LOCKED loop with one commit per job."""

    name = "bare"

    def __init__(self):
        from benchmarks.bare_worker import TABLE, TABLE_SQL

        q(TABLE_SQL)
        self.table = TABLE

    def tables(self):
        return [self.table]

    def enqueue_one(self, i):
        return q(f"INSERT INTO {self.table} (payload) VALUES (%s::jsonb) RETURNING id", [f'{{"i": {int(i)}}}'])[0][0]

    def bulk_load(self, n):
        q(f"INSERT INTO {self.table} (payload) SELECT jsonb_build_object('i', g) FROM generate_series(0, %s) AS g", [n - 1])

    def counts(self):
        return q(f"SELECT count(*) FILTER (WHERE status = 'done'), 0 FROM {self.table}")[0]

    def last_done(self):
        return epoch(q(f"SELECT max(done_at) FROM {self.table}")[0][0])

    def done_times(self, ids):
        rows = q(f"SELECT id, done_at FROM {self.table} WHERE status = 'done' AND id = ANY(%s)", [ids])
        return {i: epoch(t) for i, t in rows}

    def worker_cmd(self, opts, index):
        return [PYTHON, str(ROOT / "benchmarks" / "bare_worker.py")]

    def versions(self):
        return f"bare loop (benchmarks/bare_worker.py, psycopg {dist_version('psycopg')})"


def cpu_idle(interval: float = 1.0) -> float:
    """Share of all CPUs idle over ``interval`` seconds (/proc/stat); 1.0 where unknown."""

    def sample():
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, total (no guest)

    try:
        idle0, total0 = sample()
        time.sleep(interval)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return 1.0
    return (idle1 - idle0) / max(1, total1 - total0)


def wait_quiet(opts, what: str, notes: list) -> None:
    """Before a timed run: wait (up to ``--quiet-wait`` s) until other work leaves the CPUs idle.

    This is a shared 2-core machine; a test suite running beside the benchmark
    changes its figures by 2-3×. A run that starts busy anyway is noted.
    """
    if opts.quiet_wait <= 0:
        return
    deadline = time.monotonic() + opts.quiet_wait
    while True:
        idle = cpu_idle()
        if idle >= opts.quiet_idle:
            return
        if time.monotonic() > deadline:
            message = f"{what}: started with the machine busy ({100 * idle:.0f}% idle after waiting {opts.quiet_wait:g} s)"
            print(f"  !! {message}", flush=True)
            notes.append(message)
            return


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- workers


@dataclass
class Workers:
    system: System
    procs: list = field(default_factory=list)
    logs: list = field(default_factory=list)
    appnames: list = field(default_factory=list)


LIVE: list[subprocess.Popen] = []


def start_workers(system: System, count: int, opts, logdir: Path, label: str) -> Workers:
    workers = Workers(system)
    for index in range(count):
        appname = f"bench-{system.name}-{label}-{index}"[:63]
        log_path = logdir / f"{appname}.log"
        env = {**os.environ, "PGAPPNAME": appname, "DJANGO_SETTINGS_MODULE": "benchmarks.settings", "PYTHONUNBUFFERED": "1"}
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            system.worker_cmd(opts, index), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        LIVE.append(proc)
        workers.procs.append(proc)
        workers.logs.append(log_path)
        workers.appnames.append(appname)
    return workers


def wait_idle(workers: Workers, settle: float, timeout: float) -> None:
    """Until every worker holds a database connection, then ``settle`` more seconds."""
    deadline = time.monotonic() + timeout
    names = workers.appnames
    while True:
        check_alive(workers)
        rows = q("SELECT DISTINCT application_name FROM pg_stat_activity WHERE application_name = ANY(%s)", [names])
        if len(rows) == len(names):
            break
        if time.monotonic() > deadline:
            raise PhaseTimeout(f"{workers.system.name} workers not connected after {timeout:.0f} s (logs: {workers.logs[0].parent})")
        time.sleep(0.1)
    time.sleep(settle)
    check_alive(workers)


def check_alive(workers: Workers) -> None:
    for proc, log in zip(workers.procs, workers.logs):
        if proc.poll() is not None:
            raise BenchError(f"{workers.system.name} worker exited with {proc.returncode}:\n{tail(log)}")


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_workers(workers: Workers) -> list[str]:
    """SIGTERM, then SIGKILL after STOP_GRACE s; returns complaints (killed, tracebacks)."""
    complaints = []
    for proc in workers.procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE
    for proc in workers.procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            complaints.append(f"{workers.system.name} worker pid {proc.pid} ignored SIGTERM for {STOP_GRACE:g} s: killed")
    for proc in workers.procs:
        if proc in LIVE:
            LIVE.remove(proc)
    for log in workers.logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "Traceback" in text:
            complaints.append(f"{workers.system.name}: traceback in {log}:\n{tail(log, 15)}")
    return complaints


def kill_all_live() -> None:
    for proc in list(LIVE):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        LIVE.remove(proc)


def wait_done(system: System, expected: int, timeout: float, workers: Workers | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done, failed = system.counts()
        if failed:
            raise BenchError(f"{system.name}: {failed} job(s) failed or errored")
        if done >= expected:
            return
        if workers is not None:
            check_alive(workers)
        if time.monotonic() > deadline:
            raise PhaseTimeout(f"timed out after {timeout:.0f} s with {done}/{expected} done")
        time.sleep(POLL)


# --------------------------------------------------------------------------- phases


def phase_enqueue(system: System, n: int, timeout: float) -> float:
    from django.db import connection

    assert connection.get_autocommit()
    system.clean()
    for i in range(min(20, n)):  # warm-up: connection, imports, plan caches
        system.enqueue_one(i)
    system.clean()
    deadline = time.monotonic() + timeout
    start = time.perf_counter()
    for i in range(n):
        system.enqueue_one(i)
        if i % 100 == 0 and time.monotonic() > deadline:
            raise PhaseTimeout(f"timed out after {timeout:.0f} s with {i}/{n} enqueued")
    elapsed = time.perf_counter() - start
    system.clean()
    return n / elapsed


WAL: dict[tuple[str, int], list[float]] = {}  # (system, workers) → WAL bytes per job, one per drain run
# (system, workers) → {record kind: [bytes, records]} summed over its drain runs (--wal-detail)
WAL_DETAIL: dict[tuple[str, int], dict[str, list[int]]] = {}


def wal_lsn() -> str:
    return q("SELECT pg_current_wal_insert_lsn()::text")[0][0]


WALINSPECT: list[bool] = []  # [available?], decided once
WAL_SLOT = "omniman_bench_wal"


def reserve_wal() -> bool:
    """A temporary physical replication slot (this session's, dropped with it): PostgreSQL keeps the WAL
    from here on until :func:`release_wal`. False when the server has no slot to spare."""
    if not walinspect():
        return False
    try:
        q("SELECT pg_create_physical_replication_slot(%s, true, true)", [WAL_SLOT])
        return True
    except Exception:  # noqa: BLE001 - max_replication_slots reached or not allowed
        return False


def release_wal(slot: bool) -> None:
    if slot:
        q("SELECT pg_drop_replication_slot(%s)", [WAL_SLOT])


def walinspect() -> bool:
    if not WALINSPECT:
        try:
            q("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            WALINSPECT.append(True)
        except Exception:  # noqa: BLE001 - not installed, or not allowed: the cluster-wide LSN difference instead
            WALINSPECT.append(False)
    return WALINSPECT[0]


def wal_bytes(
    system: System, lsn0: str, lsn1: str, detail: dict[str, list[int]] | None = None, *, skip_xid: int | None = None
) -> float:
    """WAL written between ``lsn0`` and ``lsn1`` for ``system``'s tables, in bytes.

    The PostgreSQL server may be shared, and its WAL is one stream for all its
    databases: with ``pg_walinspect`` the records are attributed — those on the
    blocks of the system's tables, their indexes and TOAST (in this database),
    those of the transactions that wrote them (and their subtransactions), and
    those transactions' commit records. Without it, the LSN difference (everything
    the server wrote meanwhile, others' work included).
    """
    if not walinspect():
        return float(q("SELECT pg_wal_lsn_diff(%s::pg_lsn, %s::pg_lsn)", [lsn1, lsn0])[0][0])
    deadline = time.monotonic() + 5
    while q("SELECT pg_current_wal_flush_lsn() < %s::pg_lsn", [lsn1])[0][0] and time.monotonic() < deadline:
        time.sleep(0.05)  # pg_walinspect reads flushed WAL only
    db = q("SELECT oid FROM pg_database WHERE datname = current_database()")[0][0]
    tables = system.tables()
    relations = dict(q(
        "SELECT relfilenode, relname FROM pg_class WHERE relfilenode <> 0 AND (oid = ANY(%s::regclass[]) "
        "OR oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = ANY(%s::regclass[])) "
        "OR oid IN (SELECT reltoastrelid FROM pg_class WHERE oid = ANY(%s::regclass[])))", [tables, tables, tables]))
    ours = re.compile(r"rel \d+/%d/(%s)\b" % (db, "|".join(map(str, relations))))
    rows = q(
        "SELECT xid::text::bigint, resource_manager, record_length + fpi_length, description, block_ref, record_type "
        "FROM pg_get_wal_records_info(%s::pg_lsn, LEAST(%s::pg_lsn, pg_current_wal_flush_lsn()))", [lsn0, lsn1]
    )
    xids = {xid for xid, _, _, _, blocks, _ in rows if xid and xid != skip_xid and blocks and ours.search(blocks)}
    total = 0

    def count(kind: str, size: int) -> None:
        if detail is not None:
            entry = detail.setdefault(kind, [0, 0])
            entry[0] += size
            entry[1] += 1

    for xid, manager, size, description, blocks, record_type in rows:
        if skip_xid is not None and xid == skip_xid:
            continue  # the load's own records (its commit), not the drain's
        found = ours.search(blocks) if blocks else None
        if found:
            total += size
            count(f"{manager}/{record_type} {relations[int(found.group(1))]}", size)
        elif manager == "Transaction":
            match = re.search(r"subxacts:([\d ]+)", description or "")
            if xid in xids or (match and xids.intersection(int(x) for x in match.group(1).split())):
                total += size
                count(f"{manager}/{record_type}", size)
        elif xid and xid in xids:
            total += size
            count(f"{manager}/{record_type} (other relations)", size)
    return float(total)


def phase_drain(system: System, n: int, count: int, opts, logdir: Path, notes: list) -> float:
    from django.db import transaction

    system.clean()
    workers = start_workers(system, count, opts, logdir, f"drain{count}")
    try:
        wait_idle(workers, opts.settle, opts.phase_timeout)
        # Every system starts from a checkpoint: full-page images in its WAL come from its own
        # writes, not from where the server's checkpoint cycle happened to be.
        q("CHECKPOINT")
        slot = reserve_wal()  # keeps the drain's WAL until it is read (a shared server recycles it)
        with transaction.atomic():
            system.bulk_load(n)
            # In the same transaction (ANALYZE counts its own uncommitted rows): without
            # statistics a freshly truncated table gets sort-everything plans, and a
            # one-job-per-fetch worker then pays O(N) per job.
            system.analyze()
            # From here, just before the load commits: the workers start at that commit (NOTIFY), and
            # an LSN read after it would miss their first jobs. The load's own records (its commit) are
            # left out by its transaction id.
            load_xid = int(q("SELECT pg_current_xact_id()::text::bigint %% 4294967296")[0][0])
            lsn0 = wal_lsn()
        t0 = time.time()
        try:
            wait_done(system, n, opts.phase_timeout, workers)
            lsn1 = wal_lsn()
            rate = n / (system.last_done() - t0)
            try:
                detail = WAL_DETAIL.setdefault((system.name, count), {}) if opts.wal_detail else None
                WAL.setdefault((system.name, count), []).append(wal_bytes(system, lsn0, lsn1, detail, skip_xid=load_xid) / n)
                if detail is not None:
                    detail.setdefault("jobs", [0, 0])[1] += n
            except Exception as exc:  # noqa: BLE001 - the WAL is gone: say so, keep the rate
                notes.append(f"WAL per job / {system.name} with {count} worker(s): not measured ({type(exc).__name__}: {str(exc)[:120]})")
        finally:
            release_wal(slot)
    finally:
        notes.extend(stop_workers(workers))
        system.clean()
    return rate


def phase_latency(system: System, jobs: int, opts, logdir: Path, notes: list) -> tuple[float, float, float]:
    system.clean()
    workers = start_workers(system, 1, opts, logdir, "latency")
    try:
        wait_idle(workers, opts.settle, opts.phase_timeout)
        warm = 5
        for i in range(warm):
            system.enqueue_one(-1 - i)
        wait_done(system, warm, opts.phase_timeout, workers)
        sent = []
        deadline = time.monotonic() + opts.phase_timeout
        for i in range(jobs):
            t = time.time()
            sent.append((system.enqueue_one(i), t))
            pause = t + opts.latency_spacing - time.time()
            if pause > 0:
                time.sleep(pause)
            if time.monotonic() > deadline:
                raise PhaseTimeout(f"timed out after {opts.phase_timeout:.0f} s with {i}/{jobs} enqueued")
        wait_done(system, warm + jobs, max(1.0, deadline - time.monotonic()), workers)
        done = system.done_times([job_id for job_id, _ in sent])
        lat = sorted((done[key(job_id)] - t) * 1000 for job_id, t in sent)
    finally:
        notes.extend(stop_workers(workers))
        system.clean()
    return percentile(lat, 50), percentile(lat, 99), lat[-1]


def key(job_id):
    return str(job_id) if isinstance(job_id, uuid.UUID) else job_id


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


# --------------------------------------------------------------------------- report


def fmt(value, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "ms":
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def ratio(a, b) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or not b:
        return "-"
    return f"{a / b:.2f}×"


def print_table(rows: list[tuple[str, str, dict]], systems: list[str]) -> None:
    others = [s for s in SYSTEMS if s != "omniman"]
    header = ["metric", *SYSTEMS, *(f"omniman/{s}" for s in others)]
    body = []
    for label, unit, values in rows:
        body.append(
            [
                label,
                *(fmt(values.get(s), unit) if s in systems else "n/a" for s in SYSTEMS),
                *(ratio(values.get("omniman"), values.get(s)) for s in others),
            ]
        )
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    line = "+".join("-" * (w + 2) for w in widths)

    def show(cells):
        print("| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |")

    print("+" + line + "+")
    show(header)
    print("+" + line + "+")
    for cells in body:
        show(cells)
    print("+" + line + "+")


def environment(systems: dict[str, System], opts) -> None:
    server = q("SELECT version()")[0][0].split(" on ")[0]
    pg = {name: value for name, value in q(
        "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'autovacuum', "
        "'data_checksums', 'wal_log_hints', 'full_page_writes', 'wal_level')"
    )}
    from django.conf import settings

    db = settings.DATABASES["default"]
    print(f"python      {platform.python_version()} ({platform.python_implementation()}), {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"postgresql  {server}; fsync={pg.get('fsync')} synchronous_commit={pg.get('synchronous_commit')} "
          f"shared_buffers={pg.get('shared_buffers')}×8kB autovacuum={pg.get('autovacuum')}")
    print(f"            wal_level={pg.get('wal_level')} full_page_writes={pg.get('full_page_writes')} "
          f"data_checksums={pg.get('data_checksums')} wal_log_hints={pg.get('wal_log_hints')}")
    print(f"database    {db['NAME']} on {db.get('HOST') or 'socket'}:{db.get('PORT') or 5432} (CONN_MAX_AGE={db.get('CONN_MAX_AGE')})")
    print(f"libraries   Django {dist_version('django')}, psycopg {dist_version('psycopg')}; "
          + "; ".join(s.versions() for s in systems.values()))
    limit = f"--limit {opts.omniman_limit}" if opts.omniman_limit else "(the command's default --limit)"
    print(f"workers     omniman: manage.py process_directives --watch {limit} (LISTEN/NOTIFY)")
    print(f"            procrastinate: manage.py procrastinate worker --concurrency {opts.procrastinate_concurrency} (LISTEN/NOTIFY)")
    print(f"            django-tasks-db: manage.py db_worker --interval {opts.db_worker_interval:g} (polls; no NOTIFY)")
    print("            bare: benchmarks/bare_worker.py, SELECT … FOR UPDATE SKIP LOCKED LIMIT 1 + UPDATE, one commit per job (polls every 5 ms)")
    print("            each a separate process; per-job logging off for all (omniman WARNING, "
          "procrastinate's INFO lines have no handler, db_worker --verbosity 0)")


# --------------------------------------------------------------------------- main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=None, help="jobs per enqueue and drain measurement (default 5000; 500 with --quick)")
    parser.add_argument("--latency-jobs", type=int, default=None, help="timed jobs in the latency phase (default 200; 50 with --quick)")
    parser.add_argument("--workers", default=None, help="comma-separated worker counts for the drain (default 1,2,4; 1,2 with --quick)")
    parser.add_argument("--repeat", type=int, default=None, help="enqueue and drain runs per system (and worker count); the median is reported (default 3; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run: 500 jobs, workers 1 and 2, 50 latency jobs, 1 repeat")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {', '.join(SYSTEMS)}")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {', '.join(PHASES)}")
    parser.add_argument("--phase-timeout", type=float, default=300.0, help="seconds any one phase may take (default 300)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds idle workers wait, connected, before a batch (default 2)")
    parser.add_argument("--latency-spacing", type=float, default=0.02, help="seconds between latency enqueues (default 0.02)")
    parser.add_argument("--quiet-wait", type=float, default=120.0,
                        help="before each timed run, wait up to this many seconds for the CPUs to be idle (0: don't; default 120)")
    parser.add_argument("--quiet-idle", type=float, default=0.85, help="share of CPU idle over 1 s that counts as quiet (default 0.85)")
    parser.add_argument("--omniman-limit", type=int, default=None, help="process_directives --limit (default: the command's own default)")
    parser.add_argument("--procrastinate-concurrency", type=int, default=1, help="procrastinate worker --concurrency (default 1)")
    parser.add_argument("--db-worker-interval", type=float, default=0.1,
                        help="db_worker --interval, its idle poll in seconds (default 0.1; the library's own default is 1)")
    parser.add_argument("--wal-detail", action="store_true",
                        help="also print each drain's WAL per job by record type and relation (pg_walinspect)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if Omniman misses a target (drain ≥ 4× the faster peer at every worker count, ≥ 2,000 jobs/s with 2 workers, "
                             "WAL per job ≤ the bare loop's, p99 < 250 ms)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' logs (kept anyway when something failed)")
    parser.add_argument("--force", action="store_true", help="run even if the database holds Omniman orders")
    opts = parser.parse_args(argv)
    opts.jobs = opts.jobs or (500 if opts.quick else 5000)
    opts.latency_jobs = opts.latency_jobs or (50 if opts.quick else 200)
    opts.workers = [int(w) for w in (opts.workers or ("1,2" if opts.quick else "1,2,4")).split(",")]
    opts.repeat = opts.repeat or (1 if opts.quick else 3)
    opts.systems = [s.strip() for s in opts.systems.split(",") if s.strip()]
    unknown = set(opts.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    opts.phases = [p.strip() for p in opts.phases.split(",") if p.strip()]
    unknown = set(opts.phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    return opts


def main(argv=None) -> int:
    opts = parse_args(argv)
    if "omniman" in opts.systems:
        missing = [p for p in ("omniman/engine.py", "omniman/management/commands/process_directives.py") if not (ROOT / p).exists()]
        if missing:
            raise SystemExit(f"the Omniman directive engine is missing ({', '.join(missing)}); run with --systems procrastinate,django-tasks-db")
    ensure_database(os.environ["DATABASE_URL"])
    setup_django(opts.force)

    makers = {"omniman": Omniman, "procrastinate": Procrastinate, "django-tasks-db": DjangoTasksDB, "bare": Bare}
    systems = {name: makers[name]() for name in opts.systems}
    logdir = Path(tempfile.mkdtemp(prefix="bench_directives_"))
    notes: list[str] = []
    results: dict[str, dict[str, object]] = {}

    def record(metric: str, name: str, fn):
        try:
            value = fn()
        except (PhaseTimeout, BenchError) as exc:
            message = f"{metric} / {name}: {exc}"
            print(f"  !! {message}", flush=True)
            notes.append(message)
            value = "timeout" if isinstance(exc, PhaseTimeout) else "error"
        results.setdefault(metric, {})[name] = value
        return value

    print(f"bench_directives: {opts.jobs} jobs, enqueue and drain with {opts.workers} worker(s) × {opts.repeat} run(s), "
          f"{opts.latency_jobs} latency jobs; systems: {', '.join(opts.systems)}; logs in {logdir}", flush=True)
    load_before = loadavg()
    for system in systems.values():
        system.versions()
    started = time.monotonic()
    all_runs: dict[str, dict[str, list]] = {}

    def repeated(metric: str, label: str, fn) -> None:
        """``opts.repeat`` rounds, each system once per round (the order rotating), median kept."""
        runs: dict[str, list] = {name: [] for name in systems}
        names = list(systems)
        for attempt in range(opts.repeat):
            shift = attempt % len(names)
            for name in names[shift:] + names[:shift]:
                if runs[name] and not all(isinstance(v, float) for v in runs[name]):
                    continue  # it already timed out or failed here
                wait_quiet(opts, f"{metric} / {name} run {attempt + 1}", notes)
                value = record(metric, name, lambda: fn(systems[name]))
                runs[name].append(value)
                shown = f"{fmt(value, 'jobs/s')} jobs/s" if isinstance(value, float) else value
                print(f"  {label:<9} {name:<16} run {attempt + 1}: {shown}", flush=True)
        for name, values in runs.items():
            floats = [v for v in values if isinstance(v, float)]
            results[metric][name] = statistics.median(floats) if len(floats) == len(values) else values[-1]
        all_runs[metric] = runs

    try:
        if "enqueue" in opts.phases:
            repeated("enqueue", "enqueue", lambda system: phase_enqueue(system, opts.jobs, opts.phase_timeout))
        for count in opts.workers if "drain" in opts.phases else ():
            repeated(f"drain{count}", f"drain x{count}", lambda system: phase_drain(system, opts.jobs, count, opts, logdir, notes))
        for name, system in systems.items() if "latency" in opts.phases else ():
            wait_quiet(opts, f"latency / {name}", notes)
            value = record("latency", name, lambda: phase_latency(system, opts.latency_jobs, opts, logdir, notes))
            if isinstance(value, tuple):
                print(f"  latency   {name:<16} p50 {value[0]:.1f} ms, p99 {value[1]:.1f} ms, max {value[2]:.1f} ms", flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        kill_all_live()
    load_after = loadavg()

    print()
    print(f"Directive benchmark — {datetime.now().astimezone():%Y-%m-%d %H:%M %Z}, {time.monotonic() - started:.0f} s")
    environment(systems, opts)
    print(f"load        1-min load average {load_before} before, {load_after} after (this process and its workers included)")
    print(f"jobs        {opts.jobs} per enqueue/drain measurement; enqueue and drain = median of {opts.repeat} run(s); "
          f"latency = {opts.latency_jobs} jobs {opts.latency_spacing * 1000:g} ms apart, 1 idle worker")
    print("method      enqueue: one-by-one through each library's single-job API, autocommit, no worker running.")
    print("            drain: workers started on an empty queue and left idle (connected + "
          f"{opts.settle:g} s), then N jobs inserted (and ANALYZEd) in one transaction;")
    print("            timed from that commit to the last job's done timestamp (start-up and insert excluded).")
    print("            latency: the row's done timestamp minus the wall clock just before the enqueue call.")
    if opts.quiet_wait > 0:
        print(f"            every timed run first waited (up to {opts.quiet_wait:g} s) for the CPUs to be ≥{100 * opts.quiet_idle:.0f}% idle.")
    print()
    rows = []
    lat = results.get("latency", {})
    rows.append(("enqueue (jobs/s, one by one)", "jobs/s", results.get("enqueue", {})))
    for count in opts.workers:
        rows.append((f"drain, {count} worker{'s' if count > 1 else ''} (jobs/s)", "jobs/s", results.get(f"drain{count}", {})))
    for count in opts.workers:
        wal = {name: statistics.median(values) for (name, c), values in WAL.items() if c == count and values}
        if wal:
            rows.append((f"  WAL per job, {count} worker{'s' if count > 1 else ''} (B)", "B", wal))
    rows.append(("enqueue→done p50 (ms)", "ms", {k: (v[0] if isinstance(v, tuple) else v) for k, v in lat.items()}))
    rows.append(("enqueue→done p99 (ms)", "ms", {k: (v[1] if isinstance(v, tuple) else v) for k, v in lat.items()}))
    print_table(rows, list(systems))
    print("ratios are omniman ÷ the other: above 1× is better for throughput, below 1× is better for WAL and latency.")
    if WALINSPECT and WALINSPECT[0]:
        print("WAL per job: the drain's WAL records for the system's own tables (pg_walinspect: their blocks, their writing transactions "
              "and commits), from just before the load's commit (its own records left out) to the last job done, ÷ jobs; each drain starts after a CHECKPOINT.")
    else:
        print("WAL per job: pg_current_wal_insert_lsn() difference from the load's commit to the last job done, ÷ jobs (pg_walinspect "
              "unavailable: everything the server wrote meanwhile, other databases' work included); each drain starts after a CHECKPOINT.")
    if WAL_DETAIL:
        print("WAL per job by record type (bytes / records per job, all drain runs of the system):")
        for (name, workers), kinds in sorted(WAL_DETAIL.items()):
            jobs = kinds.get("jobs", [0, 0])[1] or 1
            print(f"  {name}, {workers} worker{'s' if workers > 1 else ''}:")
            for kind, (size, records) in sorted(kinds.items(), key=lambda item: -item[1][0]):
                if kind != "jobs":
                    print(f"    {kind:<60} {size / jobs:8.1f} B  {records / jobs:6.2f}")
    if opts.repeat > 1:
        print("runs (jobs/s, in order):")
        for metric, runs in all_runs.items():
            print(f"  {metric:<8} " + "; ".join(f"{name} " + " ".join(fmt(v, 'jobs/s') for v in values) for name, values in runs.items()))

    failed_targets = []

    def target(label: str, ok: bool, shown: str, key: str) -> None:
        print(f"target      {label}: {shown} — {'met' if ok else 'MISSED'}")
        if not ok:
            failed_targets.append(key)

    for count in opts.workers:
        drain = results.get(f"drain{count}", {})
        peers = [drain.get(p) for p in PEERS if isinstance(drain.get(p), float)]
        if isinstance(drain.get("omniman"), float) and peers:
            best = max(peers)
            target(f"drain with {count} worker{'s' if count > 1 else ''} ≥ 4× the faster peer", drain["omniman"] >= 4 * best,
                   f"{drain['omniman'] / best:.2f}× ({drain['omniman']:,.0f} vs {best:,.0f} jobs/s)", f"drain{count}")
        if count == 2 and isinstance(drain.get("omniman"), float):
            target("drain with 2 workers ≥ 2,000 jobs/s", drain["omniman"] >= 2000, f"{drain['omniman']:,.0f} jobs/s", "drain2-rate")
        ours, bare = WAL.get(("omniman", count)), WAL.get(("bare", count))
        if ours and bare:
            ours_b, bare_b = statistics.median(ours), statistics.median(bare)
            target(f"WAL per job with {count} worker{'s' if count > 1 else ''} ≤ the bare loop's", ours_b <= bare_b,
                   f"{ours_b:,.0f} B vs {bare_b:,.0f} B ({ours_b / bare_b:.2f}×)", f"wal{count}")
    if isinstance(lat.get("omniman"), tuple):
        target("p99 enqueue→done in --watch < 250 ms", lat["omniman"][1] < 250, f"{lat['omniman'][1]:.1f} ms", "latency")
    if notes:
        print("\nnotes:")
        for note in notes:
            print(f"  - {note}")
    if notes or opts.keep_logs:
        print(f"worker logs: {logdir}")
    else:
        shutil.rmtree(logdir, ignore_errors=True)
    if opts.check and failed_targets:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
