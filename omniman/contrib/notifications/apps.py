from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "omniman.contrib.notifications"
    label = "omniman_notifications"
    verbose_name = "Notifications"
    default_auto_field = "django.db.models.BigAutoField"
