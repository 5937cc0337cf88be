"""Production settings: refusals (I9/I10 in practice), check --deploy, security headers, CSP, /healthz, logs."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connection
from django.test import override_settings
from django.utils import timezone

from omniman import checks
from omniman.logs import REDACTED, JSONFormatter, PlainFormatter
from omniman.models import Directive, WorkerHeartbeat
from omniman.services import CommitService, ModifyService, SessionService
from tests.factories import make_channel

REPO = Path(__file__).resolve().parents[2]
STRONG_KEY = "x7Jq2mP9vL4wR8tK1nB6cF3hD5gZ0sA-yE_uI9oQ2pW4rT6eY8uI0oP1aS3dF5gH"
pytestmark = pytest.mark.django_db

BASE_ENV_DROPPED = (
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "LOG_FORMAT", "DATABASE_PREPARED_STATEMENTS",
)


def run_project(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with config.settings and exactly the given variables on top."""
    base = {k: v for k, v in os.environ.items() if k not in BASE_ENV_DROPPED and not k.startswith(("OMNIMAN_", "SECURE_"))}
    full = {**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=full, capture_output=True, text=True, timeout=60)


def messages(check) -> list[tuple[str, str]]:
    return [(m.id, f"{m.msg} {m.hint}") for m in check()]


# -- refusals ---------------------------------------------------------------------------


@override_settings(DEBUG=False, SECRET_KEY=checks.DEV_SECRET_KEY)
def test_default_secret_key_is_refused_with_debug_off():
    [(code, text)] = messages(checks.check_secret_key)
    assert code == "omniman.E003" and "SECRET_KEY" in text and "get_random_secret_key" in text
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        checks.enforce_startup_checks()


@pytest.mark.parametrize(
    "key",
    ["short-but-random-Q9z", "a" * 80, "django-insecure-" + STRONG_KEY],
    ids=["too-short", "too-few-distinct-characters", "django-insecure-prefix"],
)
def test_weak_secret_key_is_refused_with_debug_off(key):
    with override_settings(DEBUG=False, SECRET_KEY=key):
        [(code, text)] = messages(checks.check_secret_key)
        assert code == "omniman.E004" and "SECRET_KEY" in text and "50" in text
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
            checks.enforce_startup_checks()


def test_strong_secret_key_passes_and_debug_accepts_anything():
    with override_settings(DEBUG=False, SECRET_KEY=STRONG_KEY):
        assert checks.check_secret_key() == []
    with override_settings(DEBUG=True, SECRET_KEY=checks.DEV_SECRET_KEY):
        assert checks.check_secret_key() == []


def test_empty_allowed_hosts_is_refused_with_debug_off():
    with override_settings(DEBUG=False, ALLOWED_HOSTS=[]):
        [(code, text)] = messages(checks.check_allowed_hosts)
        assert code == "omniman.E005" and "ALLOWED_HOSTS=" in text
        with pytest.raises(ImproperlyConfigured, match="ALLOWED_HOSTS"):
            checks.enforce_startup_checks()
    with override_settings(DEBUG=True, ALLOWED_HOSTS=[]):
        assert checks.check_allowed_hosts() == []


def test_the_development_key_is_the_one_the_settings_use():
    from config import settings as project_settings

    assert project_settings.DEV_SECRET_KEY == checks.DEV_SECRET_KEY


def test_wsgi_refuses_to_start_naming_every_variable_to_set():
    result = run_project("import config.wsgi", DATABASE_URL="sqlite:///:memory:")
    assert result.returncode != 0
    for name in ("refuses to start", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "OMNIMAN_ALLOW_SQLITE_IN_PRODUCTION"):
        assert name in result.stderr, name


