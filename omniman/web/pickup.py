"""The customer pickup screen (``/pickup/``): a TV showing pickup numbers, "Preparing" and "Ready".

Read-only, numbers only (no name, no item, no price). It needs a logged-in
user with the ``display`` role (or ``kitchen``/``manager``), or the display
token ``OMNIMAN["PICKUP_DISPLAY_TOKEN"]`` in ``?token=`` (a TV that cannot log
in). It polls every 2 s; a number turning ready plays a chime.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from omniman import conf, registry
from omniman.models import Channel, Order
from omniman.roles import KITCHEN, MANAGER, has_role

DISPLAY = "display"  # the role (group) of a signed-in pickup screen


@dataclass
class Pickup:
    preparing: list[int]
    ready: list[int]


def _allowed(request) -> bool:
    token = str(conf.get("PICKUP_DISPLAY_TOKEN", "") or "")
    given = request.GET.get("token", "")
    if token and given and secrets.compare_digest(token.encode(), given.encode()[:256]):
        return True
    return request.user.is_authenticated and has_role(request.user, DISPLAY, KITCHEN, MANAGER)


def pickup_numbers() -> Pickup:
    """Pickup numbers of the orders in the kitchen (preparing) and at the pass (ready): three queries."""
    statuses: set[str] = set()
    ready_statuses: dict[int, str] = {}
    for channel in Channel.objects.filter(is_active=True).only("config"):
        statuses.update(channel.kitchen_flow.admit_statuses)
        ready_statuses[channel.pk] = channel.order_flow.ready_status
    orders = list(
        Order.objects.filter(status__in=sorted(statuses), channel__is_active=True)
        .only("ref", "status", "channel_id", "handle_type", "created_at")
        .order_by("created_at", "id")
    )
    tickets = registry.tickets_for([order.ref for order in orders])
    preparing, ready = [], []
    for order in orders:
        number = tickets.get(order.ref)
        if not number:
            continue  # tables and orders without a pickup number are not called out
        (ready if order.status == ready_statuses.get(order.channel_id) else preparing).append(number)
    return Pickup(preparing=preparing, ready=ready)


@require_GET
def pickup_view(request):
    if not _allowed(request):
        if not request.user.is_authenticated and not request.GET.get("token"):
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path())
        raise PermissionDenied(_("This screen needs the display role or the display token."))
    template = "kitchen/pickup.html#numbers" if request.GET.get("partial") == "1" else "kitchen/pickup.html"
    return render(request, template, {"pickup": pickup_numbers(), "token": request.GET.get("token", "")[:256]})
