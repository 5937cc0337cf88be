"""What the browser benchmarks share: gunicorn on the scratch database, chromium through Playwright.

``bench_pos_tap.py`` and ``bench_send_to_board.py`` run the project's own
``gunicorn.conf.py`` (2 sync workers unless ``GUNICORN_WORKERS`` says
otherwise, DEBUG off, collected static files served by WhiteNoise) on the
scratch PostgreSQL database that :func:`benchmarks.scratch.run_on_scratch_database`
made, with its access log (``%(M)s``: server milliseconds per request) in a
file the benchmark reads afterwards, and Debian's ``/usr/bin/chromium``.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) \S+ (?P<ms>\d+)ms')


def free_port() -> int:
    port = os.environ.get("BENCH_PORT")
    if port:
        return int(port)
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def collect_static() -> None:
    """The manifest WhiteNoise serves with DEBUG off (``staticfiles/``, ignored by git)."""
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=REPO,
        check=True,
        env={**os.environ, "DEBUG": "0", "SECRET_KEY": "collectstatic-only-" + "x" * 40},
    )


@contextmanager
def gunicorn(port: int, *, env: dict[str, str] | None = None):
    """gunicorn with the repository's ``gunicorn.conf.py``; yields the access log's path."""
    log = Path(tempfile.mkstemp(prefix="omniman-bench-access-", suffix=".log")[1])
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": HOST,
        # Plain http on the loopback: no redirect to https, cookies without Secure.
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "GUNICORN_WORKERS": os.environ.get("GUNICORN_WORKERS", "2"),
        "GUNICORN_BIND": f"{HOST}:{port}",
        "GUNICORN_MAX_REQUESTS": "0",  # no worker recycled in the middle of a measurement
        # Persistent database connections, as compose.yaml runs the app (0 opens one per request).
        "CONN_MAX_AGE": os.environ.get("CONN_MAX_AGE", "60"),
        "LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    command = [str(Path(sys.executable).with_name("gunicorn")), "config.wsgi:application", "-c", "gunicorn.conf.py",
               "--access-logfile", str(log), "--error-logfile", str(log.with_suffix(".err"))]
    process = subprocess.Popen(command, cwd=REPO, env=environ)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                sys.exit(f"gunicorn exited with {process.returncode}: see {log.with_suffix('.err')}")
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("gunicorn did not start within 30 s")
                time.sleep(0.2)
        yield log
    finally:
        process.terminate()
        process.wait(timeout=30)


def close_other_connections() -> None:
    """End the other connections to the scratch database, so it can be dropped (call it last).

    The ORM calls made while Playwright's loop runs have a connection of their
    own (another context for Django's connection handler), still open here.
    """
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()  # the next query opens a fresh one


def server_times(log: Path, pattern: str, *, since: int = 0) -> list[tuple[str, int, float]]:
    """(path, status, ms) of the access log's requests whose path matches ``pattern``, from byte ``since``."""
    text = log.read_text()[since:]
    regex = re.compile(pattern)
    return [
        (m["path"], int(m["status"]), float(m["ms"]))
        for m in ACCESS.finditer(text)
        if regex.search(m["path"])
    ]


@contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the benchmark's ORM calls beside Playwright's loop
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def login(page, base_url: str, username: str, password: str, next_url: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    if "/accounts/login/" in page.url:
        sys.exit(f"could not sign in as {username!r}")


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(int(round(len(ordered) * p)) - 1, 0)]


def summary(name: str, samples: list[float], target: float | None = None, unit: str = "ms") -> bool:
    if not samples:
        print(f"{name:<34} no samples")
        return False
    p50, p95, worst = statistics.median(samples), percentile(samples, 0.95), max(samples)
    verdict, ok = "", True
    if target is not None:
        ok = p95 <= target
        verdict = f"   target p95 ≤ {target:g} {unit}: {'PASS' if ok else 'FAIL'} (p95/target {p95 / target:.2f})"
    print(f"{name:<34} p50 {p50:7.1f} {unit}   p95 {p95:7.1f} {unit}   max {worst:7.1f} {unit}   n={len(samples)}{verdict}")
    return ok


def reference_ms() -> float:
    """The machine's speed this minute: ``sum(range(10**6))``, best of 5."""
    import timeit

    return min(timeit.repeat("sum(range(10**6))", number=5, repeat=5)) / 5 * 1000


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
