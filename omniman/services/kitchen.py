"""The kitchen's use cases: items move per station; the order follows its items.

Every order line gets a ``KitchenItem`` when its order is created (same
transaction). A station bumps *its* items along the channel's
``kitchen_flow`` (``queued → cooking → ready`` by default); the expo hands
the order out (``ready → served``). After each move the order's status follows
from its least advanced live item (``kitchen_flow.order_statuses``), through
``OrderService.transition`` with ``expected_status`` — never by a view.

Every method locks the order's row first (the one order lock), so two stations
bumping items of one order at once are serialised: each item moves once and
the order's status is computed from what both did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, connections, router, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman import conf, registry
from omniman.exceptions import InvalidTransition, OmnimanError, ValidationError
from omniman.flow import KitchenFlow, OrderFlow
from omniman.models import KitchenItem, Order, OrderEvent, OrderItem, SoldOut, kept_per_connection
from omniman.services.orders import OrderService, lock_order

logger = logging.getLogger("omniman.services")

# OrderEvent types the kitchen writes.
BUMPED = "kitchen.bumped"
UNDONE = "kitchen.undone"
FIRED = "kitchen.fired"
HELD = "kitchen.held"
VOID_ACKNOWLEDGED = "kitchen.void_acknowledged"
SOLD_OUT = "kitchen.sold_out"
# The event a void writes (``BillService.void_item``): ``{"line_id", "qty", "reason"}``.
ITEM_VOIDED = "item_voided"


@dataclass(frozen=True)
class KitchenResult:
    """What a kitchen move did: the order (with its status now) and the items it moved."""

    order: Order
    items: list[KitchenItem]

    def as_dict(self) -> dict[str, Any]:
        return {
            "order_ref": self.order.ref,
            "order_status": self.order.status,
            "items": [item_dict(item) for item in self.items],
        }


def item_dict(item: KitchenItem) -> dict[str, Any]:
    return {
        "id": item.pk,
        "line_id": item.line_id,
        "station": item.station,
        "status": item.status,
        "held": item.held,
        "voided_qty": str(item.voided_qty),
        "void_pending": item.void_pending,
        "rev": item.rev,
    }


# -- creation (the commit's hook) ---------------------------------------------------------------


def create_items(order: Order, order_items: Iterable[OrderItem]) -> None:
    """One ``KitchenItem`` per order line, in the caller's (the commit's) transaction.

    The station is the line's ``meta["station"]``, else the registered station
    source's (the catalog's), else ``OMNIMAN["KITCHEN_DEFAULT_STATION"]``
    (``"kitchen"``; ``""``: none); a line with ``meta["hold"]`` starts held. One
    ``INSERT … SELECT`` over the order's lines, the station and the hold chosen per
    line in it (``CASE``): one statement for any number of lines and stations.
    """
    order_items = list(order_items)
    missing = sorted({i.sku for i in order_items if not (i.meta or {}).get("station")})
    stations = registry.stations_for(missing) if missing else {}
    default = str(conf.get("KITCHEN_DEFAULT_STATION", "kitchen") or "")
    by_station: dict[str, list[str]] = {}
    for item in order_items:
        station = str((item.meta or {}).get("station") or stations.get(item.sku) or default)[:32]
        if station:
            by_station.setdefault(station, []).append(item.line_id)
    held = [item.line_id for item in order_items if (item.meta or {}).get("hold")]
    _insert_for(order, order.channel.kitchen_flow.initial_status, by_station=by_station, held=held)


def _insert_for(order: Order, status: str, *, by_station: dict[str, list[str]], held: list[str]) -> None:
    """``INSERT INTO kitchen items SELECT … FROM the order's items``: one statement for any number of lines;
    each line's station (``by_station``: station → line ids) and hold (``held``: line ids) chosen by ``CASE``."""
    kitchen, lines = KitchenItem._meta, OrderItem._meta
    quote = connection.ops.quote_name
    line_column = quote(lines.get_field("line_id").column)

    def among(line_ids: list[str]) -> tuple[str, list[str]]:
        return f"{line_column} IN ({', '.join(['%s'] * len(line_ids))})", list(line_ids)

    station_sql, station_params = "%s", [""]
    if by_station:
        whens, station_params = [], []
        for station, line_ids in sorted(by_station.items()):
            condition, condition_params = among(line_ids)
            whens.append(f"WHEN {condition} THEN %s")
            station_params += [*condition_params, station]
        station_sql = f"CASE {' '.join(whens)} ELSE %s END"
        station_params.append("")
    held_sql, held_params = "%s", [False]
    if held:
        condition, condition_params = among(held)
        held_sql, held_params = f"CASE WHEN {condition} THEN %s ELSE %s END", [*condition_params, True, False]
    values = {
        "order_id": ("%s", order.pk),
        "item_id": (quote(lines.pk.column), None),
        "line_id": (line_column, None),
        "station": (station_sql, station_params),
        "status": ("%s", status),
        "held": (held_sql, held_params),
        "previous_status": ("%s", ""),
        "moved_by": ("%s", ""),
        "voided_qty": ("%s", Decimal("0")),
        "void_reason": ("%s", ""),
        "void_acknowledged_by": ("%s", ""),
        "rev": ("%s", 0),
        "created_at": ("%s", timezone.now()),
        "updated_at": ("%s", timezone.now()),
    }
    columns, selects, params = [], [], []
    for name, (sql, value) in values.items():
        field = kitchen.get_field(name.removesuffix("_id") if name in ("order_id", "item_id") else name)
        columns.append(quote(field.column))
        selects.append(sql)
        if name in ("station", "held"):
            params.extend(field.get_db_prep_save(v, connection) if isinstance(v, bool) else v for v in value)
        elif sql == "%s":
            params.append(field.get_db_prep_save(value, connection))
    params.append(order.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(kitchen.db_table)} ({', '.join(columns)}) "
            f"SELECT {', '.join(selects)} FROM {quote(lines.db_table)} "
            f"WHERE {quote(lines.get_field('order').column)} = %s ORDER BY {quote(lines.pk.column)}",
            params,
        )


