from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "omniman.contrib.catalog"
    label = "omniman_catalog"
    verbose_name = "Catalog"
    default_auto_field = "django.db.models.BigAutoField"
