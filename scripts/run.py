#!/usr/bin/env python3
"""Run Omniman locally: set up .venv, migrate, load demo data, serve — with a directive worker beside the server.

    python3 scripts/run.py [--host 127.0.0.1] [--port 8000] [--days N] [--no-worker]

Uses the SQLite database db.sqlite3 unless DATABASE_URL is set. DEBUG
defaults to 1 here (set DEBUG=0 to override).

Two processes run, children of this one: the web server (``manage.py
runserver``) and the directive worker (``manage.py process_directives
--watch``: stock, tickets, receipts, notifications), its output prefixed
``[worker]``. Ctrl-C (or SIGTERM) stops both; if this process is killed
outright, the kernel stops them too (Linux). A worker that exits on its own
is restarted after a pause (at most 5 times a minute); when the web server
exits, the worker is stopped and this command exits with the server's code.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

import _bootstrap

WORKER_PREFIX = "[worker] "
RESTARTS_PER_MINUTE = 5


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when this process dies (even by SIGKILL)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the signal handlers below still stop the children
        pass


def _pipe(stream, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


class Worker:
    """The directive worker as a child process, restarted when it exits on its own."""

    def __init__(self, command: list[str]):
        self.command = command
        self.process: subprocess.Popen | None = None
        self.stopping = False
        self.starts: list[float] = []

    def start(self) -> None:
        self.starts = [t for t in self.starts if t > time.monotonic() - 60] + [time.monotonic()]
        self.process = subprocess.Popen(
            self.command, cwd=_bootstrap.REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            bufsize=1, preexec_fn=_die_with_parent,
        )
        threading.Thread(target=_pipe, args=(self.process.stdout, WORKER_PREFIX), daemon=True).start()

    def watch(self) -> None:
        """Restart the worker when it exits without being asked to (a thread)."""
        while not self.stopping:
            code = self.process.wait()
            if self.stopping:
                return
            if len(self.starts) >= RESTARTS_PER_MINUTE:
                print(f"{WORKER_PREFIX}exited with code {code} {RESTARTS_PER_MINUTE} times in a minute: not restarted. "
                      "Directives are not being processed; start one with `python manage.py process_directives --watch`.",
                      flush=True)
                return
            print(f"{WORKER_PREFIX}exited with code {code}; restarting in 2 s", flush=True)
            time.sleep(2)
            if not self.stopping:
                self.start()

    def stop(self) -> None:
        self.stopping = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # the worker finishes its directive and exits (SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    parser.add_argument("--days", type=int, default=0, help="also seed N days of history (seed_demo --days N; default 0)")
    parser.add_argument("--no-worker", action="store_true", help="do not start the directive worker")
    parser.add_argument("--no-seed", action="store_true", help="do not load the demo data")
    parser.add_argument("--no-venv", action="store_true", help="run with this Python as it is (no .venv setup)")
    args = parser.parse_args()

    if not args.no_venv:
        _bootstrap.ensure_venv()

    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    manage = [sys.executable, str(_bootstrap.REPO / "manage.py")]

    _bootstrap.run_or_exit([*manage, "migrate", "--noinput"])
    if not args.no_seed:
        _bootstrap.run_or_exit([*manage, "seed_demo", *(["--days", str(args.days)] if args.days else [])])
    host = f"[{args.host}]" if ":" in args.host else args.host  # IPv6 literal
    os.chdir(_bootstrap.REPO)

    worker = None if args.no_worker else Worker([*manage, "process_directives", "--watch"])
    server = subprocess.Popen([*manage, "runserver", f"{host}:{args.port}"], cwd=_bootstrap.REPO, preexec_fn=_die_with_parent)

    def stop(signum, frame):
        if worker is not None:
            worker.stopping = True
        if server.poll() is None:
            server.send_signal(signal.SIGINT if signum == signal.SIGINT else signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if worker is not None:
        worker.start()
        threading.Thread(target=worker.watch, daemon=True).start()
    try:
        code = server.wait()
    finally:
        if worker is not None:
            worker.stop()
    sys.exit(code)


if __name__ == "__main__":
    main()
