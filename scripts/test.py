#!/usr/bin/env python3
"""Run the whole test suite twice (on SQLite, then on PostgreSQL), then the no-contrib pass.

    python3 scripts/test.py [--sqlite-only | --postgres-only] [--no-nocontrib] [--require-postgres] [pytest args...]

The third, shorter pass ("nocontrib") runs the kernel, operator-app and API
suites on SQLite with tests.settings_nocontrib, which installs no
``omniman.contrib`` app: every contrib app is optional (a test that needs one
is skipped there, with the reason). --sqlite-only and --postgres-only leave it out.

When the SQLite pass runs too, the PostgreSQL pass leaves out the tests that cannot reach
the database (no django_db marker or database fixture, not marked postgres or deploy):
they ran identically on SQLite. Transactional tests end with tests/dbreset.py's
reset (DELETE, not TRUNCATE; the same rows as Django's flush).

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
    args, pytest_args = parser.parse_known_args()

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
    exit_codes = {}
    for name, url in passes:
        extra_env = {}
        if name == "postgres" and any(other == "sqlite" for other, _ in passes):
            # The tests that cannot reach the database ran identically in the SQLite pass.
            extra_env[DATABASE_ONLY] = "1"
        exit_codes[name] = run_pass(name, url, pytest_args, extra_env=extra_env)
        if extra_env and exit_codes[name] == NO_TESTS_COLLECTED:
            exit_codes[name] = 0  # the selection had only database-independent tests: they ran on SQLite
    if not (args.sqlite_only or args.postgres_only or args.no_nocontrib):
        url = f"sqlite:///{REPO / '.test-db-nocontrib.sqlite3'}"
        # The caller's options (-x, -k …) apply; its test paths, if any, replace the default selection.
        paths = [arg for arg in pytest_args if not arg.startswith("-") and (REPO / arg.split("::")[0]).exists()]
        options = [arg for arg in pytest_args if arg not in paths]
        selection = (paths + NOCONTRIB_ARGS[2:]) if paths else NOCONTRIB_ARGS
        exit_codes["nocontrib"] = run_pass("nocontrib", url, [*selection, *options], settings=NOCONTRIB_SETTINGS)

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


def run_pass(
    name: str, database_url: str, pytest_args: list[str], settings: str = "tests.settings", extra_env: dict | None = None
) -> int:
    report = RESULTS / f"{name}.xml"
    report.unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": settings, **(extra_env or {})}
    # Let Python cache bytecode (and pytest its rewritten test modules) in __pycache__: with
    # PYTHONDONTWRITEBYTECODE set, every pass (and every subprocess a test starts) compiles it all again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    note = ", database-independent tests left out (they ran in the SQLite pass)" if env.get(DATABASE_ONLY) == "1" else ""
    print(f"\n=== {name}: pytest with DATABASE_URL={redact(database_url)}, {settings}{note} ===", flush=True)
    command = [sys.executable, "-m", "pytest", *pytest_args, f"--junitxml={report}"]
    return subprocess.run(command, cwd=REPO, env=env).returncode


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
