#!/usr/bin/env python3
"""Prove the Dockerfile's steps without Docker, then serve and probe the result.

    python3 scripts/deploy_check.py [--postgres-url URL] [--keep]

In a temporary directory: copy the files the Dockerfile copies (APP_FILES),
create a fresh virtual environment, ``pip install`` the project into it (not
editable, as the image does), then with production settings (DEBUG off, a
random SECRET_KEY, ALLOWED_HOSTS, JSON logs):

1. ``manage.py check --deploy --fail-level WARNING`` reports no issue;
2. the WSGI entry point refuses to start without SECRET_KEY and ALLOWED_HOSTS;
3. ``collectstatic --noinput`` writes hashed, compressed files;
4. ``migrate`` runs against a scratch database: a new PostgreSQL database next
   to ``--postgres-url`` (dropped afterwards), or SQLite with
   ``OMNIMAN_ALLOW_SQLITE_IN_PRODUCTION=1`` when no URL is given;
5. gunicorn starts with ``gunicorn.conf.py`` on a free port, and answers:
   ``/healthz`` over plain http (200, ``"ok"``); the login page redirected to
   https, and over "https" (``X-Forwarded-Proto``) with the security headers
   and the CSP; its stylesheet hashed, gzip-encoded, cached forever; the admin
   login with the admin's CSP; an unknown Host refused; no query string in the
   access log;
6. SIGTERM stops it cleanly.

Standard library only. Exits 0 when every step passed, 1 otherwise; prints
each step with its duration.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
# What the Dockerfile COPYs, in its order (tests/integration/test_deploy.py keeps the two in step).
APP_FILES = ["pyproject.toml", "README.md", "omniman", "manage.py", "gunicorn.conf.py", "config", "templates", "static"]
HOST = "omniman.example"
# Variables of the calling shell that must not leak into the production run.
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class CheckFailed(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("OMNIMAN_DEPLOY_CHECK_POSTGRES_URL", ""),
        help="a PostgreSQL server to create the scratch database <name>_deploy_check_<pid> on (SQLite without it)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="omniman-deploy-check-"))
    check = DeployCheck(work, args.postgres_url)
    try:
        check.run()
    except CheckFailed as exc:
        print(f"\nFAILED: {exc}", flush=True)
        return 1
    finally:
        check.cleanup()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ndeploy check passed in {time.monotonic() - started:.1f} s", flush=True)
    return 0


class DeployCheck:
    def __init__(self, work: Path, postgres_url: str):
        self.work = work
        self.app = work / "app"
        self.venv = work / "venv"
        self.python = self.venv / "bin" / "python"
        self.postgres_url = postgres_url
        self.scratch_db = ""
        self.server: subprocess.Popen | None = None
        self.server_log = work / "gunicorn.log"
        self.env = {key: os.environ[key] for key in KEPT_ENV if key in os.environ}
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "SECRET_KEY": secrets.token_urlsafe(64),
                "ALLOWED_HOSTS": HOST,
                "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
                "LOG_FORMAT": "json",
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )

    # -- steps -------------------------------------------------------------------------

    def run(self) -> None:
        self.step("copy the Dockerfile's files", self.copy_app)
        self.step("fresh venv + pip install . (not editable)", self.install)
        self.step("check --deploy: no warnings", self.check_deploy)
        self.step("refuses to start without SECRET_KEY / ALLOWED_HOSTS", self.check_refusal)
        self.step("collectstatic --noinput", self.collectstatic)
        self.step("scratch database + migrate", self.migrate)
        self.step("gunicorn -c gunicorn.conf.py up, /healthz ok", self.start_server)
        self.step("https redirect, security headers, CSP", self.check_pages)
        self.step("static files hashed, compressed, cached", self.check_static)
        self.step("SIGTERM stops gunicorn cleanly", self.stop_server)

    def step(self, title: str, function) -> None:
        print(f"- {title} ...", end=" ", flush=True)
        began = time.monotonic()
        function()
        print(f"ok ({time.monotonic() - began:.1f} s)", flush=True)

    def copy_app(self) -> None:
        self.app.mkdir()
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for name in APP_FILES:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, self.app / name, ignore=ignore)
            else:
                shutil.copy2(source, self.app / name)

    def install(self) -> None:
        self.command([sys.executable, "-m", "venv", str(self.venv)], env=os.environ)
        pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        self.command([str(self.python), "-m", "pip", "install", "-q", str(self.app)], env=pip_env, timeout=600)
        origin = self.command(
            [str(self.python), "-c", "import omniman, sys; print(omniman.__file__)"], cwd=self.work
        ).stdout.strip()
        if not origin.startswith(str(self.venv)):
            raise CheckFailed(f"omniman was not installed into the venv (imported from {origin})")

    def check_deploy(self) -> None:
        env = {**self.env, "DATABASE_URL": "postgres://omniman@db.invalid:5432/omniman"}
        result = self.manage("check", "--deploy", "--fail-level", "WARNING", env=env, check=False)
        output = result.stdout + result.stderr
        if result.returncode != 0 or "no issues" not in output:
            raise CheckFailed(f"manage.py check --deploy:\n{output}")

    def check_refusal(self) -> None:
        env = {key: value for key, value in self.env.items() if key not in {"SECRET_KEY", "ALLOWED_HOSTS"}}
        env["DATABASE_URL"] = "postgres://omniman@db.invalid:5432/omniman"
        result = self.command([str(self.python), "-c", "import config.wsgi"], env=env, check=False)
        if result.returncode == 0:
            raise CheckFailed("config.wsgi started without SECRET_KEY and ALLOWED_HOSTS")
        for expected in ("refuses to start", "SECRET_KEY", "ALLOWED_HOSTS"):
            if expected not in result.stderr:
                raise CheckFailed(f"the refusal does not say {expected!r}:\n{result.stderr}")

    def collectstatic(self) -> None:
        # As the Dockerfile's build step: a placeholder key, no hosts, a throw-away database.
        build_env = {key: value for key, value in self.env.items() if key != "ALLOWED_HOSTS"}
        build_env.update(SECRET_KEY="collectstatic-at-build-time-only", DATABASE_URL=f"sqlite:///{self.work / 'build.sqlite3'}")
        self.manage("collectstatic", "--noinput", env=build_env)
        manifest = self.app / "staticfiles" / "staticfiles.json"
        if not manifest.exists():
            raise CheckFailed("collectstatic wrote no staticfiles.json (is the manifest storage on?)")

    def migrate(self) -> None:
        if self.postgres_url:
            parts = urlsplit(self.postgres_url)
            base = parts.path.lstrip("/") or "postgres"
            # Named after the URL's database; created from the server's maintenance database.
            self.admin_url = urlunsplit(parts._replace(path="/postgres"))
            self.admin_sql(f'CREATE DATABASE "{base}_deploy_check_{os.getpid()}"')
            self.scratch_db = f"{base}_deploy_check_{os.getpid()}"
            self.env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{self.scratch_db}"))
        else:
            self.env["DATABASE_URL"] = f"sqlite:///{self.work / 'db.sqlite3'}"
            self.env["OMNIMAN_ALLOW_SQLITE_IN_PRODUCTION"] = "1"
        self.manage("migrate", "--noinput")

    def start_server(self) -> None:
        self.port = free_port()
        env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "GUNICORN_WORKERS": "2"}
        self.log_file = self.server_log.open("w")
        self.server = subprocess.Popen(
            [str(self.venv / "bin" / "gunicorn"), "config.wsgi", "-c", "gunicorn.conf.py"],
            cwd=self.app,
            env=env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.server.poll() is not None:
                raise CheckFailed(f"gunicorn exited with {self.server.returncode}:\n{self.log()}")
            try:
                status, headers, body = self.get("/healthz?token=do-not-log-me")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise CheckFailed(f"gunicorn did not answer within 30 s:\n{self.log()}") from None
                time.sleep(0.2)
        report = json.loads(body)
        if status != 200 or report["status"] != "ok" or report["checks"]["migrations"]["pending"] != 0:
            raise CheckFailed(f"/healthz answered {status}: {body!r}")
        if not headers.get("content-type", "").startswith("application/json"):
            raise CheckFailed(f"/healthz is not JSON: {headers.get('content-type')}")

    def check_pages(self) -> None:
        status, headers, _ = self.get("/accounts/login/")
        if status != 301 or headers.get("location") != f"https://{HOST}/accounts/login/":
            raise CheckFailed(f"plain http was not redirected to https: {status} {headers.get('location')}")

        status, headers, body = self.get("/accounts/login/", https=True)
        if status != 200:
            raise CheckFailed(f"the login page answered {status}")
        expected = {
            "strict-transport-security": "max-age=31536000; includeSubDomains",
            "x-content-type-options": "nosniff",
            "x-frame-options": "DENY",
            "referrer-policy": "same-origin",
            "cross-origin-opener-policy": "same-origin",
        }
        for name, value in expected.items():
            if headers.get(name) != value:
                raise CheckFailed(f"{name}: expected {value!r}, got {headers.get(name)!r}")
        csp = headers.get("content-security-policy", "")
        if "script-src 'self';" not in csp or "unsafe" in csp or "frame-ancestors 'none'" not in csp:
            raise CheckFailed(f"unexpected Content-Security-Policy on the login page: {csp!r}")
        cookie = headers.get("set-cookie", "")
        if "csrftoken=" not in cookie or "Secure" not in cookie or "HttpOnly" not in cookie:
            raise CheckFailed(f"the CSRF cookie is not Secure and HttpOnly: {cookie!r}")
        match = re.search(r'href="(/static/css/login\.[0-9a-f]{12}\.css)"', body)
        if not match:
            raise CheckFailed("the login page does not link a hashed stylesheet (login.<hash>.css)")
        self.stylesheet = match.group(1)

        status, headers, _ = self.get("/admin/login/", https=True)
        admin_csp = headers.get("content-security-policy", "")
        if status != 200 or "'unsafe-eval'" not in admin_csp:
            raise CheckFailed(f"the admin login answered {status} with CSP {admin_csp!r}")

        status, _, _ = self.get("/healthz", host="evil.example")
        if status != 400:
            raise CheckFailed(f"a Host outside ALLOWED_HOSTS answered {status}, not 400")

    def check_static(self) -> None:
        status, headers, _ = self.get(self.stylesheet, https=True, extra={"Accept-Encoding": "gzip"})
        if status != 200:
            raise CheckFailed(f"{self.stylesheet} answered {status}")
        if headers.get("content-encoding") != "gzip":
            raise CheckFailed(f"{self.stylesheet} is not served compressed: {headers.get('content-encoding')!r}")
        cache = headers.get("cache-control", "")
        if "immutable" not in cache or "max-age=315360000" not in cache:
            raise CheckFailed(f"{self.stylesheet} is not cached forever: {cache!r}")

    def stop_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGTERM)
        try:
            code = self.server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            raise CheckFailed("gunicorn did not stop within 40 s of SIGTERM") from None
        self.log_file.close()
        log = self.log()
        if code != 0:
            raise CheckFailed(f"gunicorn exited with {code} on SIGTERM:\n{log}")
        if "do-not-log-me" in log:
            raise CheckFailed("the access log recorded a query string")
        access = [json.loads(line) for line in log.splitlines() if line.startswith("{") and '"gunicorn.access"' in line]
        if not any("/healthz" in entry.get("message", "") for entry in access):
            raise CheckFailed(f"no JSON access log line for /healthz:\n{log}")

    # -- helpers -----------------------------------------------------------------------

    def get(self, path: str, *, https: bool = False, host: str = HOST, extra: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"Host": host, **(extra or {})}
        if https:
            headers["X-Forwarded-Proto"] = "https"
        try:
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.getheader("Content-Encoding") != "gzip":
                body = body.decode("utf-8", "replace")
            return response.status, {k.lower(): v for k, v in response.getheaders()}, body
        finally:
            connection.close()

    def manage(self, *args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self.command([str(self.python), "manage.py", *args], env=env or self.env, check=check)

    def command(self, argv, *, env=None, cwd=None, check=True, timeout=180) -> subprocess.CompletedProcess:
        result = subprocess.run(
            argv, cwd=cwd or self.app, env=env or self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise CheckFailed(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def admin_sql(self, sql: str) -> None:
        """Run one statement on the PostgreSQL server (with the fresh venv's psycopg, autocommit)."""
        code = "import psycopg, sys\nwith psycopg.connect(sys.argv[1], autocommit=True) as c: c.execute(sys.argv[2])"
        self.command([str(self.python), "-c", code, self.admin_url, sql], env={**self.env}, cwd=self.work)

    def log(self) -> str:
        return self.server_log.read_text(errors="replace") if self.server_log.exists() else ""

    def cleanup(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
            self.server.wait()
        if self.scratch_db:
            try:
                self.admin_sql(f'DROP DATABASE IF EXISTS "{self.scratch_db}" WITH (FORCE)')
            except CheckFailed as exc:
                print(f"WARNING: could not drop the scratch database {self.scratch_db}: {exc}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    sys.exit(main())
