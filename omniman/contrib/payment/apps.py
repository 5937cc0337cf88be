from django.apps import AppConfig


class PaymentConfig(AppConfig):
    name = "omniman.contrib.payment"
    label = "omniman_payment"
    verbose_name = "Payment"
    default_auto_field = "django.db.models.BigAutoField"
