from __future__ import annotations

import os
import socket
from datetime import timedelta

from django.db import models
from django.db.models import F
from django.utils import timezone


def worker_name(kind: str = "") -> str:
    """``host:pid`` for a worker, ``host:<kind>`` for a run that shares one row (a cron pass)."""
    return f"{socket.gethostname()}:{kind or os.getpid()}"


class WorkerHeartbeatManager(models.Manager):
    def beat(self, name: str, *, processed: int = 0, started_at=None) -> None:
        """Record that ``name`` is alive now and ran ``processed`` more directives (one UPDATE; an INSERT the first time)."""
        now = timezone.now()
        updated = self.filter(name=name).update(last_seen_at=now, processed=F("processed") + processed)
        if not updated:
            host, _, pid = name.rpartition(":")
            self.get_or_create(
                name=name,
                defaults={
                    "host": host,
                    "pid": int(pid) if pid.isdigit() else None,
                    "started_at": started_at or now,
                    "last_seen_at": now,
                    "processed": processed,
                },
            )

    def start(self, name: str) -> None:
        """A worker starting under ``name``: its row restarts its clock and count."""
        now = timezone.now()
        host, _, pid = name.rpartition(":")
        self.update_or_create(
            name=name,
            defaults={"host": host, "pid": int(pid) if pid.isdigit() else None, "started_at": now, "last_seen_at": now, "processed": 0},
        )

    def summary(self, *, within: timedelta, now=None) -> dict:
        """``{"last_seen": datetime | None, "alive": n}``: the freshest heartbeat, and how many beat ``within`` (one query)."""
        from django.db.models import Count, Max, Q

        now = now or timezone.now()
        return self.aggregate(last_seen=Max("last_seen_at"), alive=Count("id", filter=Q(last_seen_at__gte=now - within)))

    def prune(self, *, older_than: timedelta) -> int:
        """Forget workers not seen for ``older_than`` (each restart leaves a row under a new pid)."""
        deleted, _ = self.filter(last_seen_at__lt=timezone.now() - older_than).delete()
        return deleted


class WorkerHeartbeat(models.Model):
    """When each directive worker (``process_directives``) last lived, for the admin and ``/healthz``."""

    name = models.CharField(max_length=255, unique=True)
    host = models.CharField(max_length=255, blank=True, default="")
    pid = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    processed = models.PositiveBigIntegerField(default=0)

    objects = WorkerHeartbeatManager()

    class Meta:
        ordering = ["-last_seen_at", "name"]

    def __str__(self) -> str:
        return self.name
