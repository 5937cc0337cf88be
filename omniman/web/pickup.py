"""The customer pickup screen (``/pickup/``): a TV showing pickup numbers, "Preparing" and "Ready".

Read-only, numbers only (no name, no item, no price). It needs a logged-in
user with the ``display`` role (or ``kitchen``/``manager``), or the display
token ``OMNIMAN["PICKUP_DISPLAY_TOKEN"]`` in ``?token=`` (a TV that cannot log
in). It polls every 2 s; a number turning ready plays a chime.

Each channel counts its own pickup numbers, so two channels can both have a
``12``. A screen shows one channel (``?channel=counter``), a few
(``?channel=counter&channel=web``), or every active channel (no ``channel``);
when it shows more than one, every number carries its channel's prefix
(``C12``, ``W12``: ``config["kitchen"]["pickup_prefix"]``, else the first
letter of the channel's name), so a number on the screen is never ambiguous.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.http import QueryDict
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from omniman import conf, registry
from omniman.models import Channel, Order
from omniman.roles import KITCHEN, MANAGER, has_role

DISPLAY = "display"  # the role (group) of a signed-in pickup screen
MAX_PREFIX = 4


@dataclass
class Pickup:
    preparing: list[str]  # the numbers as shown: "12", or "C12" when the screen shows several channels
    ready: list[str]
    channels: list[str] = field(default_factory=list)  # the codes of the channels shown
    prefixes: dict[str, str] = field(default_factory=dict)  # code → prefix ({} when one channel is shown)


def _allowed(request) -> bool:
    token = str(conf.get("PICKUP_DISPLAY_TOKEN", "") or "")
    given = request.GET.get("token", "")
    if token and given and secrets.compare_digest(token.encode(), given.encode()[:256]):
        return True
    return request.user.is_authenticated and has_role(request.user, DISPLAY, KITCHEN, MANAGER)


def pickup_prefix(channel: Channel) -> str:
    """The letters before a channel's numbers on a shared screen: ``config["kitchen"]["pickup_prefix"]``, else its name's initial."""
    config = (channel.config or {}).get("kitchen") or {}
    prefix = str(config.get("pickup_prefix") or "").strip()[:MAX_PREFIX]
    return prefix or (channel.name or channel.code)[:1].upper()


def _prefixes(channels: list[Channel]) -> dict[str, str]:
    """One distinct prefix per channel shown; channels whose prefixes collide use their (unique) codes."""
    if len(channels) < 2:
        return {}
    prefixes = {channel.code: pickup_prefix(channel) for channel in channels}
    taken: dict[str, int] = {}
    for prefix in prefixes.values():
        taken[prefix] = taken.get(prefix, 0) + 1
    return {code: (prefix if taken[prefix] == 1 else code.upper()) for code, prefix in prefixes.items()}


def pickup_numbers(channel_codes: Iterable[str] | None = None) -> Pickup:
    """Pickup numbers of the orders in the kitchen (preparing) and at the pass (ready): three queries.

    ``channel_codes``: the channels to show (``None`` or empty: every active channel); unknown codes show nothing.
    """
    codes = sorted({str(code) for code in channel_codes or () if code})
    channels = list(Channel.objects.filter(is_active=True).only("code", "name", "config").order_by("display_order", "code"))
    if codes:
        channels = [channel for channel in channels if channel.code in codes]
    statuses: set[str] = set()
    ready_statuses: dict[int, str] = {}
    for channel in channels:
        statuses.update(channel.kitchen_flow.admit_statuses)
        ready_statuses[channel.pk] = channel.order_flow.ready_status
    prefixes = _prefixes(channels)
    by_pk = {channel.pk: prefixes.get(channel.code, "") for channel in channels}
    orders = list(
        Order.objects.filter(status__in=sorted(statuses), channel__in=list(by_pk))
        .only("ref", "status", "channel_id", "handle_type", "created_at")
        .order_by("created_at", "id")
    ) if channels else []
    tickets = registry.tickets_for([order.ref for order in orders])
    preparing, ready = [], []
    for order in orders:
        number = tickets.get(order.ref)
        if not number:
            continue  # tables and orders without a pickup number are not called out
        shown = f"{by_pk[order.channel_id]}{number}"
        (ready if order.status == ready_statuses.get(order.channel_id) else preparing).append(shown)
    return Pickup(preparing=preparing, ready=ready, channels=[channel.code for channel in channels], prefixes=prefixes)


@require_GET
def pickup_view(request):
    if not _allowed(request):
        if not request.user.is_authenticated and not request.GET.get("token"):
            from django.contrib.auth.views import redirect_to_login

            return redirect_to_login(request.get_full_path())
        raise PermissionDenied(_("This screen needs the display role or the display token."))
    codes = [code[:64] for code in request.GET.getlist("channel")[:10]]
    template = "kitchen/pickup.html#numbers" if request.GET.get("partial") == "1" else "kitchen/pickup.html"
    poll = QueryDict(mutable=True)
    poll.setlist("channel", codes)
    if request.GET.get("token"):
        poll["token"] = request.GET["token"][:256]
    poll["partial"] = "1"
    context = {"pickup": pickup_numbers(codes), "poll_query": poll.urlencode()}
    return render(request, template, context)
