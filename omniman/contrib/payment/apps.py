from django.apps import AppConfig


class PaymentConfig(AppConfig):
    name = "omniman.contrib.payment"
    label = "omniman_payment"
    verbose_name = "Payment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from omniman.contrib.payment.gateway import BackendGateway
        from omniman.contrib.payment.handlers import HANDLERS

        for handler in HANDLERS:
            registry.register_directive_handler(handler())
        # The bills' "gateway" payment method (omniman.services.PaymentService) goes through the backend.
        registry.register_payment_gateway(BackendGateway())