# -- the order follows its items ----------------------------------------------------------------


def least_status(items: Iterable[KitchenItem], kflow: KitchenFlow) -> str | None:
    """The least advanced status among the live items (``None``: none is live)."""
    live = [item.status for item in items if item.is_live]
    return min(live, key=kflow.index) if live else None


def order_path(order: Order, items: Iterable[KitchenItem], kflow: KitchenFlow, flow: OrderFlow) -> list[str] | None:
    """The order moves its items' state asks for (``[]``: none; ``None``: its flow cannot get there)."""
    least = least_status(items, kflow)
    target = kflow.order_status_for(least) if least else None
    if not target or target == order.status:
        return []
    return flow.path(order.status, target)


def _follow(order: Order, items: list[KitchenItem], *, actor: str, roles: Iterable[str] | None, strict: bool) -> Order:
    """Move the (locked) order where its items say, one step at a time, through ``OrderService.transition``.

    ``strict``: an order its flow cannot move there is refused (``invalid_transition``), else left.
    """
    flow = order.flow
    path = order_path(order, items, order.channel.kitchen_flow, flow)
    if path is None:
        if strict:
            raise InvalidTransition(
                "invalid_transition",
                _("Order %(order_ref)s cannot go back from %(order_status)s.")
                % {"order_ref": order.ref, "order_status": repr(order.status)},
                {"order_ref": order.ref, "from": order.status},
            )
        return order
    for step in path:
        order = OrderService.transition(
            order.ref, step, actor=actor, expected_status=order.status, reason="kitchen", roles=roles
        )
    return order


def _touch(order: Order) -> None:
    """Bump the order's ``updated_at``: the board's one-query version sees the kitchen's change."""
    order.save(update_fields=["updated_at"])


# -- the service ----------------------------------------------------------------------------------


