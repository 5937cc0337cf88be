from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "omniman.web"
    label = "omniman_web"
    verbose_name = "Operator app"

    def ready(self) -> None:
        from omniman.web import language  # noqa: F401  (the login signal that restores a user's language)
