from django.apps import AppConfig


class StockConfig(AppConfig):
    name = "omniman.contrib.stock"
    label = "omniman_stock"
    verbose_name = "Stock"
    default_auto_field = "django.db.models.BigAutoField"
