"""System checks of the manager review.

E010 The default admin site is not :class:`~omniman.admin.site.ManagerAdminSite`:
     any active staff user could enter the admin. ``INSTALLED_APPS`` must list
     ``"omniman.apps.ManagerAdminConfig"`` in place of ``"django.contrib.admin"``
     and ``"unfold.apps.BasicAppConfig"`` in place of ``"unfold"``.
E011 Omniman's model admins are not registered on the admin site (something
     built the site before ``omniman.apps.ManagerAdminConfig`` was ready).
"""

from __future__ import annotations

from django.contrib import admin
from django.core import checks

from omniman.admin.site import ManagerAdminSite
from omniman.models import Channel, Directive, IdempotencyKey, Order, Session


@checks.register(checks.Tags.admin)
def check_admin_site(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if isinstance(admin.site, ManagerAdminSite):
        missing = [model._meta.label for model in (Order, Session, Directive, Channel, IdempotencyKey) if not admin.site.is_registered(model)]
        if not missing:
            return []
        return [
            checks.Error(
                f"The manager review's models are not registered on the admin site: {', '.join(missing)}.",
                hint="Something used the admin site before omniman.apps.ManagerAdminConfig was ready: list "
                '"omniman.apps.ManagerAdminConfig" before the apps whose ready() touches django.contrib.admin.site.',
                id="omniman.E011",
            )
        ]
    return [
        checks.Error(
            f"The admin site is {type(admin.site).__module__}.{type(admin.site).__qualname__}, not the manager "
            "review's site: any active staff user could enter the admin.",
            hint='In INSTALLED_APPS, list "omniman.apps.ManagerAdminConfig" in place of "django.contrib.admin" '
            'and "unfold.apps.BasicAppConfig" in place of "unfold".',
            id="omniman.E010",
        )
    ]
