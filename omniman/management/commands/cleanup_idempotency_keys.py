"""Delete idempotency keys past ``expires_at`` (``IDEMPOTENCY_TTL_HOURS`` after their use)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from omniman.services import MaintenanceService


class Command(BaseCommand):
    help = "Delete expired idempotency keys. Keys still in progress are kept."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")

    def handle(self, *args, dry_run=False, **options):
        count = MaintenanceService.cleanup_idempotency_keys(dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"cleanup_idempotency_keys: {verb} {count} expired keys")
