"""Housekeeping that cron runs: expired idempotency keys, stale sessions."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from omniman import conf
from omniman.exceptions import SessionError
from omniman.models import IdempotencyKey, Session
from omniman.models.session import empty_sessions


class MaintenanceService:
    @staticmethod
    def cleanup_idempotency_keys(*, dry_run: bool = False) -> int:
        """Delete keys whose ``expires_at`` has passed (keys in progress are kept: a request may hold one)."""
        expired = IdempotencyKey.objects.filter(expires_at__lte=timezone.now()).exclude(
            status=IdempotencyKey.Status.IN_PROGRESS
        )
        if dry_run:
            return expired.count()
        deleted, _ = expired.delete()
        return deleted

    @staticmethod
    def abandon_stale_sessions(*, dry_run: bool = False, actor: str = "system:abandon_stale_sessions") -> list[str]:
        """Abandon open sessions not modified for ``SESSION_TTL_HOURS``, and empty baskets (no handle, no line,
        not parked) not modified for ``EMPTY_SESSION_TTL_MINUTES``; returns their keys."""
        from omniman.services.sessions import SessionService

        now = timezone.now()
        cutoff = now - timedelta(hours=float(conf.get("SESSION_TTL_HOURS")))
        empty_cutoff = now - timedelta(minutes=float(conf.get("EMPTY_SESSION_TTL_MINUTES")))
        # Old ones, and empty baskets (no handle, no line, not parked) after a short while.
        forgotten = Q(updated_at__lt=cutoff) | (Q(updated_at__lt=empty_cutoff, handle_ref="") & empty_sessions())
        stale = list(
            Session.objects.filter(forgotten, state=Session.State.OPEN)
            .order_by("updated_at")
            .values_list("session_key", "channel__code", "updated_at")
        )
        if dry_run:
            return [key for key, _code, _at in stale]
        abandoned = []
        for key, code, at in stale:
            try:
                # Abandoned only if untouched since it was found (an item added meanwhile keeps it).
                before = cutoff if at < cutoff else empty_cutoff
                session = SessionService.abandon_session(key, code, actor=actor, stale_before=before)
            except SessionError:
                continue  # committed meanwhile
            if session.state == Session.State.ABANDONED:
                abandoned.append(key)
        return abandoned
