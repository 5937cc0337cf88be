"""Set up the project's ``.venv`` and re-run the calling script inside it.

Standard library only: this runs under whatever ``python3`` the user has.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
MIN_PYTHON = (3, 11)


def ensure_venv(extra: str = "") -> None:
    """Make sure ``.venv`` holds the project (with ``extra``), then run in it.

    Creates ``.venv`` if missing; runs ``pip install -e .[extra]`` when
    ``pyproject.toml`` changed since the last install for that extra (a stamp
    file holds its sha256); re-executes the current script under
    ``.venv/bin/python`` unless already running there. Returns only when the
    current process is the venv's Python.
    """
    if sys.version_info < MIN_PYTHON:
        sys.exit(f"Omniman needs Python {'.'.join(map(str, MIN_PYTHON))}+; this is {sys.version.split()[0]}.")

    if not VENV_PYTHON.exists():
        print(f"Creating virtual environment in {VENV} ...", flush=True)
        run_or_exit([sys.executable, "-m", "venv", str(VENV)])

    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / f".omniman-install-{extra or 'base'}"
    if not stamp.exists() or stamp.read_text().strip() != digest:
        target = f".[{extra}]" if extra else "."
        print(f"Installing the project into .venv (pip install -e '{target}') ...", flush=True)
        run_or_exit(
            [str(VENV_PYTHON), "-m", "pip", "install", "-q", "-e", target],
            env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        )
        stamp.write_text(digest + "\n")

    if not in_venv():
        script = Path(sys.argv[0]).resolve()
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(script), *sys.argv[1:]])


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def run_or_exit(command: list[str], **kwargs) -> None:
    """Run ``command`` in the repository root; exit with its code if it fails."""
    result = subprocess.run(command, cwd=REPO, **kwargs)
    if result.returncode != 0:
        sys.exit(f"Command failed (exit {result.returncode}): {' '.join(command)}")