def _not_found(what: str, context: dict[str, Any]) -> OmnimanError:
    return OmnimanError("not_found", _("No kitchen item %(what)s.") % {"what": what}, context)


def _lock(*, item_ids: Iterable[int] | None, order_ref: str | None) -> tuple[Order, list[KitchenItem]]:
    """Lock the order (the one order lock), then its kitchen items; the order is named by ``order_ref`` or by the items."""
    if item_ids is not None:
        ids = sorted({int(i) for i in item_ids})
        if not ids:
            raise ValidationError("missing_items", _("Name at least one item."), {"field": "item_ids"})
        refs = set(KitchenItem.objects.filter(pk__in=ids).values_list("order__ref", flat=True))
        if len(refs) > 1:
            raise ValidationError("one_order", _("The items belong to different orders."), {"item_ids": ids})
        if not refs or (order_ref and refs != {order_ref}):
            raise _not_found(repr(ids), {"item_ids": ids, "order_ref": order_ref})
        order_ref = refs.pop()
    order = lock_order(order_ref)
    items = list(KitchenItem.objects.select_for_update().select_related("item").filter(order=order).order_by("id"))
    if item_ids is not None:
        found = {item.pk for item in items}
        unknown = [i for i in ids if i not in found]
        if unknown:
            raise _not_found(repr(unknown), {"item_ids": unknown})
    return order, items


def _stale(order: Order, expected: str, context: dict[str, Any]) -> InvalidTransition:
    return InvalidTransition(
        "stale_status",
        _("%(order)s: those items are no longer %(expected_status)s (moved on another screen).")
        % {"order": order.ref, "expected_status": repr(expected)},
        {"order_ref": order.ref, "expected_status": expected, **context},
    )


def _chosen(items: list[KitchenItem], item_ids, station: str | None) -> list[KitchenItem]:
    if item_ids is not None:
        wanted = {int(i) for i in item_ids}
        return [item for item in items if item.pk in wanted]
    return [item for item in items if station is None or item.station == station]


def _require_admitted(order: Order, kflow: KitchenFlow) -> None:
    if not kflow.admits(order.status):
        raise InvalidTransition(
            "not_in_kitchen",
            _("Order %(order_ref)s is %(order_status)s: it has not reached the kitchen (or has left it).")
            % {"order_ref": order.ref, "order_status": repr(order.status)},
            {"order_ref": order.ref, "order_status": order.status, "admit_statuses": kflow.admit_statuses},
        )


