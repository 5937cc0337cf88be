#!/usr/bin/env python3
"""Run the whole test suite on SQLite and on PostgreSQL, and the no-contrib pass, all at once.

    python3 scripts/test.py [--sqlite-only | --postgres-only] [--no-nocontrib] [--require-postgres]
                            [--workers N] [--one-pass-at-a-time] [--browser-on-both] [pytest args...]

The third, shorter pass ("nocontrib") runs the kernel, operator-app and API
suites on SQLite with tests.settings_nocontrib, which installs no
``omniman.contrib`` app: every contrib app is optional (a test that needs one
is skipped there, with the reason). --sqlite-only and --postgres-only leave it out.

When the SQLite pass runs too, the PostgreSQL pass leaves out the tests that cannot reach
the database (no django_db marker or database fixture, not marked postgres or deploy):
they ran identically on SQLite. Transactional tests end with tests/dbreset.py's
reset (DELETE, not TRUNCATE; the same rows as Django's flush).

Speed (.ci/run must finish in 15 minutes on a 2-core machine): the passes run at the
same time, each spread over --workers pytest-xdist processes (default $OMNIMAN_TEST_WORKERS,
else the CPU count, at least 2). The tests spend much of their time waiting (a browser, a
subprocess, a poll), so the CPUs stay busy. Every process has its own test database
(pytest-django's ``test_<name>_gw<N>`` on PostgreSQL, in-memory SQLite), every server a test
starts takes a spare port, every scratch file goes to the test's tmp_path, and each pass has
its own JUnit report and screenshots folder (``.test-results/<pass>.xml``,
``.test-results/screenshots/<pass>/``). The first pass prints as it runs; the others write
``.test-results/<pass>.log``, printed whole when each ends. --one-pass-at-a-time runs them
in turn (each still over --workers processes); --workers 0 runs each in one process.

The browser tests (tests/e2e, marked e2e) run on ONE database when both passes run: in the
SQLite pass; the PostgreSQL pass keeps only those marked postgres (OMNIMAN_TEST_BROWSER_ELSEWHERE,
tests/conftest.py). Why: parallelism alone did not bring .ci/run within its 15 minutes. A full
run with the browser tests in both passes used 22.4 CPU-minutes in its own processes (the
PostgreSQL server's on top): over 11 minutes of two fully busy CPUs before any wait; on the
shared 2-core machine it took 34 minutes, and four browsers at once made 3-second live-update
checks miss. With them in one pass: 15.6 CPU-minutes, 10 minutes wall (the .venv built too).
The browser tests check the pages and their scripts, which the database does not change;
what PostgreSQL changes (row locks, stale revisions, concurrency) its integration tests cover,
and a browser test that needs it is marked postgres and stays in that pass.
--browser-on-both runs them in both passes; --postgres-only runs them all on PostgreSQL.

PostgreSQL comes from OMNIMAN_TEST_POSTGRES_URL (default
postgres://postgres@127.0.0.1:5432/postgres). If it is unreachable the
PostgreSQL pass is skipped loudly, or fails the run when CI is set,
--require-postgres is given, or --postgres-only asks for that pass alone.
Any other argument goes to pytest, e.g. `python3 scripts/test.py -x tests/unit`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import _bootstrap

REPO = _bootstrap.REPO
RESULTS = REPO / ".test-results"
CHROMIUM = "/usr/bin/chromium"
PGBOUNCER = "/usr/sbin/pgbouncer"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/postgres"
NO_TESTS_COLLECTED = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
# The no-contrib pass: the kernel, web and API suites (the contrib apps' own tests need their apps).
NOCONTRIB_SETTINGS = "tests.settings_nocontrib"
# Set for the PostgreSQL pass when the SQLite pass runs too: tests/conftest.py then deselects the
# tests that cannot reach the database (no django_db marker or database fixture; not marked postgres or deploy).
DATABASE_ONLY = "OMNIMAN_TEST_DATABASE_ONLY"
# Set for the PostgreSQL pass when the SQLite pass runs too (unless --browser-on-both): tests/conftest.py then
# deselects the browser tests (e2e) not marked postgres; they ran in the SQLite pass (see the docstring).
BROWSER_ELSEWHERE = "OMNIMAN_TEST_BROWSER_ELSEWHERE"
WORKERS_ENV = "OMNIMAN_TEST_WORKERS"
NOCONTRIB_ARGS = ["tests/unit", "tests/integration", "--ignore=tests/integration/contrib", "-m", "not e2e and not deploy"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true", help="run the SQLite pass only")
    only.add_argument("--postgres-only", action="store_true", help="run the PostgreSQL pass only")
    parser.add_argument(
        "--require-postgres", action="store_true", help="fail instead of skipping when PostgreSQL is unreachable"
    )
    parser.add_argument("--no-nocontrib", action="store_true", help="leave out the no-contrib pass")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help=f"pytest-xdist processes per pass (default: ${WORKERS_ENV}, else the CPU count, at least 2; 0: none)",
    )
    parser.add_argument(
        "--browser-on-both",
        action="store_true",
        help="run every browser test in the PostgreSQL pass too (by default only those marked postgres)",
    )
    parser.add_argument(
        "--one-pass-at-a-time", action="store_true", help="run the passes one after the other instead of together"
    )
    args, pytest_args = parser.parse_known_args()
    workers = args.workers if args.workers is not None else default_workers()

    _bootstrap.ensure_venv("test")
    ensure_chromium()
    ensure_pgbouncer()
    ensure_gettext()

    passes: list[tuple[str, str]] = []
    if not args.postgres_only:
        passes.append(("sqlite", f"sqlite:///{REPO / '.test-db.sqlite3'}"))

    postgres_skipped = ""
    if not args.sqlite_only:
        url = os.environ.get("OMNIMAN_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
        error = probe_postgres(url)
        if error is None:
            passes.append(("postgres", url))
        elif args.require_postgres or args.postgres_only or truthy(os.environ.get("CI", "")):
            sys.exit(
                f"ERROR: PostgreSQL at {redact(url)} is unreachable: {error}\n"
                "Start PostgreSQL or set OMNIMAN_TEST_POSTGRES_URL; this run requires the PostgreSQL pass."
            )
        else:
            postgres_skipped = f"PostgreSQL pass SKIPPED: {redact(url)} unreachable (set OMNIMAN_TEST_POSTGRES_URL or start PostgreSQL)"
            banner(postgres_skipped, detail=error)

    RESULTS.mkdir(exist_ok=True)
    planned: list[Pass] = []
    for name, url in passes:
        extra_env = {}
        if name == "postgres" and any(other == "sqlite" for other, _ in passes):
            # The tests that cannot reach the database ran identically in the SQLite pass.
            extra_env[DATABASE_ONLY] = "1"
            if not args.browser_on_both:
                extra_env[BROWSER_ELSEWHERE] = "1"
        planned.append(Pass(name, url, pytest_args, extra_env=extra_env))
    if not (args.sqlite_only or args.postgres_only or args.no_nocontrib):
        url = f"sqlite:///{REPO / '.test-db-nocontrib.sqlite3'}"
        # The caller's options (-x, -k …) apply; its test paths, if any, replace the default selection.
        paths = [arg for arg in pytest_args if not arg.startswith("-") and (REPO / arg.split("::")[0]).exists()]
        options = [arg for arg in pytest_args if arg not in paths]
        selection = (paths + NOCONTRIB_ARGS[2:]) if paths else NOCONTRIB_ARGS
        planned.append(Pass("nocontrib", url, [*selection, *options], settings=NOCONTRIB_SETTINGS))

    exit_codes = run_passes(planned, workers=workers, together=not args.one_pass_at_a_time)
    for item in planned:
        if item.extra_env.get(DATABASE_ONLY) == "1" and exit_codes[item.name] == NO_TESTS_COLLECTED:
            exit_codes[item.name] = 0  # the selection had only database-independent tests: they ran on SQLite

    print()
    totals = [0, 0, 0]
    for name, code in exit_codes.items():
        counts = junit_counts(RESULTS / f"{name}.xml")
        if counts is None:
            print(f"{name}: no results (pytest exited {code} before writing a report)")
        else:
            print(f"{name}: {counts[0]} passed, {counts[1]} failed, {counts[2]} skipped")
            totals = [total + count for total, count in zip(totals, counts)]
        if code == NO_TESTS_COLLECTED:
            print(f"{name}: FAILED: pytest collected no tests")
        elif code != 0:
            print(f"{name}: FAILED: pytest exited {code}")
    if postgres_skipped:
        print(postgres_skipped)
    print(f"total: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped")
    sys.exit(0 if all(code == 0 for code in exit_codes.values()) else 1)


@dataclass
class Pass:
    name: str
    database_url: str
    pytest_args: list[str]
    settings: str = "tests.settings"
    extra_env: dict[str, str] = field(default_factory=dict)


def run_passes(passes: list[Pass], workers: int, together: bool) -> dict[str, int]:
    """Run the passes, each spread over ``workers`` pytest-xdist processes; return each one's pytest exit code.

    Together (the default), every pass starts at once: the first prints to the terminal as it
    runs, the others write to ``.test-results/<name>.log``, printed whole when each is done.
    Each pass has its own databases (pytest-django's ``test_<name>_gw<N>`` per process on PostgreSQL,
    in-memory SQLite per process) and its own screenshots folder, so nothing is shared between them.
    """
    exit_codes: dict[str, int] = {}
    if not together:
        for item in passes:
            exit_codes[item.name] = start_pass(item, workers, log=None).wait()
        return exit_codes
    running = []
    for index, item in enumerate(passes):
        log = None if index == 0 else RESULTS / f"{item.name}.log"
        running.append((item, log, start_pass(item, workers, log=log)))
    for item, log, process in running:
        exit_codes[item.name] = process.wait()
        if log is not None:
            print(f"\n=== {item.name}: its output ({log.relative_to(REPO)}) ===", flush=True)
            sys.stdout.write(log.read_text(errors="replace"))
            sys.stdout.flush()
    return exit_codes


def start_pass(item: Pass, workers: int, log: Path | None) -> subprocess.Popen:
    report = RESULTS / f"{item.name}.xml"
    report.unlink(missing_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": item.database_url,
        "DJANGO_SETTINGS_MODULE": item.settings,
        # Each pass its own screenshots folder: passes running together never write the same file.
        "OMNIMAN_SCREENSHOTS": os.environ.get("OMNIMAN_SCREENSHOTS") or str(RESULTS / "screenshots" / item.name),
        **item.extra_env,
    }
    # Let Python cache bytecode (and pytest its rewritten test modules) in __pycache__: with
    # PYTHONDONTWRITEBYTECODE set, every pass (and every subprocess a test starts) compiles it all again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    left_out = [
        what
        for variable, what in ((DATABASE_ONLY, "database-independent tests"), (BROWSER_ELSEWHERE, "browser tests not marked postgres"))
        if env.get(variable) == "1"
    ]
    note = f", {' and '.join(left_out)} left out (they ran in the SQLite pass)" if left_out else ""
    where = f"; output to {log.relative_to(REPO)}" if log is not None else ""
    print(
        f"\n=== {item.name}: pytest with DATABASE_URL={redact(item.database_url)}, {item.settings}{note}{where} ===",
        flush=True,
    )
    command = [sys.executable, "-m", "pytest", *xdist_args(item.pytest_args, workers), *item.pytest_args, f"--junitxml={report}"]
    if log is None:
        return subprocess.Popen(command, cwd=REPO, env=env)
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def default_workers() -> int:
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value:
        try:
            return max(0, int(value))
        except ValueError:
            sys.exit(f"ERROR: {WORKERS_ENV} must be a whole number, not {value!r}")
    return max(2, os.cpu_count() or 1)


def xdist_args(pytest_args: list[str], workers: int) -> list[str]:
    """``-n N`` for pytest-xdist, unless there is one worker or the caller chose (``-n …``, ``-p no:xdist``)."""
    chosen = any(arg in ("-n", "--numprocesses", "no:xdist", "-pno:xdist") or arg.startswith(("-n", "--numprocesses=")) for arg in pytest_args)
    if workers <= 1 or chosen:
        return []
    return ["-n", str(workers)]


def ensure_chromium() -> None:
    """Browser tests drive Debian's chromium; install it when possible."""
    if os.path.exists(CHROMIUM) or not any((REPO / "tests" / "e2e").rglob("test_*.py")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"NOTE: {CHROMIUM} is missing (Debian package 'chromium'); browser tests will be skipped.")
        return
    print(f"Browser tests need {CHROMIUM}; installing Debian's chromium package:", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]):
        print("+ " + " ".join(command), flush=True)
        if subprocess.run(command, env=env).returncode != 0:
            print("WARNING: could not install chromium; browser tests will be skipped.")
            return


