from django.apps import AppConfig


class PrintingConfig(AppConfig):
    name = "omniman.contrib.printing"
    label = "omniman_printing"
    verbose_name = "Printing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry, signals
        from omniman.contrib.printing import checks  # noqa: F401 - registers omniman_printing.W001
        from omniman.contrib.printing.handlers import HANDLERS
        from omniman.contrib.printing.receivers import queue_receipt

        for handler in HANDLERS:
            registry.register_directive_handler(handler())
        signals.bill_settled.connect(queue_receipt, dispatch_uid="omniman.printing.queue_receipt")