class KitchenService:
    @staticmethod
    @transaction.atomic
    def bump(
        *,
        item_ids: Iterable[int] | None = None,
        order_ref: str | None = None,
        station: str | None = None,
        expected_status: str,
        actor: str = "system",
        roles: Iterable[str] | None = None,
    ) -> KitchenResult:
        """Move items one step along the kitchen flow; the order follows.

        Name the items by ``item_ids``, or by ``order_ref`` and ``station``
        (that station's live items in ``expected_status``; ``station=None``:
        the expo, every station). A station (``station`` given) moves items up
        to ``kitchen_flow.station_done``; beyond it (handing out) is the expo's,
        and only once every live item of the order is done.

        Errors: ``not_found`` (404); ``stale_status`` (409: an item is no longer
        in ``expected_status``, or none is); ``item_held`` (409); ``not_in_kitchen``
        (409: the channel keeps the order off the kitchen, e.g. a web order
        waiting to be paid); ``not_ready`` (409: handing out before every station
        is done); ``invalid_transition`` (400: nothing follows ``expected_status``,
        or a station bumping past its work); ``forbidden_transition`` (403: the
        order move this causes is not one ``roles`` may make). Nothing changes on
        any error.
        """
        order, items = _lock(item_ids=item_ids, order_ref=order_ref)
        kflow = order.channel.kitchen_flow
        _require_admitted(order, kflow)
        chosen = [item for item in _chosen(items, item_ids, station) if not item.is_voided]
        if item_ids is not None:
            if any(item.held for item in chosen):
                raise InvalidTransition("item_held", _("A held item is fired from the POS first."), {"order_ref": order.ref})
            if not chosen or any(item.status != expected_status for item in chosen):
                raise _stale(order, expected_status, {"item_ids": sorted(int(i) for i in item_ids)})
        else:
            chosen = [item for item in chosen if not item.held and item.status == expected_status]
            if not chosen:
                raise _stale(order, expected_status, {"station": station})
        target = kflow.next(expected_status)
        if target is None or (station is not None and not kflow.station_may_bump(expected_status)):
            raise InvalidTransition(
                "invalid_transition",
                _("Items in %(status)s cannot be bumped from this screen.") % {"status": repr(expected_status)},
                {"order_ref": order.ref, "from": expected_status, "station": station},
            )
        if kflow.index(target) > kflow.index(kflow.station_done):
            waiting = [item for item in items if item.is_live and not kflow.station_is_done(item.status)]
            if waiting:
                raise InvalidTransition(
                    "not_ready",
                    _("%(order)s: %(count)s item(s) are not done at their station yet.")
                    % {"order": order.ref, "count": len(waiting)},
                    {"order_ref": order.ref, "waiting": [item.line_id for item in waiting]},
                )
        now = timezone.now()
        for item in chosen:
            item.previous_status, item.status = item.status, target
            item.moved_at, item.moved_by, item.updated_at = now, actor[:150], now
            item.rev += 1
        KitchenItem.objects.bulk_update(chosen, ["status", "previous_status", "moved_at", "moved_by", "rev", "updated_at"])
        order.emit_event(
            BUMPED,
            actor=actor,
            payload={
                "items": [item.pk for item in chosen],
                "line_ids": [item.line_id for item in chosen],
                "station": station or "",
                "from": expected_status,
                "to": target,
            },
        )
        _touch(order)
        order = _follow(order, items, actor=actor, roles=roles, strict=False)
        logger.info("kitchen bump", extra={"order_ref": order.ref, "actor": actor, "from": expected_status, "to": target})
        return KitchenResult(order, chosen)

    @staticmethod
    @transaction.atomic
    def undo(
        *,
        item_ids: Iterable[int] | None = None,
        order_ref: str | None = None,
        station: str | None = None,
        expected_status: str,
        actor: str = "system",
        roles: Iterable[str] | None = None,
    ) -> KitchenResult:
        """Restore bumped items to the status before their last bump, within ``kitchen_flow.undo_minutes``.

        Stale-safe: the items must still be in ``expected_status`` (what the
        recall list showed), else ``stale_status`` (409). An item never bumped,
        or bumped too long ago: ``undo_expired`` (409); an order that left the
        kitchen (handed out, cancelled): ``not_in_kitchen`` (409). The order
        follows back when its flow allows the move (e.g. ``ready →
        processing``); where it does not (the default flow), the order keeps
        its status and the items say what is left to do (the expo cannot hand
        it out until they are done again: ``not_ready``).
        """
        order, items = _lock(item_ids=item_ids, order_ref=order_ref)
        kflow = order.channel.kitchen_flow
        _require_admitted(order, kflow)
        chosen = [item for item in _chosen(items, item_ids, station) if item.status == expected_status]
        if not chosen or (item_ids is not None and len(chosen) != len(set(item_ids))):
            raise _stale(order, expected_status, {"station": station})
        since = timezone.now() - timedelta(minutes=kflow.undo_minutes)
        if any(not item.previous_status or item.moved_at is None or item.moved_at < since for item in chosen):
            raise InvalidTransition(
                "undo_expired",
                _("%(order)s: that bump can no longer be undone.") % {"order": order.ref},
                {"order_ref": order.ref, "undo_minutes": kflow.undo_minutes},
            )
        now = timezone.now()
        moves = []
        for item in chosen:
            moves.append((item.pk, item.status, item.previous_status))
            item.status, item.previous_status = item.previous_status, ""
            item.moved_at, item.moved_by, item.updated_at = now, actor[:150], now
            item.rev += 1
        KitchenItem.objects.bulk_update(chosen, ["status", "previous_status", "moved_at", "moved_by", "rev", "updated_at"])
        order.emit_event(
            UNDONE,
            actor=actor,
            payload={"items": [m[0] for m in moves], "from": expected_status, "to": sorted({m[2] for m in moves}), "station": station or ""},
        )
        _touch(order)
        order = _follow(order, items, actor=actor, roles=roles, strict=False)
        return KitchenResult(order, chosen)

    @staticmethod
    @transaction.atomic
    def fire(order_ref: str, *, line_ids: Iterable[str] | None = None, actor: str = "system") -> KitchenResult:
        """Send held items to their stations (a course fired from the POS); ``line_ids=None``: every held item.

        Firing what is not held changes nothing for that item. ``not_found`` for an unknown line.
        The order follows (an order that was ready goes back to cooking where its flow allows).
        """
        return _set_held(order_ref, line_ids, held=False, actor=actor)

    @staticmethod
    @transaction.atomic
    def hold(order_ref: str, *, line_ids: Iterable[str], actor: str = "system") -> KitchenResult:
        """Hold items (a later course): greyed on the board, not bumpable, until fired. Only items still in the first status."""
        return _set_held(order_ref, line_ids, held=True, actor=actor)

    @staticmethod
    @transaction.atomic
    def acknowledge_void(
        *, item_ids: Iterable[int] | None = None, order_ref: str | None = None, station: str | None = None, actor: str = "system"
    ) -> KitchenResult:
        """A cook saw the VOID: its mark (and sound) stop. Idempotent for items already acknowledged."""
        order, items = _lock(item_ids=item_ids, order_ref=order_ref)
        chosen = [item for item in _chosen(items, item_ids, station) if item.void_pending]
        now = timezone.now()
        for item in chosen:
            item.void_acknowledged_at, item.void_acknowledged_by, item.updated_at = now, actor[:150], now
            item.rev += 1
        if chosen:
            KitchenItem.objects.bulk_update(chosen, ["void_acknowledged_at", "void_acknowledged_by", "rev", "updated_at"])
            order.emit_event(VOID_ACKNOWLEDGED, actor=actor, payload={"items": [item.pk for item in chosen]})
            _touch(order)
        return KitchenResult(order, chosen)

    @staticmethod
    @transaction.atomic
    def void(order_ref: str, *, line_id: str, qty: Any = None, reason: str = "", actor: str = "system") -> KitchenResult:
        """Record a void at the kitchen (what an ``item_voided`` event does): the board shows VOID until acknowledged.

        ``qty=None``: the whole line. The order's own void (``BillService.void_item``) calls nothing here: its
        ``item_voided`` event reaches the kitchen by itself.
        """
        order, items = _lock(item_ids=None, order_ref=order_ref)
        item = next((i for i in items if i.line_id == line_id), None)
        if item is None:
            raise _not_found(repr(line_id), {"order_ref": order_ref, "line_id": line_id})
        _apply_void(order, items, item, qty, reason)
        return KitchenResult(order, [item])

    @staticmethod
    @transaction.atomic
    def set_sold_out(sku: str, sold_out: bool, *, actor: str = "system") -> SoldOut:
        """Mark a product sold out ("86") or back on; the POS refuses a sold-out SKU (``sold_out``)."""
        sku = str(sku or "").strip()
        if not sku or len(sku) > 64:
            raise ValidationError("invalid_sku", _("Name the product's SKU."), {"field": "sku"})
        row, _created = SoldOut.objects.select_for_update().get_or_create(sku=sku, defaults={"sold_out": bool(sold_out), "actor": actor[:150]})
        if not _created:
            row.sold_out, row.actor = bool(sold_out), actor[:150]
            row.save(update_fields=["sold_out", "actor", "updated_at"])
        logger.info("sold out" if sold_out else "back on", extra={"sku": sku, "actor": actor})
        return row


