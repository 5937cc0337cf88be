from django.apps import AppConfig


class NoopHandler:
    """Omniman directive handler that does nothing (the work every system runs)."""

    topic = "bench.noop"
    database_only = True  # no effect at all, none outside the database: claimed inside the batch transaction

    def handle(self, *, message, ctx) -> None:
        return None


class BenchAppConfig(AppConfig):
    name = "benchmarks.benchapp"
    label = "benchapp"
    verbose_name = "Directive benchmark"

    def ready(self) -> None:
        from omniman import registry

        if registry.get_directive_handler(NoopHandler.topic) is None:
            registry.register_directive_handler(NoopHandler())
