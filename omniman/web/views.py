from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from omniman.roles import KITCHEN, MANAGER, POS, has_role


@require_GET
@login_required
def home(request):
    """Each role lands on its screen."""
    if has_role(request.user, POS, MANAGER):
        return redirect("pos:index")
    if has_role(request.user, KITCHEN):
        return redirect("kitchen:board")
    if request.user.is_staff:
        return redirect("admin:index")
    raise PermissionDenied(_("There is no screen for your role yet."))
