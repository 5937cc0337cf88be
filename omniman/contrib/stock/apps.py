from django.apps import AppConfig


class StockConfig(AppConfig):
    name = "omniman.contrib.stock"
    label = "omniman_stock"
    verbose_name = "Stock"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from omniman.contrib.stock.handlers import HANDLERS

        for handler in HANDLERS:
            registry.register_directive_handler(handler)
