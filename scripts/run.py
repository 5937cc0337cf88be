#!/usr/bin/env python3
"""Run Omniman locally: set up .venv, migrate, load demo data, serve.

    python3 scripts/run.py [--host 127.0.0.1] [--port 8000]

Uses the SQLite database db.sqlite3 unless DATABASE_URL is set. DEBUG
defaults to 1 here (set DEBUG=0 to override).
"""

from __future__ import annotations

import argparse
import os
import sys

import _bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default 8000)")
    args = parser.parse_args()

    _bootstrap.ensure_venv()

    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    manage = [sys.executable, str(_bootstrap.REPO / "manage.py")]

    _bootstrap.run_or_exit([*manage, "migrate", "--noinput"])
    _bootstrap.run_or_exit([*manage, "seed_demo"])
    host = f"[{args.host}]" if ":" in args.host else args.host  # IPv6 literal
    os.chdir(_bootstrap.REPO)
    os.execv(sys.executable, [*manage, "runserver", f"{host}:{args.port}"])


if __name__ == "__main__":
    main()
