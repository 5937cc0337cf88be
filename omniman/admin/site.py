"""The manager review's door and map: who may enter the admin, and its sidebar.

The whole admin is the manager review. Only active staff users with the
manager role (the ``manager`` group, or a superuser) may enter; a ``pos`` or
``kitchen`` user, or a staff user without the role, is sent to the admin
login, which refuses them too.

The door is :class:`ManagerAdminSite`, the project's default admin site:
``INSTALLED_APPS`` lists ``"omniman.apps.ManagerAdminConfig"`` in place of
``"django.contrib.admin"`` (and ``"unfold.apps.BasicAppConfig"`` in place of
``"unfold"``, which would otherwise install its own site). The system check
``omniman.E010`` refuses a project whose admin site is any other.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.forms import AuthenticationForm
from unfold.settings import get_config
from unfold.sites import UnfoldAdminSite

from omniman.roles import MANAGER, has_role


def is_manager(user) -> bool:
    """May ``user`` use the manager review? Active staff with the manager role."""
    return bool(user and user.is_active and user.is_staff and has_role(user, MANAGER))


def has_manager_access(request) -> bool:
    """``AdminSite.has_permission`` for the manager review."""
    return is_manager(request.user)


class ManagerLoginForm(AuthenticationForm):
    """The admin login: staff alone is not enough, the manager role is needed."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "not_manager": _("This account may not use the manager review: it needs the manager role."),
    }

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not is_manager(user):
            raise forms.ValidationError(self.error_messages["not_manager"], code="not_manager")


class ManagerAdminSite(UnfoldAdminSite):
    """The unfold admin site, for managers only (``INSTALLED_APPS``: ``omniman.apps.ManagerAdminConfig``)."""

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
        if get_config(self.settings_name)["LOGIN"]["form"] is None:
            self.login_form = ManagerLoginForm

    def has_permission(self, request) -> bool:
        return has_manager_access(request)

    def get_urls(self):
        from django.urls import path

        from omniman.admin.audit import audit_view
        from omniman.admin.reports import report_urls

        def audit(request):
            return audit_view(request, site=self)

        return [path("audit/", self.admin_view(audit), name="audit"), *report_urls(self), *super().get_urls()]


# -- sidebar ------------------------------------------------------------------

# (title, icon, admin URL name or model label)
REVIEW = [
    (_("Dashboard"), "dashboard", "admin:index"),
    (_("Orders"), "receipt_long", "omniman.Order"),
    (_("Bills"), "payments", "omniman.Bill"),
    (_("Shifts"), "point_of_sale", "omniman.Shift"),
    (_("Sessions"), "shopping_basket", "omniman.Session"),
    (_("Directives"), "bolt", "omniman.Directive"),
    (_("Audit"), "policy", "admin:audit"),
]
SETUP = [
    (_("Channels"), "hub", "omniman.Channel"),
    (_("Registers"), "point_of_sale", "omniman.Register"),
    (_("Floor areas"), "table_restaurant", "omniman.FloorArea"),
    (_("Floor tables"), "chair", "omniman.FloorTable"),
    (_("Table moves"), "move_up", "omniman.TableMove"),
    (_("Idempotency keys"), "key", "omniman.IdempotencyKey"),
]
ICONS = {
    "omniman_catalog.category": "category",
    "omniman_catalog.product": "coffee",
    "omniman_pricing.pricelist": "sell",
    "omniman_stock.stocklevel": "inventory_2",
    "omniman_stock.stockhold": "lock_clock",
    "omniman_stock.stockmovement": "swap_vert",
    "omniman_payment.mocktransaction": "payments",
    "omniman_notifications.notificationdelivery": "notifications",
    "omniman_refs.ref": "tag",
    "omniman_refs.ticketsequence": "confirmation_number",
    "auth.user": "person",
    "auth.group": "group",
}


def failed_directives() -> int:
    from omniman.models import Directive

    return Directive.objects.filter(status=Directive.Status.FAILED).count()


def _model_item(request, title, icon, label: str) -> dict[str, Any] | None:
    """A sidebar link to the model's list, if it is registered and the user may view it."""
    try:
        model_admin = admin.site.get_model_admin(apps.get_model(label))
    except (LookupError, NotRegistered):
        return None
    if not model_admin.has_view_permission(request):
        return None
    opts = model_admin.model._meta
    return {
        "title": title,
        "icon": icon,
        "link": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }


def sidebar_navigation(request) -> list[dict[str, Any]]:
    """The kernel's screens first, then every other app the user may see (``UNFOLD["SIDEBAR"]``)."""
    review = []
    for title, icon, target in REVIEW:
        if target.startswith("admin:"):
            review.append({"title": title, "icon": icon, "link": reverse(target)})
            continue
        item = _model_item(request, title, icon, target)
        if item and target == "omniman.Directive":
            failed = failed_directives()
            if failed:
                item.update(badge=failed, badge_variant="danger")
        if item:
            review.append(item)
    groups = [{"title": _("Review"), "separator": False, "items": review}]
    from omniman.admin.reports import sidebar_group

    groups.append(sidebar_group())
    setup = [item for title, icon, target in SETUP if (item := _model_item(request, title, icon, target))]
    if setup:
        groups.append({"title": _("Setup"), "separator": True, "items": setup})
    # The other apps (contrib first, access control last), as the user may see them.
    for app in sorted(admin.site.get_app_list(request), key=lambda app: app["app_label"] == "auth"):
        if app["app_label"] == "omniman":
            continue
        items = []
        for model in app["models"]:
            label = f"{app['app_label']}.{model['object_name'].lower()}"
            if model.get("admin_url"):
                items.append({"title": model["name"], "icon": ICONS.get(label, "table_rows"), "link": model["admin_url"]})
        if items:
            groups.append({"title": apps.get_app_config(app["app_label"]).verbose_name, "separator": True, "items": items})
    return groups
