from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "omniman.web"
    label = "omniman_web"
    verbose_name = "Operator app"
