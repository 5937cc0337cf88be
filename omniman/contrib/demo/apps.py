from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "omniman.contrib.demo"
    label = "omniman_demo"
    verbose_name = "Demo data"
