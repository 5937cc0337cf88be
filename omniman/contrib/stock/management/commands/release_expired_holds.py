"""Expire stock holds past their ``expires_at``, and delete finished ones (cron, every few minutes)."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from omniman.contrib.stock.services import StockService


class Command(BaseCommand):
    help = (
        "Mark active stock holds past their expires_at as expired (through the stock backend), and delete "
        "released and expired holds finished more than --purge-after-minutes ago."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would expire or be deleted; change nothing.")
        parser.add_argument(
            "--purge-after-minutes", type=float, default=60.0,
            help="Delete released and expired holds finished longer ago than this (0: keep them). Default 60.",
        )

    def handle(self, *args, dry_run=False, purge_after_minutes=60.0, **options):
        if purge_after_minutes < 0:
            raise CommandError("--purge-after-minutes must not be negative")
        count = StockService.release_expired_holds(dry_run=dry_run)
        verb = "would expire" if dry_run else "expired"
        message = f"release_expired_holds: {verb} {count} holds"
        if purge_after_minutes:
            purged = StockService.purge_finished_holds(older_than=timedelta(minutes=purge_after_minutes), dry_run=dry_run)
            message += f"; {'would delete' if dry_run else 'deleted'} {purged} finished holds"
        self.stdout.write(message)
