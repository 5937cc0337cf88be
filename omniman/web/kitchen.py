"""The kitchen screens: a station's items, the expo's whole orders, recall/undo, voids and the 86 list.

A *station* screen (``?station=bar``) shows the cards of its own items, in
columns by item status (``queued → cooking → ready`` by default), and bumps
only them. The *expo* (``?station=expo``) shows whole orders by order status,
with each station's progress, and hands an order out once every station is
done. Every move goes through ``KitchenService`` (``expected_status``: a late
second screen gets the fresh board and a notice where the cook looks, never an
error page); the order's status follows from its items there, never here.

The board polls ``board/`` every ``OMNIMAN["KITCHEN_POLL_MS"]`` (500 ms) with
the version it shows; when nothing changed the answer is an empty ``204``
computed from two aggregate queries.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Count, Exists, Max, OuterRef, Prefetch, Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from omniman import conf, registry
from omniman.exceptions import OmnimanError
from omniman.flow import DEFAULT_KITCHEN_FLOW, DEFAULT_ORDER_FLOW, KitchenFlow, OrderFlow
from omniman.formatting import format_qty
from omniman.models import Channel, KitchenItem, Order, SoldOut
from omniman.roles import KITCHEN, MANAGER, roles_of
from omniman.services import KitchenService, kitchen_order_path
from omniman.texts import status_label
from omniman.web.roles import actor, role_required

kitchen_required = role_required(KITCHEN, MANAGER)

COLUMNS = tuple(DEFAULT_ORDER_FLOW["kitchen_statuses"])
EXPO = "expo"
RECALL_MINUTES = DEFAULT_KITCHEN_FLOW["undo_minutes"]
DEFAULT_WARN_MINUTES = 5
DEFAULT_LATE_MINUTES = 10
RAIL_SIZE = 5  # tickets on the "Just in" rail
# The stations' names on the filter bar (a station without one shows its code).
STATION_LABELS = {
    EXPO: gettext_lazy("Expo"),
    "bar": gettext_lazy("Bar"),
    "kitchen": gettext_lazy("Kitchen"),
    "pastry": gettext_lazy("Pastry"),
}
ITEM_STATUS_LABELS = {
    "queued": gettext_lazy("Queued"),
    "cooking": gettext_lazy("Cooking"),
    "ready": gettext_lazy("Ready"),
    "served": gettext_lazy("Served"),
}


def item_status_label(status: str) -> str:
    label = ITEM_STATUS_LABELS.get(status)
    return str(label) if label else status.replace("_", " ").capitalize()


def board_columns() -> list[str]:
    """The expo's columns: ``OMNIMAN["KITCHEN_COLUMNS"]``, else the default flow's ``kitchen_statuses``."""
    return list(conf.get("KITCHEN_COLUMNS", COLUMNS))


def station_columns() -> list[str]:
    """A station screen's columns: the default kitchen flow's statuses up to its ``station_done``."""
    statuses = DEFAULT_KITCHEN_FLOW["statuses"]
    return list(conf.get("KITCHEN_STATION_COLUMNS", statuses[: statuses.index(DEFAULT_KITCHEN_FLOW["station_done"]) + 1]))


def stations() -> list[str]:
    return list(conf.get("KITCHEN_STATIONS", ["bar", "kitchen", "pastry"]))


# -- what a card shows --------------------------------------------------------------------------


class Words:
    """The board's words and quantities, each translated or formatted once per board (not once per card).

    A board of 200 tickets asks for the same few station and status labels
    hundreds of times; translating (and Babel-formatting) each once keeps the
    render's cost in the HTML, not in gettext.
    """

    def __init__(self) -> None:
        self._stations: dict[str, str] = {}
        self._statuses: dict[str, str] = {}
        self._qtys: dict[object, str] = {}

    def station(self, station: str) -> str:
        if station not in self._stations:
            label = STATION_LABELS.get(station or "")
            self._stations[station] = str(label) if label else (station or "").replace("_", " ").capitalize()
        return self._stations[station]

    def status(self, status: str) -> str:
        if status not in self._statuses:
            self._statuses[status] = item_status_label(status)
        return self._statuses[status]

    def qty(self, value) -> str:
        if value not in self._qtys:
            self._qtys[value] = _qty(value)
        return self._qtys[value]


@dataclass
class Row:
    """One item line of a card, ready to print: the template only places these strings."""

    qty: str
    name: str
    station: str  # the station's label on the expo, "" on a station screen
    status: str  # "Cooking", "held", "VOID"
    held: bool
    voided: bool  # the whole line
    void_reason: str
    part_void: str  # "1 VOID" when part of the line is voided
    note: str
    extras: str  # options and modifiers, comma-separated


def _row(item: KitchenItem, words: Words, *, expo: bool) -> Row:
    line = item.item
    meta = line.meta or {}
    extras = [str(option) for option in meta.get("options") or []]
    extras += [str(m.get("name") or "") if isinstance(m, dict) else str(m) for m in meta.get("modifiers") or []]
    voided = item.is_voided
    if voided:
        status = _("VOID")
    elif item.held:
        status = _("held")
    else:
        status = words.status(item.status)
    part_void = ""
    if not voided and not item.held and item.voided_at:
        part_void = _("%(qty)s VOID") % {"qty": words.qty(item.voided_qty)}
    return Row(
        qty=words.qty(line.qty),
        name=line.name,
        station=words.station(item.station) if expo and item.station else "",
        status=status,
        held=item.held,
        voided=voided,
        void_reason=item.void_reason if voided else "",
        part_void=part_void,
        note=str(meta.get("note") or ""),
        extras=", ".join(extra for extra in extras if extra),
    )


@dataclass
class Card:
    order: Order
    label: str
    station: str  # "" on the expo
    status: str  # its column: the least advanced bumpable item's status (a station), the order's (the expo)
    items: list[KitchenItem]
    bump_from: str | None = None  # the expected_status a bump sends (None: no bump from this screen)
    bump_to: str | None = None
    progress: list[tuple[str, bool]] = field(default_factory=list)  # expo: (station, done)
    void_pending: bool = False
    warn_seconds: int = DEFAULT_WARN_MINUTES * 60
    late_seconds: int = DEFAULT_LATE_MINUTES * 60
    rows: list[Row] = field(default_factory=list)  # the items, ready to print
    bump_text: str = ""  # the bump button's words ("Table 31: Cooking", "Hand out Table 31")
    progress_rows: list[tuple[str, bool]] = field(default_factory=list)  # expo: (station label, done)
    progress_text: str = ""  # expo: "1/2 stations done"
    timing: str = ""  # the card's data attributes for the timer: warn and late seconds, as text
    channel_name: str = ""

    @property
    def created_ms(self) -> str:
        """Milliseconds since the epoch, as text (the template prints it as is, no number localising)."""
        return str(int(self.order.created_at.timestamp() * 1000))

    @property
    def stations_done(self) -> int:
        return sum(1 for _station, done in self.progress if done)

    @property
    def customer(self) -> str:
        data = (self.order.snapshot or {}).get("data") or {}
        customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
        return str(customer.get("name") or "")

    @property
    def promised(self) -> str:
        data = (self.order.snapshot or {}).get("data") or {}
        customer = data.get("customer") if isinstance(data.get("customer"), dict) else {}
        return str(data.get("promised_at") or customer.get("pickup_time") or "")

    @property
    def notes(self) -> str:
        data = (self.order.snapshot or {}).get("data") or {}
        return str(data.get("notes") or "")

    @property
    def dom_id(self) -> str:
        return f"card-{self.order.pk}-{self.station or EXPO}"


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
    sold_out: list[str] = field(default_factory=list)
    void_pending: int = 0
    newest: list[Card] = field(default_factory=list)  # the rail: the newest tickets, newest first, always in sight
    poll_ms: int = field(default_factory=lambda: poll_ms())

    @property
    def is_expo(self) -> bool:
        return self.station == EXPO


# What a card never shows of an order (``build_board`` leaves these columns out).
ORDER_COLUMNS_OFF_THE_BOARD = (
    "session_key", "external_ref", "currency", "total_q", "confirmed_at", "processing_at",
    "ready_at", "dispatched_at", "delivered_at", "completed_at", "cancelled_at",
)


# A new ticket waits for the board's next poll: half the interval on average, all of it at worst.
POLL_MS = 500


def poll_ms() -> int:
    """How often a board asks whether anything changed: ``OMNIMAN["KITCHEN_POLL_MS"]`` (at least 100 ms)."""
    return max(int(conf.get("KITCHEN_POLL_MS", POLL_MS)), 100)


def _pending_void():
    return KitchenItem.objects.filter(order=OuterRef("pk"), voided_at__isnull=False, void_acknowledged_at__isnull=True)


def _filtered(channel_code: str, channels: Iterable[Channel] | None = None):
    """Orders on an admitted kitchen status, or with a void no cook acknowledged yet (a cancelled order's VOID).

    ``channels``: the active channels when the caller has them already (else one query).
    """
    statuses = set(board_columns())
    if channels is None:
        channels = Channel.objects.filter(is_active=True).only("config")
    for channel in channels:
        statuses.update(channel.kitchen_flow.admit_statuses)
    orders = Order.objects.filter(Q(status__in=sorted(statuses)) | Q(Exists(_pending_void())), channel__is_active=True)
    if channel_code:
        orders = orders.filter(channel__code=channel_code)
    return orders


def board_version(channel_code: str) -> str:
    """Changes whenever a card appears, moves or leaves, an item moves (it touches its order), or the 86 list changes."""
    row = _filtered(channel_code).aggregate(n=Count("id"), last=Max("updated_at"), top=Max("id"))
    sold = SoldOut.objects.aggregate(n=Count("id"), last=Max("updated_at"))
    last = row["last"].timestamp() if row["last"] else 0
    sold_last = sold["last"].timestamp() if sold["last"] else 0
    return f"{row['n']}-{row['top'] or 0}-{last:.6f}-{sold['n']}-{sold_last:.6f}"


def _tickets(orders) -> dict[str, int]:
    """Pickup numbers from the registered ticket source (omniman.contrib.refs); none without one."""
    return registry.tickets_for([order.ref for order in orders])


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


def _order_move_allowed(order: Order, items: list[KitchenItem], moved: list[KitchenItem], target: str, roles) -> bool:
    """Would moving ``moved`` to ``target`` ask an order move ``roles`` may not make (the service would refuse)?"""
    if roles is None:
        return True
    saved = [(item, item.status) for item in moved]
    for item in moved:
        item.status = target
    try:
        path = kitchen_order_path(order, items, order.channel.kitchen_flow, order.flow) or []
    finally:
        for item, status in saved:
            item.status = status
    current = order.status
    for step in path:
        if not order.flow.may_transition(roles, current, step):
            return False
        current = step
    return True


def _station_card(order, items, station, kflow: KitchenFlow, label, roles, config) -> Card | None:
    mine = [item for item in items if item.station == station]
    shown = [item for item in mine if not item.is_voided or item.void_pending]
    shown = [item for item in shown if item.is_voided or kflow.index(item.status) <= kflow.index(kflow.station_done)]
    if not shown:
        return None
    bumpable = [item for item in shown if item.is_live and kflow.station_may_bump(item.status)]
    live = [item for item in shown if item.is_live]
    if bumpable:
        status = min((item.status for item in bumpable), key=kflow.index)
    elif live:
        status = min((item.status for item in live), key=kflow.index)
    else:
        status = kflow.initial_status  # only held or voided items: shown where work starts
    card = Card(order=order, label=label, station=station, status=status, items=shown, **config)
    card.void_pending = any(item.void_pending for item in shown)
    if bumpable and kflow.admits(order.status):
        target = kflow.next(status)
        moved = [item for item in bumpable if item.status == status]
        if target and _order_move_allowed(order, items, moved, target, roles):
            card.bump_from, card.bump_to = status, target
    return card


def _expo_card(order, items, kflow: KitchenFlow, label, roles, config) -> Card | None:
    shown = [item for item in items if item.is_live or item.void_pending or (item.held and not item.is_voided)]
    if not shown:
        return None
    card = Card(order=order, label=label, station="", status=order.status, items=shown, **config)
    per_station: dict[str, bool] = {}
    for item in items:
        if item.is_live:
            per_station[item.station] = per_station.get(item.station, True) and kflow.station_is_done(item.status)
    card.progress = sorted(per_station.items())
    card.void_pending = any(item.void_pending for item in shown)
    live = [item for item in items if item.is_live]
    if live and kflow.admits(order.status) and all(kflow.station_is_done(item.status) for item in live):
        status = min((item.status for item in live), key=kflow.index)
        target = kflow.next(status)
        moved = [item for item in live if item.status == status]
        if target and _order_move_allowed(order, items, moved, target, roles):
            card.bump_from, card.bump_to = status, target
    return card


def _dress(card: Card, words: Words, *, expo: bool) -> Card:
    """Fill in what the template prints: item rows, the bump button's words, the expo's progress."""
    card.rows = [_row(item, words, expo=expo) for item in card.items]
    card.channel_name = card.order.channel.name
    card.progress_rows = [(words.station(station), done) for station, done in card.progress]
    if card.progress:
        card.progress_text = _("%(done)s/%(total)s stations done") % {"done": card.stations_done, "total": len(card.progress)}
    card.timing = f"{card.warn_seconds} {card.late_seconds}"
    if card.bump_to:
        if expo:
            card.bump_text = _("Hand out %(card)s") % {"card": card.label}
        else:
            card.bump_text = _("%(card)s: %(status)s") % {"card": card.label, "status": words.status(card.bump_to)}
    return card


def build_board(
    station: str = EXPO, channel_code: str = "", roles: Iterable[str] | None = None, *, version: str | None = None
) -> Board:
    """The board of one screen; with ``roles`` (the viewer's), a card offers only the moves they may make.

    A constant number of queries whatever the number of tickets and items.
    ``version`` is :func:`board_version` read before the board (the poll has
    just read it): read first, a change landing while the board is read makes
    the next poll differ, never hides a ticket behind a current version.
    """
    if version is None:
        version = board_version(channel_code)
    # Only the columns a card shows: 200 tickets are 1,000+ model instances, built field by field.
    kitchen_items = (
        KitchenItem.objects.select_related("item")
        .defer("moved_by", "void_acknowledged_by", "created_at", "item__unit_price_q", "item__line_total_q")
        .order_by("id")
    )
    channels = list(Channel.objects.filter(is_active=True).order_by("display_order", "code"))
    by_pk = {channel.pk: channel for channel in channels}
    orders = list(
        _filtered(channel_code, channels)
        .defer(*ORDER_COLUMNS_OFF_THE_BOARD)
        .prefetch_related(Prefetch("kitchen_items", queryset=kitchen_items, to_attr="kitchen"))
        .order_by("created_at", "id")
    )
    for order in orders:
        order.channel = by_pk[order.channel_id]  # one instance per channel, not one per order
    tickets = _tickets(orders)
    is_expo = station == EXPO
    column_names = board_columns() if is_expo else station_columns()
    columns: dict[str, list[Card]] = defaultdict(list)
    all_day: Counter = Counter()
    names: dict[str, str] = {}
    flows: dict[int, tuple[OrderFlow, KitchenFlow]] = {}
    words = Words()
    timings: dict[int, dict[str, int]] = {}
    for order in orders:
        flow, kflow = flows.get(order.channel_id) or flows.setdefault(
            order.channel_id, (order.flow, order.channel.kitchen_flow)
        )
        card_config = timings.get(order.channel_id)
        if card_config is None:
            config = (order.channel.config or {}).get("kitchen") or {}
            card_config = timings[order.channel_id] = {
                "warn_seconds": int(config.get("warn_minutes", DEFAULT_WARN_MINUTES)) * 60,
                "late_seconds": int(config.get("late_minutes", DEFAULT_LATE_MINUTES)) * 60,
            }
        admitted = kflow.admits(order.status)
        items = order.kitchen
        if not admitted and not any(item.void_pending for item in items):
            continue  # the channel keeps it off the kitchen (e.g. a web order waiting to be paid)
        label = card_label(order, tickets.get(order.ref), flow)
        if is_expo:
            card = _expo_card(order, items, kflow, label, roles, card_config)
        else:
            card = _station_card(order, items, station, kflow, label, roles, card_config)
        if card is None:
            continue
        _dress(card, words, expo=is_expo)
        column = card.status if card.status in column_names else (column_names[0] if not admitted else column_names[-1])
        if is_expo and not admitted:
            column = column_names[0]  # a cancelled order's VOID waits for its acknowledgement in the first column
        columns[column].append(card)
        for item in card.items:
            if item.is_live and admitted and not kflow.station_is_done(item.status):
                all_day[item.item.sku] += item.item.qty - item.voided_qty
                names[item.item.sku] = item.item.name
    for cards in columns.values():
        cards.sort(key=lambda card: not card.void_pending)  # a VOID waiting for a cook leads its column (stable: oldest first after it)
    if is_expo:
        terms: dict[str, str] = {}
        for order in orders:
            for status in column_names:
                terms.setdefault(status, order.channel.term(status))
        labels = {status: terms.get(status) or status_label(status) for status in column_names}
    else:
        labels = {status: words.status(status) for status in column_names}
    return Board(
        station=station,
        channel=channel_code,
        columns=[(status, labels[status], columns.get(status, [])) for status in column_names],
        all_day=[(names[sku], words.qty(qty)) for sku, qty in sorted(all_day.items(), key=lambda kv: (-kv[1], names[kv[0]]))],
        stations=[EXPO, *stations()],
        channels=channels,
        version=version,
        max_order_id=max((order.pk for order in orders), default=0),
        sold_out=sorted(SoldOut.objects.filter(sold_out=True).values_list("sku", flat=True)),
        void_pending=sum(1 for cards in columns.values() for card in cards if card.void_pending),
        newest=sorted(
            (card for cards in columns.values() for card in cards), key=lambda card: (card.order.created_at, card.order.pk), reverse=True
        )[:RAIL_SIZE],
    )


@dataclass
class Recalled:
    order: Order
    label: str
    station: str
    status: str
    items: list[KitchenItem]


def recalled(station: str = EXPO, channel_code: str = "", minutes: int = RECALL_MINUTES) -> list[Recalled]:
    """Items bumped in the last ``minutes`` that an undo can restore, grouped per order (and station), newest first."""
    since = timezone.now() - timedelta(minutes=minutes)
    rows = (
        KitchenItem.objects.filter(moved_at__gte=since, moved_by__startswith="user:")
        .exclude(previous_status="")
        .select_related("item", "order", "order__channel")
        .order_by("-moved_at", "-id")
    )
    if station != EXPO:
        rows = rows.filter(station=station)
    if channel_code:
        rows = rows.filter(order__channel__code=channel_code)
    groups: dict[tuple[int, str, str], Recalled] = {}
    rows = list(rows[:100])
    tickets = _tickets({row.order for row in rows})
    for row in rows:
        key = (row.order_id, row.station if station != EXPO else "", row.status)
        if key not in groups:
            groups[key] = Recalled(row.order, card_label(row.order, tickets.get(row.order.ref)), key[1], row.status, [])
        groups[key].items.append(row)
    return list(groups.values())[:20]


# -- views ----------------------------------------------------------------------------------------


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
    context = {"board": board, "recall": recall, "recalled": recalled(station, channel) if recall else []}
    return render(request, "kitchen/board.html", context)


@require_GET
@kitchen_required
@vary_on_headers("HX-Request")
def board_poll(request):
    """The board region, or ``204`` (no body, no template) when the version the client shows is current."""
    station, channel = _params(request)
    version = board_version(channel)
    if request.GET.get("v") == version:
        response = HttpResponse(status=204)
        response["Cache-Control"] = "no-store"
        return response
    board = build_board(station, channel, roles_of(request.user), version=version)
    recall = request.GET.get("recall") == "1"
    context = {"board": board, "recall": recall, "recalled": recalled(station, channel) if recall else []}
    return render(request, "kitchen/board.html#board", context)


def _answer(request, station: str, channel: str, notice: str, *, recall: bool = False):
    if not request.htmx:
        url = reverse("kitchen:board") + f"?station={station}&channel={channel}" + ("&recall=1" if recall else "")
        return redirect(url)
    board = build_board(station, channel, roles_of(request.user))
    return render(request, "kitchen/board.html#board", {"board": board, "notice": notice})


def _notice(exc: OmnimanError, label: str) -> str:
    if exc.code == "stale_status":
        return _("%(card)s was already moved on another screen.") % {"card": label}
    if exc.code == "forbidden_transition":
        return _("%(card)s: your role may not move this order on.") % {"card": label}
    return f"{label}: {exc.message}"


@require_POST
@kitchen_required
def bump(request):
    """Bump a card: a station's items in ``expected_status`` (or, on the expo, the whole order's) one step on."""
    station, channel = _params(request)
    ref = request.POST.get("order_ref", "")[:64]
    expected = request.POST.get("expected_status", "")[:32]
    label = request.POST.get("label", "")[:64] or ref[-6:]
    notice = ""
    try:
        KitchenService.bump(
            order_ref=ref,
            station=None if station == EXPO else station,
            expected_status=expected,
            actor=actor(request),
            roles=roles_of(request.user),
        )
    except OmnimanError as exc:
        notice = _notice(exc, label) if exc.code != "not_found" else _("That order no longer exists.")
    return _answer(request, station, channel, notice)


@require_POST
@kitchen_required
def undo(request):
    """Undo a bump from the recall list: the items go back to where they were, if nobody moved them since."""
    station, channel = _params(request)
    ref = request.POST.get("order_ref", "")[:64]
    expected = request.POST.get("expected_status", "")[:32]
    label = request.POST.get("label", "")[:64] or ref[-6:]
    notice = ""
    try:
        KitchenService.undo(
            order_ref=ref,
            station=None if station == EXPO else station,
            expected_status=expected,
            actor=actor(request),
            roles=roles_of(request.user),
        )
    except OmnimanError as exc:
        notice = _notice(exc, label) if exc.code != "not_found" else _("That order no longer exists.")
    if not request.htmx:
        return _answer(request, station, channel, notice, recall=True)
    board = build_board(station, channel, roles_of(request.user))
    context = {"board": board, "notice": notice, "recall": True, "recalled": recalled(station, channel)}
    return render(request, "kitchen/board.html#board", context)


@require_POST
@kitchen_required
def acknowledge(request):
    """A cook saw a card's VOID: its mark and sound stop."""
    station, channel = _params(request)
    ref = request.POST.get("order_ref", "")[:64]
    notice = ""
    try:
        KitchenService.acknowledge_void(order_ref=ref, station=None if station == EXPO else station, actor=actor(request))
    except OmnimanError as exc:
        notice = exc.message
    return _answer(request, station, channel, notice)


@require_POST
@kitchen_required
def sold_out(request):
    """86 a product (``sold_out=1``) or put it back on (``sold_out=0``); the POS tiles follow within a poll."""
    station, channel = _params(request)
    sku = request.POST.get("sku", "").strip()[:64]
    notice = ""
    try:
        KitchenService.set_sold_out(sku, request.POST.get("sold_out") == "1", actor=actor(request))
    except OmnimanError as exc:
        notice = exc.message
    return _answer(request, station, channel, notice)
