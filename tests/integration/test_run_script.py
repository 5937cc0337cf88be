"""``scripts/run.py`` — the one run command — starts a directive worker beside the web server, and stops it with it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import spare_port

REPO = Path(__file__).resolve().parents[2]


def _heartbeats(path: Path) -> list[tuple[str, int]]:
    try:
        with sqlite3.connect(path) as db:
            return db.execute("SELECT name, pid FROM omniman_workerheartbeat").fetchall()
    except sqlite3.OperationalError:  # not migrated yet
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not running.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_run_py_starts_a_directive_worker_beside_the_server_and_stops_it(tmp_path):
    database = tmp_path / "run.sqlite3"
    port = int(os.environ.get("OMNIMAN_TEST_RUN_PORT") or spare_port())
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "config.settings"}
    log = tmp_path / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            [sys.executable, str(REPO / "scripts" / "run.py"), "--no-venv", "--no-seed", "--port", str(port)],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        beats: list[tuple[str, int]] = []
        while time.monotonic() < deadline and not beats and run.poll() is None:
            time.sleep(0.5)
            beats = _heartbeats(database)
        assert beats, log.read_text()[-3000:]
        (name, pid), = beats
        assert name.endswith(f":{pid}") and _alive(pid)
        assert run.poll() is None  # the server runs on
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
    # The worker stopped with it, and said so with its prefix.
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)
    text = log.read_text()
    assert "[worker] process_directives: watching" in text, text[-3000:]


def test_run_py_documents_its_worker():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "run.py"), "--help"], capture_output=True, text=True, cwd=REPO)
    text = " ".join(result.stdout.split())
    assert result.returncode == 0 and "--no-worker" in text and "process_directives --watch" in text
