"""Run due directives: one pass for cron, or a worker with ``--watch``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from omniman import engine, registry


class Command(BaseCommand):
    help = (
        "Process due directives. Without --watch: one pass of at most --limit directives, "
        "then exit (for cron; overlapping passes are safe). With --watch: a worker that runs "
        "until SIGTERM/SIGINT, woken by LISTEN/NOTIFY on PostgreSQL, polling every --interval s."
    )

    def add_arguments(self, parser):
        parser.add_argument("--topic", action="append", dest="topics", metavar="TOPIC", help="Only this topic (repeatable).")
        parser.add_argument("--limit", type=int, default=50, help="Directives per pass (per cycle with --watch). Default 50.")
        parser.add_argument("--watch", action="store_true", help="Keep running as a worker.")
        parser.add_argument("--interval", type=float, default=2.0, help="Seconds between polls with --watch. Default 2.0.")

    def handle(self, *args, topics=None, limit=50, watch=False, interval=2.0, verbosity=1, **options):
        if limit < 1:
            raise CommandError("--limit must be at least 1")
        if interval <= 0:
            raise CommandError("--interval must be positive")
        known = registry.get_directive_handlers()
        unknown = sorted(set(topics or []) - set(known))
        if unknown:
            self.stderr.write(f"No handler registered for: {', '.join(unknown)} (those rows are left untouched).")
        log = self.stdout.write if verbosity >= 1 else (lambda message: None)
        if not watch:
            result = engine.process_once(topics=topics, limit=limit)
            log(f"process_directives: {result}")
            return
        worker = engine.Worker(topics=topics, limit=limit, interval=interval, log=log)
        worker.install_signal_handlers()
        log(
            f"process_directives: watching {', '.join(topics or sorted(known)) or 'no topics'} "
            f"(limit {limit}, interval {interval:g} s)"
        )
        processed = worker.run()
        log(f"process_directives: stopped after {processed} directives")
