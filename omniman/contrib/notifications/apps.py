from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "omniman.contrib.notifications"
    label = "omniman_notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from omniman.contrib.notifications.handlers import HANDLERS

        for handler in HANDLERS:
            registry.register_directive_handler(handler())
