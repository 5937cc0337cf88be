"""Gunicorn settings, from the environment: ``gunicorn config.wsgi -c gunicorn.conf.py``.

PORT (8000) or GUNICORN_BIND        where to listen (GUNICORN_BIND wins: "0.0.0.0:8000", "unix:/run/omniman.sock")
GUNICORN_WORKERS or WEB_CONCURRENCY worker processes (default 2 × CPUs + 1, at most 8)
GUNICORN_THREADS (1)                threads per worker (gthread worker when > 1)
GUNICORN_TIMEOUT (30)               seconds a request may take before its worker is restarted
GUNICORN_GRACEFUL_TIMEOUT (30)      seconds in-flight requests get to finish on SIGTERM
GUNICORN_KEEPALIVE (5)              seconds to keep an idle connection (behind a load balancer: above its idle timeout)
GUNICORN_MAX_REQUESTS (1000)        restart a worker after this many requests (0: never), with up to 10 % jitter
FORWARDED_ALLOW_IPS (127.0.0.1)     proxies whose X-Forwarded-* headers are trusted ("*" when only the proxy can reach us)
LOG_FORMAT (plain)                  "json": access and error logs as JSON lines, like the app's (omniman.logs)

Each sync worker serves one request at a time on one database connection,
kept across requests (CONN_MAX_AGE, 60 s by default with DEBUG off; with
gthread workers one per thread): a worker never opens a PostgreSQL connection
per request. Connections to PostgreSQL = workers × threads per instance (plus
the directive workers); past what the server allows, put PgBouncer in between.

The access log goes to stdout and records the path without its query string
(it may carry tokens); errors go to stderr.
"""

import multiprocessing
import os


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"
workers = _int("GUNICORN_WORKERS", _int("WEB_CONCURRENCY", min(multiprocessing.cpu_count() * 2 + 1, 8)))
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = max_requests // 10
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# No runtime control socket (gunicorn 24+ puts one under $HOME; the image's user has none).
control_socket_disable = True

# Heartbeat files in memory, not on a container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# %(U)s is the path without the query string; %(M)s the duration in milliseconds.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'

if os.environ.get("LOG_FORMAT", "plain").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "omniman.logs.JSONFormatter"}},
        "handlers": {
            "stdout": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "gunicorn.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
            "gunicorn.error": {"handlers": ["stderr"], "level": loglevel.upper(), "propagate": False},
        },
    }
