from django.apps import AppConfig


class TestAppConfig(AppConfig):
    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import registry
        from tests.testapp import handlers

        for handler in handlers.HANDLERS:
            registry.register_directive_handler(handler)
