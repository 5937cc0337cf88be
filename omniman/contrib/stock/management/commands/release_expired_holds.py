"""Expire stock holds past their ``expires_at`` (cron, every few minutes)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from omniman.contrib.stock.services import StockService


class Command(BaseCommand):
    help = "Mark active stock holds past their expires_at as expired (through the stock backend)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would expire; change nothing.")

    def handle(self, *args, dry_run=False, **options):
        count = StockService.release_expired_holds(dry_run=dry_run)
        verb = "would expire" if dry_run else "expired"
        self.stdout.write(f"release_expired_holds: {verb} {count} holds")
