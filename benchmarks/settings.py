"""Settings for benchmarks/bench_directives.py: Omniman plus the peers it is measured against.

Everything from ``config.settings``, plus procrastinate's Django integration,
django-tasks with the django-tasks-db backend, and ``benchmarks.benchapp`` (the
no-op work for each). Installed only with the ``bench`` extra:
``pip install -e '.[bench]'``.

``DATABASE_URL`` must point at PostgreSQL; the default is
``postgres://postgres@127.0.0.1:5432/omniman_bench``.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omniman_bench")
# Persistent connections for every worker (db_worker calls close_old_connections()
# around each task: with CONN_MAX_AGE=0 it would reconnect for every job).
os.environ.setdefault("CONN_MAX_AGE", "600")
# DEBUG is off here, so the workers' system checks want a real key and hosts (omniman.E003/E005).
os.environ.setdefault("SECRET_KEY", "benchmarks-only-" + "q8Zr4Lm2Xv7Tn1Kp5Wc9Hd3Jf6Bg0Ys-benchmarks-only")
os.environ.setdefault("ALLOWED_HOSTS", "localhost")

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, INSTALLED_APPS, LOGGING  # noqa: E402

from django.core.exceptions import ImproperlyConfigured  # noqa: E402

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        f"benchmarks need PostgreSQL; DATABASE_URL gives {DATABASES['default']['ENGINE']}"
    )

# Never the autoreloader, never per-query logging.
DEBUG = False

INSTALLED_APPS = [
    *INSTALLED_APPS,
    # procrastinate's app must come before any app that defines tasks.
    "procrastinate.contrib.django",
    "django_tasks",
    "django_tasks_db",
    "benchmarks.benchapp",
]

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

# procrastinate: tasks are found in each app's ``tasks`` module (the default);
# say so explicitly for the bench app.
PROCRASTINATE_IMPORT_PATHS = ["benchmarks.benchapp.tasks"]

# Workers log warnings and errors only: the benchmark measures the queues, not
# a console writing a line per job.
LOGGING = {
    **LOGGING,
    "loggers": {
        **LOGGING["loggers"],
        "omniman": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING").upper(), "propagate": False},
    },
}
