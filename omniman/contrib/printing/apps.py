from django.apps import AppConfig


class PrintingConfig(AppConfig):
    name = "omniman.contrib.printing"
    label = "omniman_printing"
    verbose_name = "Printing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from omniman.contrib.printing.handlers import HANDLERS

        for handler in HANDLERS:
            registry.register_directive_handler(handler())