def ensure_pgbouncer() -> None:
    """The database-restart tests also run the engine behind Debian's PgBouncer; install it when possible."""
    if os.path.exists(PGBOUNCER) or shutil.which("pgbouncer"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(f"NOTE: {PGBOUNCER} is missing (Debian package 'pgbouncer'); the PgBouncer tests will be skipped.")
        return
    print("The PgBouncer tests need pgbouncer; installing Debian's pgbouncer package:", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "pgbouncer"]):
        print("+ " + " ".join(command), flush=True)
        if subprocess.run(command, env=env).returncode != 0:
            print("WARNING: could not install pgbouncer; the PgBouncer tests will be skipped.")
            return


def ensure_gettext() -> None:
    """The catalogue test runs makemessages, which needs GNU gettext (Debian package 'gettext')."""
    if shutil.which("xgettext") and shutil.which("msguniq"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("NOTE: GNU gettext is missing (Debian package 'gettext'); the makemessages test will be skipped.")
        return
    print("The translation catalogue test needs GNU gettext; installing Debian's gettext package:", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "gettext"]):
        print("+ " + " ".join(command), flush=True)
        if subprocess.run(command, env=env).returncode != 0:
            print("WARNING: could not install gettext; the makemessages test will be skipped.")
            return


def probe_postgres(url: str) -> str | None:
    """Try a 3-second connection; return why it failed, or None if it worked."""
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        return f"not a PostgreSQL URL (engine {config['ENGINE']})"
    params = {
        "dbname": config.get("NAME"),
        "user": config.get("USER"),
        "password": config.get("PASSWORD"),
        "host": config.get("HOST"),
        "port": config.get("PORT"),
    }
    try:
        with psycopg.connect(connect_timeout=3, **{key: value for key, value in params.items() if value}):
            return None
    except psycopg.Error as exc:
        return " ".join(str(exc).split()) or type(exc).__name__


def junit_counts(report) -> tuple[int, int, int] | None:
    """(passed, failed, skipped) from a pytest JUnit XML report; errors count as failed."""
    if not report.exists():
        return None
    outcomes: dict[tuple[str | None, str | None], set[str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        # A test that fails and then errors in teardown is reported twice.
        key = (case.get("classname"), case.get("name"))
        outcomes.setdefault(key, set()).update(child.tag for child in case)
    failed = sum(1 for tags in outcomes.values() if tags & {"failure", "error"})
    skipped = sum(1 for tags in outcomes.values() if "skipped" in tags and not tags & {"failure", "error"})
    return len(outcomes) - failed - skipped, failed, skipped


def redact(url: str) -> str:
    """The URL with its password hidden, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def banner(message: str, detail: str) -> None:
    line = "!" * min(len(message), 100)
    print(f"\n{line}\n{message}\n  ({detail})\n{line}\n", flush=True)


if __name__ == "__main__":
    main()
