from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "omniman.contrib.notifications"
    label = "omniman_notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry, signals
        from omniman.contrib.notifications.handlers import HANDLERS
        from omniman.contrib.notifications.receivers import queue_receipt_email

        for handler in HANDLERS:
            registry.register_directive_handler(handler())
        signals.bill_settled.connect(queue_receipt_email, dispatch_uid="omniman.notifications.queue_receipt_email")
