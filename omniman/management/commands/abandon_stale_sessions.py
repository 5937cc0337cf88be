"""Abandon open sessions untouched for ``SESSION_TTL_HOURS``."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from omniman.services import MaintenanceService


class Command(BaseCommand):
    help = "Abandon open sessions not modified for OMNIMAN['SESSION_TTL_HOURS'] hours (through the service)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be abandoned; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        keys = MaintenanceService.abandon_stale_sessions(dry_run=dry_run)
        for key in keys:
            self.stdout.write(f"  {key}")
        verb = "would abandon" if dry_run else "abandoned"
        self.stdout.write(f"abandon_stale_sessions: {verb} {len(keys)} sessions")
