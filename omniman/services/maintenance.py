"""Housekeeping that cron runs: expired idempotency keys, stale sessions."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from omniman import conf
from omniman.exceptions import SessionError
from omniman.models import IdempotencyKey, Session


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
        """Abandon open sessions not modified for ``SESSION_TTL_HOURS``; returns their keys."""
        from omniman.services.sessions import SessionService

        cutoff = timezone.now() - timedelta(hours=float(conf.get("SESSION_TTL_HOURS")))
        stale = list(
            Session.objects.filter(state=Session.State.OPEN, updated_at__lt=cutoff)
            .order_by("updated_at")
            .values_list("session_key", "channel__code", "updated_at")
        )
        if dry_run:
            return [key for key, _code, _at in stale]
        abandoned = []
        for key, code, _at in stale:
            try:
                session = SessionService.abandon_session(key, code, actor=actor, stale_before=cutoff)
            except SessionError:
                continue  # committed meanwhile
            if session.state == Session.State.ABANDONED:
                abandoned.append(key)
        return abandoned
