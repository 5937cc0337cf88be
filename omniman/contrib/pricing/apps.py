from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "omniman.contrib.pricing"
    label = "omniman_pricing"
    verbose_name = "Pricing"
    default_auto_field = "django.db.models.BigAutoField"
