from django.apps import AppConfig


class RefsConfig(AppConfig):
    name = "omniman.contrib.refs"
    label = "omniman_refs"
    verbose_name = "Refs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from omniman.contrib.refs.handlers import HANDLERS
        from omniman.contrib.refs.services import PickupTicketSource

        for handler in HANDLERS:
            registry.register_directive_handler(handler())
        # The POS's confirmation and the kitchen board ask the registry, never this app.
        registry.register_ticket_source(PickupTicketSource())
