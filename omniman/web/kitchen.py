"""The kitchen board: live columns of active orders, one tap to bump a card along.

The board polls ``board/`` every 2 s with the version it shows; when nothing
changed the answer is an empty ``204`` computed from one aggregate query, no
template rendered. Bumps go through ``OrderService.transition`` with
``expected_status``: when two screens bump one card, the late one gets the fresh
board and a notice, never an error page.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Max
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.utils.translation import gettext_lazy
from django.views.decorators.vary import vary_on_headers

from omniman import conf, registry
from omniman.contrib.catalog import get_catalog
from omniman.exceptions import OmnimanError
from omniman.formatting import format_qty
from omniman.texts import status_label
from omniman.flow import DEFAULT_ORDER_FLOW, OrderFlow
from omniman.models import Channel, Order, OrderEvent
from omniman.services import OrderService
from omniman.roles import KITCHEN, MANAGER, roles_of
from omniman.web.roles import actor, role_required

kitchen_required = role_required(KITCHEN, MANAGER)

COLUMNS = tuple(DEFAULT_ORDER_FLOW["kitchen_statuses"])
EXPO = "expo"
RECALL_MINUTES = 15
DEFAULT_WARN_MINUTES = 5
DEFAULT_LATE_MINUTES = 10
# The stations' names on the filter bar (a station without one shows its code).
STATION_LABELS = {
    EXPO: gettext_lazy("Expo"),
    "bar": gettext_lazy("Bar"),
    "kitchen": gettext_lazy("Kitchen"),
    "pastry": gettext_lazy("Pastry"),
}


def board_columns() -> list[str]:
    """The board's columns: ``OMNIMAN["KITCHEN_COLUMNS"]``, else the default flow's ``kitchen_statuses``.

    A channel's own ``order_flow.kitchen_statuses`` chooses in which of them its orders appear.
    """
    return list(conf.get("KITCHEN_COLUMNS", COLUMNS))


def on_board(order: Order, flow: OrderFlow, columns: list[str]) -> bool:
    return order.status in columns and order.status in flow.kitchen_statuses


def next_status(order: Order, flow: OrderFlow | None = None, roles: Iterable[str] | None = None) -> str | None:
    """Where one tap sends the card: the next kitchen column, else the flow's done status, never its cancel status.

    With ``roles``, only a move the flow's ``permissions`` give them (``None``: no tap for this viewer).
    """
    flow = flow or order.flow
    allowed = [s for s in flow.allowed_from(order.status) if s != flow.cancel_status]
    if roles is not None:
        allowed = [s for s in allowed if flow.may_transition(roles, order.status, s)]
    columns = [s for s in board_columns() if s in flow.kitchen_statuses]
    later = [s for s in allowed if s in columns and columns.index(s) > columns.index(order.status)] if order.status in columns else []
    if later:
        return min(later, key=columns.index)
    if flow.done_status and flow.done_status in allowed:
        return flow.done_status
    return allowed[0] if allowed else None


@dataclass
class Card:
    order: Order
    label: str
    items: list
    next_status: str | None
    warn_seconds: int
    late_seconds: int

    @property
    def created_ms(self) -> int:
        return int(self.order.created_at.timestamp() * 1000)


@dataclass
class Board:
    station: str
    channel: str
    columns: list[tuple[str, str, list[Card]]]
    all_day: list[tuple[str, str]]
    stations: list[str]
    channels: list[Channel]
    version: str
    max_order_id: int
    recalled: list[Order] = field(default_factory=list)


def _filtered(channel_code: str):
    orders = Order.objects.filter(status__in=board_columns(), channel__is_active=True)
    if channel_code:
        orders = orders.filter(channel__code=channel_code)
    return orders


def board_version(channel_code: str) -> str:
    """One aggregate query: changes whenever a card appears, moves or leaves."""
    row = _filtered(channel_code).aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    last = row["last"].timestamp() if row["last"] else 0
    return f"{row['n']}-{row['top'] or 0}-{last:.6f}"


def _stations_of(orders) -> dict[str, str]:
    """Kitchen station per SKU from the catalog, for items that don't carry one (one query)."""
    skus = {item.sku for order in orders for item in order.items.all() if not (item.meta or {}).get("station")}
    if not skus:
        return {}
    # Without omniman.contrib.catalog (and no CATALOG_BACKEND) the catalog is empty: no station.
    return {sku: entry.station for sku, entry in get_catalog().get_many(sorted(skus)).items()}


def _voided(orders) -> dict[tuple[int, str], Decimal]:
    """How much of each line a manager voided after it was sent (``item_voided`` events; one query)."""
    voided: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    if orders:
        rows = OrderEvent.objects.filter(order_id__in=[o.pk for o in orders], type="item_voided").values_list("order_id", "payload")
        for order_id, payload in rows:
            try:
                voided[(order_id, str(payload.get("line_id", "")))] += Decimal(str(payload.get("qty") or 0))
            except (ArithmeticError, ValueError, AttributeError):
                continue
    return voided


def _tickets(orders) -> dict[str, int]:
    """Pickup numbers from the registered ticket source (omniman.contrib.refs); none without one."""
    return registry.tickets_for([order.ref for order in orders])


