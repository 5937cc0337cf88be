from django.apps import AppConfig


class PricingConfig(AppConfig):
    name = "omniman.contrib.pricing"
    label = "omniman_pricing"
    verbose_name = "Pricing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from omniman.contrib.pricing.handlers import PricingCheckHandler
        from omniman.contrib.pricing.modifiers import ItemPricingModifier, LineOptionsModifier
        from omniman.contrib.pricing.validators import PricedValidator

        registry.register_modifier(ItemPricingModifier())
        registry.register_modifier(LineOptionsModifier())
        registry.register_validator(PricedValidator())
        registry.register_directive_handler(PricingCheckHandler())
