"""Who may do what in the manager review: the mixins every model admin builds on."""

from __future__ import annotations

from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST
from unfold.admin import ModelAdmin, TabularInline

from omniman.admin.site import is_manager


class ManagerOnly:
    """Permissions follow the manager role rather than per-model permissions,
    so adding a user to the ``manager`` group is all it takes."""

    def has_view_permission(self, request, obj=None):
        return is_manager(request.user)

    def has_add_permission(self, request, obj=None):
        return is_manager(request.user)

    def has_change_permission(self, request, obj=None):
        return is_manager(request.user)

    def has_delete_permission(self, request, obj=None):
        return is_manager(request.user)


class NoWrites:
    """Nobody adds, changes or deletes here: only services write these rows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ManagerAdmin(ManagerOnly, ModelAdmin):
    """Managers view and edit; nobody else sees the model (the site refuses them anyway)."""

    def has_module_permission(self, request):
        return is_manager(request.user)

    def has_manage_permission(self, request, obj=None):
        """For actions that go through a service (transitions, abandon, run now)."""
        return is_manager(request.user)


class ReadOnlyAdmin(NoWrites, ManagerAdmin):
    """Managers look; only services write."""


class ManagerInline(ManagerOnly, TabularInline):
    """An editable inline of a ``ManagerAdmin``: managers only."""


class ReadOnlyInline(NoWrites, ManagerInline):
    """Rows a manager reads on their parent's page; nobody writes them here."""

    hide_title = True
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False


class ServiceActionsMixin:
    """POST-only views next to a change page; each one calls a service and redirects back."""

    review_actions: tuple[str, ...] = ()

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        extra = [
            path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(require_POST(getattr(self, f"{name}_view"))),
                name=f"{info[0]}_{info[1]}_{name}",
            )
            for name in self.review_actions
        ]
        return extra + super().get_urls()

    def get_review_object(self, request, object_id):
        if not self.has_manage_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.opts.verbose_name} {object_id!r}.")
        return obj

    def back_to(self, obj):
        return redirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk]))
