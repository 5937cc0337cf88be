from django.apps import AppConfig


class RefsConfig(AppConfig):
    name = "omniman.contrib.refs"
    label = "omniman_refs"
    verbose_name = "Refs"
    default_auto_field = "django.db.models.BigAutoField"
