"""Servers a test starts for itself: a throwaway PostgreSQL (initdb in a temporary folder, a spare
port) it may restart at will, and a PgBouncer in transaction pooling mode in front of any PostgreSQL.

As root, both run as the ``postgres`` user (initdb and pgbouncer refuse root), through ``runuser``.
Callers skip when the binaries are missing (``scripts/test.py`` installs Debian's pgbouncer).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

PGBOUNCER_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def spare_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bindir() -> Path | None:
    """Debian's newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl, else the PATH's."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if candidates:
        return Path(candidates[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def pgbouncer_binary() -> str | None:
    return next((p for p in PGBOUNCER_PATHS if os.path.exists(p)), None) or shutil.which("pgbouncer")


def _as_service_user(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def wait_until_connectable(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class ThrowawayPostgres:
    """A PostgreSQL cluster of its own (trust auth on 127.0.0.1, fsync off), for tests that stop it."""

    def __init__(self) -> None:
        self.bindir = postgres_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="omniman-pg-"))
        self.root.chmod(0o755)
        _own(self.root)
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = spare_port()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bindir / "pg_ctl"), "-D", str(self.data), *args]
        return subprocess.run(_as_service_user(command), capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> None:
        command = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        subprocess.run(_as_service_user(command), capture_output=True, text=True, check=True, timeout=120)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n"
            )

    def start(self) -> None:
        self._pg_ctl("-l", str(self.log), "-w", "-t", "30", "start")
        wait_until_connectable(self.url())

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "-t", "30", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class PgBouncer:
    """PgBouncer in transaction pooling mode on a spare port, in front of ``host:port`` (every database).

    ``CLIENT_ENV`` is what a process behind it sets, as ``docs/deployment/production.rst`` tells a
    deployment to: no prepared statements, which transaction pooling before PgBouncer 1.21 (Debian 12
    ships 1.18) cannot keep.
    """

    CLIENT_ENV = {"DATABASE_PREPARED_STATEMENTS": "0"}

    def __init__(self, host: str, port: int, *, user: str = "postgres", password: str = "", pool_size: int = 10) -> None:
        self.binary = pgbouncer_binary()
        self.root = Path(tempfile.mkdtemp(prefix="omniman-pgbouncer-"))
        self.root.chmod(0o755)
        self.port = spare_port()
        self.log = self.root / "pgbouncer.log"
        self.user, self.password = user, password
        (self.root / "userlist.txt").write_text(f'"{user}" "{password}"\n')
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            f"auth_type = {'plain' if password else 'trust'}\n"
            f"auth_file = {self.root / 'userlist.txt'}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 200\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            "server_login_retry = 1\n"
            "query_wait_timeout = 10\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.root / 'pgbouncer.pid'}\n"
            f"admin_users = {user}\n"
        )
        for path in (self.root, *self.root.iterdir()):
            _own(path)
        self.process: subprocess.Popen | None = None

    def url(self, dbname: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        return f"postgres://{auth}@127.0.0.1:{self.port}/{dbname}"

    def start(self, dbname: str = "postgres") -> None:
        self.process = subprocess.Popen(
            _as_service_user([self.binary, str(self.root / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_connectable(self.url(dbname))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # runuser passes SIGTERM on to pgbouncer
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