def test_wsgi_starts_with_production_settings():
    result = run_project(
        "import config.wsgi; print('started')",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="orders.example.com",
        DATABASE_URL="sqlite:///:memory:",
        OMNIMAN_ALLOW_SQLITE_IN_PRODUCTION="1",
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_allowed_hosts_default_to_localhost_only_in_development():
    code = "from django.conf import settings; print(settings.ALLOWED_HOSTS, settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS)"
    assert run_project(code).stdout.strip() == "[] True 31536000"
    assert run_project(code, DEBUG="1").stdout.strip() == "['localhost', '127.0.0.1'] False 0"
    assert run_project(code, ALLOWED_HOSTS="a.example, b.example", SECURE_SSL_REDIRECT="0").stdout.strip() == (
        "['a.example', 'b.example'] False 31536000"
    )


def test_check_deploy_has_no_warnings_with_production_settings():
    result = run_project(
        "from django.core.management import execute_from_command_line as run; "
        "run(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="orders.example.com",
        DATABASE_URL="postgres://omniman@db.invalid:5432/omniman",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_fails_on_the_development_defaults():
    result = run_project(
        "from django.core.management import execute_from_command_line as run; "
        "run(['manage.py', 'check', '--deploy', '--fail-level', 'WARNING'])",
        DATABASE_URL="postgres://omniman@db.invalid:5432/omniman",
    )
    assert result.returncode != 0
    for code in ("omniman.E003", "omniman.E005"):
        assert code in result.stderr


def test_proxy_ssl_header_is_read_from_the_environment():
    code = "from django.conf import settings; print(settings.SECURE_PROXY_SSL_HEADER)"
    assert run_project(code).stdout.strip() == "None"
    assert run_project(code, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto").stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')"
    assert run_project(code, SECURE_PROXY_SSL_HEADER="X-Scheme,on").stdout.strip() == "('HTTP_X_SCHEME', 'on')"


def test_postgresql_prepares_statements_unless_turned_off():
    code = (
        "from django.conf import settings; o = settings.DATABASES['default'].get('OPTIONS', {}); "
        "print(o.get('server_side_binding'), o.get('prepare_threshold'))"
    )
    postgres = "postgres://omniman@db.internal:5432/omniman"
    assert run_project(code, DATABASE_URL=postgres).stdout.strip() == "True 2"
    for off in ("0", "off", "false"):
        assert run_project(code, DATABASE_URL=postgres, DATABASE_PREPARED_STATEMENTS=off).stdout.strip() == "None None"
    assert run_project(code, DATABASE_URL="sqlite:////tmp/omniman-settings.sqlite3").stdout.strip() == "None None"


@pytest.mark.postgres
def test_the_suite_runs_with_prepared_statements_on_postgresql():
    """tests.settings keeps the production default: a statement run twice on a connection is prepared there."""
    with connection.cursor() as cursor:
        for _ in range(3):
            cursor.execute("SELECT %s::integer + 41", [1])
            assert cursor.fetchone() == (42,)
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement = 'SELECT $1::integer + 41'")
        assert cursor.fetchone() == (1,)


def test_production_serves_hashed_compressed_static_files_and_tests_do_not():
    code = "from django.conf import settings; print(settings.STORAGES['staticfiles']['BACKEND'])"
    assert run_project(code).stdout.strip() == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert run_project(code, DEBUG="1").stdout.strip() == "django.contrib.staticfiles.storage.StaticFilesStorage"
    from django.conf import settings

    middleware = settings.MIDDLEWARE
    assert middleware[:2] == ["django.middleware.security.SecurityMiddleware", "whitenoise.middleware.WhiteNoiseMiddleware"]


# -- security headers and the CSP -------------------------------------------------------

BASE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)


def test_login_page_has_the_strict_csp_and_security_headers(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert response["Content-Security-Policy"] == BASE_CSP
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    body = response.content.decode()
    assert "<style" not in body and "<script>" not in body and "style=" not in body


def test_admin_alone_gets_the_relaxed_csp(client):
    admin = client.get("/admin/login/")["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-eval';" in admin and "style-src 'self' 'unsafe-inline';" in admin
    assert "frame-ancestors 'none'" in admin and "object-src 'none'" in admin
    assert client.get("/accounts/login/?next=/admin/")["Content-Security-Policy"] == BASE_CSP


@override_settings(SECURE_CSP_REPORT_ONLY=True)
def test_csp_report_only_mode(client):
    response = client.get("/accounts/login/")
    assert "Content-Security-Policy" not in response
    assert response["Content-Security-Policy-Report-Only"] == BASE_CSP


@override_settings(SECURE_SSL_REDIRECT=True)
def test_https_redirect_spares_healthz(client):
    login = client.get("/accounts/login/")
    assert login.status_code == 301 and login["Location"] == "https://testserver/accounts/login/"
    assert client.get("/healthz").status_code == 200


def test_operator_templates_have_no_inline_script_or_style():
    # The project's own overrides (templates/) and the templates each app ships in the package.
    templates = [*(REPO / "templates").rglob("*.html"), *(REPO / "omniman").rglob("templates/**/*.html")]
    assert len(templates) >= 9
    for path in templates:
        text = path.read_text()
        for forbidden in ("<script>", "<style", " style=", " onclick=", " onsubmit=", " onchange=", "javascript:"):
            assert forbidden not in text, f"{path.relative_to(REPO)} has {forbidden!r}"


# -- /healthz -------------------------------------------------------------------------


def test_healthz_ok_without_login(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"] == {"pending": 0}
    assert body["checks"]["directives"] == {
        "oldest_due_age_seconds": 0.0,
        "threshold_seconds": 300,
        "queued_due": 0,
        "failed": 0,
    }
    # No worker ever ran on this database: reported, not judged.
    assert body["checks"]["workers"] == {"last_seen_age_seconds": None, "alive": 0, "threshold_seconds": 120}


def test_healthz_degraded_when_the_oldest_due_directive_waits_too_long(client):
    now = timezone.now()
    Directive.objects.enqueue("test.noop", {}, available_at=now - timedelta(minutes=10))
    Directive.objects.enqueue("test.noop", {}, available_at=now - timedelta(seconds=30))
    Directive.objects.enqueue("test.noop", {}, available_at=now + timedelta(hours=1))  # not due yet
    Directive.objects.create(topic="test.noop", status=Directive.Status.FAILED, available_at=now - timedelta(days=1))
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    directives = body["checks"]["directives"]
    assert directives["queued_due"] == 2 and directives["failed"] == 1
    assert 590 <= directives["oldest_due_age_seconds"] <= 700
    with override_settings(OMNIMAN={"HEALTH_DIRECTIVE_AGE_SECONDS": 3600}):
        assert client.get("/healthz").json()["status"] == "ok"


def test_healthz_degraded_when_no_worker_was_seen_for_the_threshold(client):
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="web-1:41", host="web-1", pid=41, started_at=now - timedelta(hours=1), last_seen_at=now - timedelta(minutes=5))
    body = client.get("/healthz").json()
    assert body["status"] == "degraded"
    assert body["checks"]["workers"]["alive"] == 0 and 290 <= body["checks"]["workers"]["last_seen_age_seconds"] <= 400
    with override_settings(OMNIMAN={"HEALTH_WORKER_AGE_SECONDS": 0}):  # the check turned off
        assert client.get("/healthz").json()["status"] == "ok"
    WorkerHeartbeat.objects.beat("web-2:7")  # a live worker beside the dead one's row
    response = client.get("/healthz")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["checks"]["workers"]["alive"] == 1 and body["checks"]["workers"]["last_seen_age_seconds"] < 5


def test_healthz_error_when_migrations_are_pending(client, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("omniman.9999_next", False)])
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["checks"]["migrations"] == {"pending": 1}
    assert body["checks"]["database"]["ok"] is True and "directives" not in body["checks"]


def test_healthz_error_when_the_database_is_down(client, monkeypatch):
    from omniman.web import health

    class Broken:
        def cursor(self):
            raise DatabaseError("could not connect to server db.internal as omniman")

    monkeypatch.setattr(health, "connections", {"default": Broken()})
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body == {"status": "error", "checks": {"database": {"ok": False, "error": "DatabaseError"}}}
    assert "db.internal" not in response.content.decode()


def test_healthz_query_count_does_not_grow(client, django_assert_num_queries):
    with django_assert_num_queries(5):
        client.get("/healthz")
    for _ in range(20):
        Directive.objects.enqueue("test.noop", {})
        WorkerHeartbeat.objects.beat(f"host:{_}")
    with django_assert_num_queries(5):
        assert client.get("/healthz").status_code == 200


def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


# -- logs -----------------------------------------------------------------------------


def _record(message="payment", **extra) -> logging.LogRecord:
    record = logging.LogRecord("omniman.payment", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_json_formatter_writes_extra_fields_and_redacts_secrets():
    record = _record(
        "charged card 4111 1111 1111 1111 with Bearer abcdef123456",
        order_ref="ORD-1",
        channel="web",
        card_number="4111111111111111",
        payload={"token": "tok_live_123", "cvv": "123", "amount_q": 900, "nested": [{"password": "hunter2"}]},
        headers={"Authorization": "Basic dXNlcjpwYXNz", "Accept": "text/html"},
        SECRET_KEY="x" * 60,
        note="paid with 5500 0000 0000 0004",
        session_key="SESS-1",
    )
    line = JSONFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "INFO" and entry["logger"] == "omniman.payment"
    assert entry["order_ref"] == "ORD-1" and entry["channel"] == "web" and entry["session_key"] == "SESS-1"
    assert entry["card_number"] == REDACTED and entry["SECRET_KEY"] == REDACTED
    assert entry["payload"] == {"token": REDACTED, "cvv": REDACTED, "amount_q": 900, "nested": [{"password": REDACTED}]}
    assert entry["headers"] == {"Authorization": REDACTED, "Accept": "text/html"}
    assert entry["note"] == f"paid with {REDACTED}"
    assert entry["message"] == f"charged card {REDACTED} with Bearer {REDACTED}"
    for secret in ("4111", "tok_live", "hunter2", "dXNlcjpwYXNz", "abcdef123456", "5500"):
        assert secret not in line


def test_plain_formatter_redacts_card_numbers_in_messages():
    record = _record("card 4111-1111-1111-1111, order total 123456789012345")
    text = PlainFormatter("%(levelname)s %(message)s").format(record)
    assert text == f"INFO card {REDACTED}, order total 123456789012345"  # not a Luhn-valid number: kept


def test_a_commit_logs_its_order_ref_and_channel_as_json():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("omniman")
    logger.addHandler(handler)
    try:
        channel = make_channel("web")
        session = SessionService.open_session("web", actor="ana")
        ModifyService.modify_session(
            session.session_key, "web", [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}], ctx={"actor": "ana"}
        )
        result = CommitService.commit(session.session_key, "web", idempotency_key="log-1", actor="ana")
    finally:
        logger.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_message = {entry["message"]: entry for entry in entries}
    assert {"session opened", "session modified", "session committed"} <= set(by_message)
    committed = by_message["session committed"]
    assert committed["order_ref"] == result["order_ref"]
    assert committed["channel"] == channel.code and committed["session_key"] == session.session_key
    assert committed["actor"] == "ana"
    assert by_message["session modified"]["rev"] == 1


def test_log_format_is_chosen_by_the_environment():
    code = "from django.conf import settings; print(settings.LOGGING['handlers']['console']['formatter'])"
    assert run_project(code).stdout.strip() == "plain"
    assert run_project(code, LOG_FORMAT="json").stdout.strip() == "json"
    assert "LOG_FORMAT must be" in run_project(code, LOG_FORMAT="xml").stderr