def build_board(station: str = EXPO, channel_code: str = "", roles: Iterable[str] | None = None) -> Board:
    """The board; with ``roles`` (the viewer's), a card offers only the moves they may make."""
    orders = list(
        _filtered(channel_code).select_related("channel").prefetch_related("items").order_by("created_at", "id")
    )
    stations = _stations_of(orders)
    tickets = _tickets(orders)
    voided = _voided(orders)
    columns: dict[str, list[Card]] = defaultdict(list)
    all_day: Counter = Counter()
    names: dict[str, str] = {}
    board = board_columns()
    flows: dict[int, OrderFlow] = {}
    for order in orders:
        flow = flows.get(order.channel_id) or flows.setdefault(order.channel_id, order.flow)
        if not on_board(order, flow, board):
            continue  # its channel's flow keeps this status off the kitchen
        items = []
        for item in order.items.all():
            item_station = (item.meta or {}).get("station") or stations.get(item.sku, "")
            if station != EXPO and item_station != station:
                continue
            item.voided_qty = min(voided.get((order.pk, item.line_id), 0), item.qty)
            item.voided = item.voided_qty >= item.qty
            items.append(item)
            if order.status != flow.ready_status and not item.voided:
                all_day[item.sku] += item.qty - item.voided_qty
                names[item.sku] = item.name
        if not items:
            continue  # nothing for this station
        config = (order.channel.config or {}).get("kitchen") or {}
        columns[order.status].append(
            Card(
                order=order,
                label=card_label(order, tickets.get(order.ref), flow),
                items=items,
                next_status=next_status(order, flow, roles),
                warn_seconds=int(config.get("warn_minutes", DEFAULT_WARN_MINUTES)) * 60,
                late_seconds=int(config.get("late_minutes", DEFAULT_LATE_MINUTES)) * 60,
            )
        )
    terms = {}
    for order in orders:
        for status in board_columns():
            terms.setdefault(status, order.channel.term(status))
    for status in board_columns():
        terms.setdefault(status, status_label(status))
    return Board(
        station=station,
        channel=channel_code,
        columns=[(status, terms[status], columns.get(status, [])) for status in board_columns()],
        all_day=[(names[sku], _qty(qty)) for sku, qty in sorted(all_day.items(), key=lambda kv: (-kv[1], names[kv[0]]))],
        stations=[EXPO, "bar", "kitchen", "pastry"],
        channels=list(Channel.objects.filter(is_active=True).order_by("display_order", "code")),
        version=board_version(channel_code),
        max_order_id=max((order.pk for order in orders), default=0),
    )


def card_label(order: Order, ticket: int | None = None, flow: OrderFlow | None = None) -> str:
    """How the kitchen calls an order: its table, its pickup number, its handle, or the end of its ref."""
    flow = flow or order.flow
    if flow.is_table(order.handle_type):
        return _("Table %(table)s") % {"table": order.current_handle_ref or order.handle_ref}
    if ticket:
        return f"#{ticket}"
    return order.handle_ref or order.ref[-6:]


def _qty(value) -> str:
    return format_qty(value)


def recalled_orders(channel_code: str = "") -> list[Order]:
    """Orders bumped off the board (or along it) in the last 15 minutes, newest first."""
    since = timezone.now() - timedelta(minutes=RECALL_MINUTES)
    refs = (
        OrderEvent.objects.filter(type="status_changed", created_at__gte=since, actor__startswith="user:")
        .exclude(order__status__in=board_columns())
        .values_list("order_id", flat=True)
    )
    orders = Order.objects.filter(pk__in=refs).select_related("channel").prefetch_related("items")
    if channel_code:
        orders = orders.filter(channel__code=channel_code)
    recalled = list(orders.order_by("-updated_at")[:20])
    tickets = _tickets(recalled)
    for order in recalled:
        order.kitchen_label = card_label(order, tickets.get(order.ref))
    return recalled


def _params(request) -> tuple[str, str]:
    station = request.GET.get("station") or request.POST.get("station") or EXPO
    channel = request.GET.get("channel") or request.POST.get("channel") or ""
    return station[:32], channel[:64]


@require_GET
@kitchen_required
def board_view(request):
    station, channel = _params(request)
    board = build_board(station, channel, roles_of(request.user))
    recall = request.GET.get("recall") == "1"
    context = {"board": board, "recall": recall, "recalled": recalled_orders(channel) if recall else []}
    return render(request, "kitchen/board.html", context)


@require_GET
@kitchen_required
@vary_on_headers("HX-Request")
def board_poll(request):
    """The board region, or ``204`` (no body, no template) when the version the client shows is current."""
    station, channel = _params(request)
    if request.GET.get("v") == board_version(channel):
        response = HttpResponse(status=204)
        response["Cache-Control"] = "no-store"
        return response
    board = build_board(station, channel, roles_of(request.user))
    return render(request, "kitchen/board.html#board", {"board": board})


@require_POST
@kitchen_required
def bump(request):
    station, channel = _params(request)
    ref = request.POST.get("order_ref", "")
    expected = request.POST.get("expected_status", "")
    notice = ""
    order = Order.objects.select_related("channel").filter(ref=ref).first()
    if order is None:
        notice = _("That order no longer exists.")
    elif order.status != expected:
        notice = _("%(order)s was already moved on another screen.") % {"order": order.ref[-6:]}
    else:
        roles = roles_of(request.user)
        target = next_status(order, roles=roles)
        if target is None and next_status(order) is not None:
            notice = _("%(ref)s: your role may not move this order on.") % {"ref": order.ref[-6:]}
        try:
            if target:
                OrderService.transition(
                    ref, target, actor=actor(request), expected_status=expected, reason="kitchen bump", roles=roles
                )
        except OmnimanError as exc:
            notice = (
                _("%(order)s was already moved on another screen.") % {"order": order.ref[-6:]}
                if exc.code == "stale_status"
                else exc.message
            )
    if not request.htmx:
        url = reverse("kitchen:board") + f"?station={station}&channel={channel}"
        return redirect(url)
    board = build_board(station, channel, roles_of(request.user))
    return render(request, "kitchen/board.html#board", {"board": board, "notice": notice})