def _set_held(order_ref: str, line_ids: Iterable[str] | None, *, held: bool, actor: str) -> KitchenResult:
    order, items = _lock(item_ids=None, order_ref=order_ref)
    if line_ids is not None:
        wanted = [str(line_id) for line_id in line_ids]
        known = {item.line_id for item in items}
        unknown = [line_id for line_id in wanted if line_id not in known]
        if unknown:
            raise _not_found(repr(unknown), {"order_ref": order_ref, "line_ids": unknown})
        chosen = [item for item in items if item.line_id in wanted]
    else:
        chosen = list(items)
    initial = order.channel.kitchen_flow.initial_status
    chosen = [item for item in chosen if item.held != held and (not held or item.status == initial)]
    now = timezone.now()
    for item in chosen:
        item.held, item.updated_at = held, now
        item.rev += 1
    if chosen:
        KitchenItem.objects.bulk_update(chosen, ["held", "rev", "updated_at"])
        order.emit_event(FIRED if not held else HELD, actor=actor, payload={"line_ids": [item.line_id for item in chosen]})
        _touch(order)
        if not order.is_terminal:
            order = _follow(order, items, actor=actor, roles=None, strict=False)
    return KitchenResult(order, chosen)


def _apply_void(order: Order, items: list[KitchenItem], item: KitchenItem, qty: Any, reason: str) -> None:
    """Mark ``item`` (of the locked ``order``) voided by ``qty`` (``None``: all of it); the order follows."""
    now = timezone.now()
    try:
        amount = item.item.qty if qty in (None, "") else Decimal(str(qty))
    except ArithmeticError:  # an unreadable quantity voids the whole line: the kitchen must not cook it
        amount = item.item.qty
    if not amount.is_finite() or amount <= 0:
        amount = item.item.qty
    item.voided_qty = min(item.item.qty, item.voided_qty + amount)
    item.voided_at, item.void_reason = now, str(reason or "")[:255]
    item.void_acknowledged_at, item.void_acknowledged_by = None, ""
    item.rev += 1
    item.save(update_fields=["voided_qty", "voided_at", "void_reason", "void_acknowledged_at", "void_acknowledged_by", "rev", "updated_at"])
    _touch(order)
    if not order.is_terminal and order.channel.kitchen_flow.admits(order.status):
        _follow(order, items, actor="system", roles=None, strict=False)


