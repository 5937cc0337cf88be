from django.apps import AppConfig


class OmnimanConfig(AppConfig):
    name = "omniman"
    verbose_name = "Omniman"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import checks  # noqa: F401  (registers the system checks)
