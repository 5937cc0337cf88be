from importlib import import_module

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class OmnimanConfig(AppConfig):
    name = "omniman"
    verbose_name = "Omniman"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from omniman import checks  # noqa: F401  (registers the system checks)
        from omniman import engine  # noqa: F401  (dispatches DISPATCH_ON_COMMIT topics on signals.directive_enqueued)
        from django.db.models.signals import post_save

        from omniman.models import OrderEvent
        from omniman.services.kitchen import on_order_event

        # Voids and cancels reach the kitchen from the order's events, in their transaction.
        post_save.connect(on_order_event, sender=OrderEvent, dispatch_uid="omniman.kitchen.voids")

        # A closed shift's Z-report is emailed to the managers (directive ``shift.z_report``).
        from omniman import registry
        from omniman.services import Z_REPORT_TOPIC, ZReportEmailHandler

        if registry.get_directive_handler(Z_REPORT_TOPIC) is None:
            registry.register_directive_handler(ZReportEmailHandler())


class ManagerAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the manager review's site as the default site.

    List ``"omniman.apps.ManagerAdminConfig"`` in ``INSTALLED_APPS`` in place of
    ``"django.contrib.admin"`` (see ``omniman.admin.site``). Never the default
    config of the ``omniman`` app itself.
    """

    default = False
    default_site = "omniman.admin.site.ManagerAdminSite"

    def ready(self) -> None:
        # Omniman's model admins register first: the site they register on is built
        # lazily from ``omniman.admin.site``, and building it while another app's admin
        # module registers would import them half-way through and lose them.
        import_module("omniman.admin")
        super().ready()