def on_order_event(sender, instance: OrderEvent, created: bool, **kwargs) -> None:
    """Voids reach the kitchen from the order's events, in their transaction.

    ``item_voided`` ``{line_id, qty, reason}`` voids that line's kitchen item;
    a ``status_changed`` into the flow's cancel status voids every item not
    yet voided. Either shows VOID on the board until a cook acknowledges it.
    """
    if not created or instance.type not in (ITEM_VOIDED, "status_changed"):
        return
    with transaction.atomic():  # the writer's transaction (a savepoint), or its own when it has none
        _on_order_event(instance)


def follows_status(order: Order, status: str) -> bool:
    """Might a ``status_changed`` of ``order`` into ``status`` move or void its items (:func:`on_order_event`)?

    ``False`` when ``status`` is neither the flow's cancel status nor an order
    status of an item status (``kitchen_flow.order_statuses``): then the event
    needs no ``post_save``, and a commit writes its ``on_create`` move's event in
    one ``INSERT`` with the order's others.
    """
    if status == order.channel.order_flow.cancel_status:
        return True
    return status in order.channel.kitchen_flow.order_statuses.values()


def _on_order_event(instance: OrderEvent) -> None:
    if instance.type == ITEM_VOIDED:
        payload = instance.payload or {}
        order = lock_order(instance.order.ref)
        items = list(KitchenItem.objects.select_for_update().select_related("item").filter(order=order))
        item = next((i for i in items if i.line_id == str(payload.get("line_id"))), None)
        if item is not None:
            _apply_void(order, items, item, payload.get("qty"), str(payload.get("reason") or ""))
    elif instance.type == "status_changed":
        order = instance.order
        to = (instance.payload or {}).get("to")
        if to and to != order.flow.cancel_status and (instance.payload or {}).get("reason") != "kitchen":
            _catch_up(order, to)
        if not to or to != order.flow.cancel_status:
            return
        now = timezone.now()
        items = list(KitchenItem.objects.select_for_update().select_related("item").filter(order=order))
        changed = [item for item in items if not item.is_voided]
        for item in changed:
            item.voided_qty, item.voided_at = item.item.qty, now
            item.void_reason = str((instance.payload or {}).get("reason") or "")[:255]
            item.void_acknowledged_at, item.void_acknowledged_by, item.updated_at = None, "", now
            item.rev += 1
        if changed:
            KitchenItem.objects.bulk_update(
                changed, ["voided_qty", "voided_at", "void_reason", "void_acknowledged_at", "void_acknowledged_by", "rev", "updated_at"]
            )


