"""``GET /healthz``: can this process serve, and is the directive queue keeping up?

No login; exempt from the https redirect (``SECURE_REDIRECT_EXEMPT``) so a load
balancer can probe it over plain http inside the network — with a ``Host``
that ``ALLOWED_HOSTS`` accepts. Five queries, whatever the volume:

- ``database``: ``SELECT 1`` answered (and how long it took);
- ``migrations``: how many migrations are not applied yet (two: the
  recorder looks for its table, then reads it);
- ``directives``: due, queued directives (``available_at <= now``), how long
  the oldest has waited, and how many have ``failed``;
- ``workers``: how long ago a directive worker (``process_directives``: its
  heartbeat row) was last seen, and how many were seen within the threshold.

``status`` is ``error`` (HTTP 503) when the database is unreachable or
migrations are pending (then the checks after the failed one are left out);
``degraded`` (HTTP 200: the web process is fine, the
workers are not keeping up) when the oldest due directive has waited longer
than ``OMNIMAN["HEALTH_DIRECTIVE_AGE_SECONDS"]``, or when no worker has been
seen for ``OMNIMAN["HEALTH_WORKER_AGE_SECONDS"]`` on a database where one ever
ran (0 turns that off); ``ok`` (HTTP 200) otherwise.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Count, Min, Q
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from omniman import conf
from omniman.models import Directive, WorkerHeartbeat

OK, DEGRADED, ERROR = "ok", "degraded", "error"


def database_check(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # The class name only: the message may name hosts and users, and this page is public.
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def migrations_check(alias: str = DEFAULT_DB_ALIAS) -> dict[str, Any]:
    executor = MigrationExecutor(connections[alias])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return {"pending": len(plan)}


def directives_check(now=None) -> dict[str, Any]:
    now = now or timezone.now()
    due = Q(status=Directive.Status.QUEUED, available_at__lte=now)
    # Only queued and failed rows are read (the two partial indexes, OR-ed), not the done history.
    row = Directive.objects.filter(Q(status=Directive.Status.QUEUED) | Q(status=Directive.Status.FAILED)).aggregate(
        queued_due=Count("id", filter=due),
        oldest=Min("available_at", filter=due),
        failed=Count("id", filter=Q(status=Directive.Status.FAILED)),
    )
    age = max((now - row["oldest"]).total_seconds(), 0.0) if row["oldest"] else 0.0
    return {
        "oldest_due_age_seconds": round(age, 1),
        "threshold_seconds": int(conf.get("HEALTH_DIRECTIVE_AGE_SECONDS")),
        "queued_due": row["queued_due"],
        "failed": row["failed"],
    }


def workers_check(now=None) -> dict[str, Any]:
    """When a directive worker was last seen (``None``: never, on this database) and how many are alive."""
    now = now or timezone.now()
    threshold = int(conf.get("HEALTH_WORKER_AGE_SECONDS"))
    row = WorkerHeartbeat.objects.summary(within=timedelta(seconds=threshold), now=now)
    age = round(max((now - row["last_seen"]).total_seconds(), 0.0), 1) if row["last_seen"] else None
    return {"last_seen_age_seconds": age, "alive": row["alive"] if threshold > 0 else None, "threshold_seconds": threshold}


def health_report() -> dict[str, Any]:
    """The ``/healthz`` body: ``{"status", "checks": {"database", "migrations", "directives", "workers"}}``."""
    checks: dict[str, Any] = {"database": database_check()}
    if not checks["database"]["ok"]:
        return {"status": ERROR, "checks": checks}
    try:
        checks["migrations"] = migrations_check()
        if checks["migrations"]["pending"]:  # the directive table may not even exist yet
            return {"status": ERROR, "checks": checks}
        checks["directives"] = directives_check()
        checks["workers"] = workers_check()
    except DatabaseError as exc:  # the database went away between two queries
        checks["database"] = {"ok": False, "error": type(exc).__name__}
        return {"status": ERROR, "checks": checks}
    directives, workers = checks["directives"], checks["workers"]
    late = directives["oldest_due_age_seconds"] > directives["threshold_seconds"]
    unseen = bool(workers["threshold_seconds"]) and workers["last_seen_age_seconds"] is not None and not workers["alive"]
    status = DEGRADED if late or unseen else OK
    return {"status": status, "checks": checks}


@never_cache
@require_safe
def healthz(request):
    report = health_report()
    return JsonResponse(report, status=503 if report["status"] == ERROR else 200)