def _catch_up(order: Order, status: str) -> None:
    """An order moved by someone else (the POS, the API, an integration): its lagging items catch up.

    When ``status`` is the order status of an item status (``kitchen_flow.order_statuses``), the
    live items not that far yet move there, so that the stations never show work the order is past.
    """
    kflow = order.channel.kitchen_flow
    reached = [item_status for item_status, order_status in kflow.order_statuses.items() if order_status == status]
    if not reached:
        return
    target = max(reached, key=kflow.index)
    now = timezone.now()
    items = list(KitchenItem.objects.select_for_update().select_related("item").filter(order=order))
    lagging = [item for item in items if item.is_live and kflow.index(item.status) < kflow.index(target)]
    for item in lagging:
        item.status, item.previous_status, item.updated_at = target, "", now
        item.rev += 1
    if lagging:
        KitchenItem.objects.bulk_update(lagging, ["status", "previous_status", "rev", "updated_at"])


def order_kitchen(order_ref: str) -> KitchenResult:
    """An order and all its kitchen items (``not_found`` for an unknown ref): two queries, no lock."""
    order = Order.objects.select_related("channel").filter(ref=order_ref or "").first()
    if order is None:
        raise OmnimanError("not_found", _("No order %(order_ref)s.") % {"order_ref": repr(order_ref)}, {"order_ref": order_ref})
    return KitchenResult(order, list(KitchenItem.objects.select_related("item").filter(order=order).order_by("id")))


def sold_out_skus() -> set[str]:
    """The SKUs marked sold out ("86"), one query.

    ``SoldOut.objects.filter(sold_out=True).values_list("sku")`` as SQL written
    once per connection: every modify that adds a SKU reads it, and the ORM
    spent more CPU building the query than the database answering it.
    """
    alias = router.db_for_read(SoldOut)
    conn = connections[alias]

    def build() -> str:
        qn, meta = conn.ops.quote_name, SoldOut._meta
        return (
            f"SELECT {qn(meta.get_field('sku').column)} FROM {qn(meta.db_table)} "
            f"WHERE {qn(meta.get_field('sold_out').column)}"
        )

    with conn.cursor() as cursor:
        cursor.execute(kept_per_connection(conn, "kitchen.sold_out", build))
        return {row[0] for row in cursor.fetchall()}


SOLD_OUT_CTX_KEY = "_kitchen_sold_out"


def load_sold_out(ctx: dict[str, Any]) -> None:
    """Put the 86 list in a modification's ``ctx`` (one query), for its ops to check."""
    ctx[SOLD_OUT_CTX_KEY] = frozenset(sold_out_skus())


def require_not_sold_out(sku: str, ctx: dict[str, Any] | None = None) -> None:
    """``ValidationError("sold_out")`` when the kitchen marked ``sku`` sold out.

    The ops read the list the pipeline put in ``ctx`` (``load_sold_out``); without one they check nothing
    (the ops stay pure functions of the session).
    """
    sold = (ctx or {}).get(SOLD_OUT_CTX_KEY) or frozenset()
    if sku in sold:
        raise ValidationError("sold_out", _("%(sku)s is sold out.") % {"sku": sku}, {"sku": sku, "field": "sku"})
