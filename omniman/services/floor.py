"""The floor: moving lines and tabs between tables, merging tabs, the floor plan's layout, and the map's read.

A table is a session handle (a handle type the channel's flow names in
``table_handle_types``; ``handle_ref`` is the table's label). Its tab is its
open session (the round being composed) plus its rounds of today (orders).

Moves between tables (``FloorService``):

* ``transfer_lines`` — chosen lines of a table's open round go to another table's open round;
* ``move_tab`` — the whole tab (open round's lines and the active rounds) goes to a free table;
* ``merge_tabs`` — the whole tab joins another table's tab (occupied or not).

Each runs in one transaction: the target's tab is got-or-opened, then both
session rows are locked **in primary-key order** (two moves between the same
tables in opposite directions cannot deadlock), re-read, compared with the revs
the caller saw (``expected_rev`` / ``to_expected_rev``: ``stale_rev``, 409,
``context["side"]`` says which), and only then written. Both sessions go
through the pipeline (rev + 1, checks cleared). Orders are immutable, so a
moved round keeps its ``handle_ref`` (where it was sent from) and changes its
``current_handle_ref`` (where it is now: the kitchen ticket and the table's
rounds read that one), with an ``OrderEvent("table_moved")``. Every move writes
one ``TableMove`` row (the audit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman.exceptions import SessionError, ValidationError
from omniman.models import Channel, FloorArea, FloorTable, Order, Session, TableMove
from omniman.models.floor import GRID_COLUMNS, GRID_ROWS
from omniman.services import pipeline
from omniman.services._common import find_session, require_open
from omniman.services.ops import _new_line_id
from omniman.services.sessions import SessionService, require_rev
from omniman.services.tables import orders_of_handle_today

logger = logging.getLogger("omniman.services")

TABLE_MOVED = "table_moved"
MAX_TABLE_LENGTH = 32


@dataclass(frozen=True)
class FloorMove:
    """What a move did: the source and target sessions after it, and its audit row."""

    source: Session
    target: Session
    move: TableMove

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.move.kind,
            "from_table": self.move.from_table,
            "to_table": self.move.to_table,
            "line_ids": list(self.move.line_ids),
            "order_refs": list(self.move.order_refs),
            "source": {"session_key": self.source.session_key, "rev": self.source.rev, "state": self.source.state},
            "target": {"session_key": self.target.session_key, "rev": self.target.rev, "state": self.target.state},
        }


class FloorService:
    @staticmethod
    @transaction.atomic
    def transfer_lines(
        session_key: str,
        channel_code: str,
        *,
        line_ids: list[str],
        to_table: str,
        expected_rev: int | None = None,
        to_expected_rev: int | None = None,
        actor: str = "system",
    ) -> FloorMove:
        """Move the lines ``line_ids`` of a table's open round to table ``to_table``'s open round (opened if needed).

        The lines keep their SKU, quantity, price (overrides included), name and
        meta (notes, seat); a line id already used on the target gets a new one.
        Errors: ``not_found``, ``not_a_table``, ``same_table``, ``table_not_found``
        (the channel has a floor plan without that table), ``missing_field``
        (no lines), ``line_not_found``, ``stale_rev`` (either side),
        ``already_committed``/``abandoned``, ``locked``.
        """
        if not isinstance(line_ids, (list, tuple)) or not line_ids or not all(isinstance(i, str) for i in line_ids):
            raise ValidationError("missing_field", _("Choose the lines to transfer."), {"field": "line_ids"})
        return _move(
            TableMove.Kind.LINES, session_key, channel_code, to_table=to_table, expected_rev=expected_rev,
            to_expected_rev=to_expected_rev, actor=actor, line_ids=list(dict.fromkeys(line_ids)),
        )

    @staticmethod
    @transaction.atomic
    def move_tab(
        session_key: str,
        channel_code: str,
        *,
        to_table: str,
        expected_rev: int | None = None,
        to_expected_rev: int | None = None,
        actor: str = "system",
    ) -> FloorMove:
        """Move a whole tab to a free table: the open round's lines and today's active rounds (their kitchen tickets follow).

        The source's open round is abandoned; the waiter goes on at the target.
        Errors: as ``transfer_lines``, plus ``table_occupied`` (409: the target has
        lines or active rounds — merge instead) and ``nothing_to_move``.
        """
        return _move(
            TableMove.Kind.TAB, session_key, channel_code, to_table=to_table, expected_rev=expected_rev,
            to_expected_rev=to_expected_rev, actor=actor,
        )

    @staticmethod
    @transaction.atomic
    def merge_tabs(
        session_key: str,
        channel_code: str,
        *,
        to_table: str,
        expected_rev: int | None = None,
        to_expected_rev: int | None = None,
        actor: str = "system",
    ) -> FloorMove:
        """Merge a table's whole tab into table ``to_table``'s (occupied or free): as ``move_tab`` without the free-table rule."""
        return _move(
            TableMove.Kind.MERGE, session_key, channel_code, to_table=to_table, expected_rev=expected_rev,
            to_expected_rev=to_expected_rev, actor=actor,
        )


def _table_label(value: Any) -> str:
    label = str(value if value is not None else "").strip()
    if not label:
        raise ValidationError("missing_field", _("Choose the table to move to."), {"field": "to_table"})
    if len(label) > MAX_TABLE_LENGTH:
        raise ValidationError("invalid_field", _("The table is too long."), {"field": "to_table"})
    return label


def _move(
    kind: str,
    session_key: str,
    channel_code: str,
    *,
    to_table: Any,
    expected_rev: Any,
    to_expected_rev: Any,
    actor: str,
    line_ids: list[str] | None = None,
) -> FloorMove:
    seen = find_session(session_key, channel_code)
    channel = seen.channel
    flow = channel.order_flow
    if not flow.is_table(seen.handle_type) or not seen.handle_ref:
        raise ValidationError("not_a_table", _("Only a table's tab can be moved."), {"session_key": session_key})
    to_table = _table_label(to_table)
    if to_table == seen.handle_ref:
        raise ValidationError("same_table", _("The tab is already at table %(table)s.") % {"table": to_table},
                              {"field": "to_table", "table": to_table})
    plan = FloorTable.objects.filter(channel=channel, is_active=True)
    if plan.exists() and not plan.filter(label=to_table).exists():
        raise ValidationError("table_not_found", _("There is no table %(table)s on the floor plan.") % {"table": to_table},
                              {"field": "to_table", "table": to_table})
    require_open(seen)
    target_seen = SessionService.open_session(channel.code, handle_type=seen.handle_type, handle_ref=to_table, actor=actor)
    # Both rows locked in one order (by primary key), whatever the direction of the move.
    locked = {
        s.pk: s
        for s in Session.objects.select_for_update(of=("self",)).select_related("channel")
        .filter(pk__in=[seen.pk, target_seen.pk]).order_by("pk")
    }
    source, target = locked[seen.pk], locked[target_seen.pk]
    require_open(source)
    require_open(target)
    _require_rev(source, expected_rev, "source")
    _require_rev(target, to_expected_rev, "target")
    ctx = {"actor": actor, "floor_move": kind}
    from_table = source.handle_ref

    if kind == TableMove.Kind.LINES:
        stored = {line["line_id"]: line for line in source.lines}
        missing = [line_id for line_id in line_ids if line_id not in stored]
        if missing:
            raise ValidationError("line_not_found", _("No line %(line_id)s on this tab.") % {"line_id": missing[0]},
                                  {"field": "line_ids", "line_id": missing[0]})
        moving = [stored[line_id] for line_id in line_ids]
    else:
        moving = list(source.lines)
    if moving and Channel.EditPolicy.LOCKED in (source.edit_policy, target.edit_policy):
        raise SessionError("locked", context={"session_key": source.session_key})

    rounds: list[Order] = []
    if kind != TableMove.Kind.LINES:
        if kind == TableMove.Kind.TAB and (target.lines or _active_rounds(channel, target.handle_type, to_table).exists()):
            raise SessionError(
                "table_occupied",
                _("Table %(table)s is occupied: merge the tabs instead.") % {"table": to_table},
                {"table": to_table, "session_key": target.session_key},
            )
        rounds = list(_active_rounds(channel, source.handle_type, from_table).select_for_update(of=("self",)))
        if not moving and not rounds:
            raise ValidationError("nothing_to_move", _("Table %(table)s has nothing to move.") % {"table": from_table},
                                  {"table": from_table})

    moved_ids = []
    if moving:
        taken = {line["line_id"] for line in target.lines}
        for line in moving:
            copy = dict(line, meta=dict(line.get("meta") or {}))
            if copy["line_id"] in taken:
                copy["line_id"] = _new_line_id(target)
            taken.add(copy["line_id"])
            target.lines.append(copy)
            moved_ids.append(line["line_id"])
        gone = set(moved_ids)
        source.lines = [line for line in source.lines if line["line_id"] not in gone]
        target = pipeline.rerun(target, ctx=ctx)
        source = pipeline.rerun(source, ctx=ctx)
    if kind != TableMove.Kind.LINES:
        source = SessionService.abandon_session(source.session_key, channel.code, actor=actor)

    move = TableMove.objects.create(
        channel=channel,
        kind=kind,
        from_table=from_table,
        to_table=to_table,
        from_session_key=source.session_key,
        to_session_key=target.session_key,
        line_ids=moved_ids,
        order_refs=[order.ref for order in rounds],
        actor=actor,
    )
    for order in rounds:
        order.current_handle_ref = to_table
        order.save(update_fields=["current_handle_ref", "updated_at"])
        order.emit_event(TABLE_MOVED, actor=actor, payload={"from": from_table, "to": to_table, "kind": kind, "move_id": move.pk})
    logger.info(
        "table move",
        extra={"channel": channel.code, "actor": actor, "kind": kind, "from": from_table, "to": to_table,
               "lines": len(moved_ids), "orders": len(rounds)},
    )
    return FloorMove(source=source, target=target, move=move)


def _require_rev(session: Session, expected_rev: Any, side: str) -> None:
    try:
        require_rev(session, expected_rev)
    except SessionError as exc:
        exc.context["side"] = side
        raise


def _active_rounds(channel: Channel, handle_type: str, table: str):
    """The table's rounds of its current guests: today's, not cancelled, and not on a settled (or written-off)
    bill — a round the kitchen still cooks for a table already paid and closed stays where it was."""
    rounds = orders_of_handle_today(channel, handle_type, table).filter(Q(bill__isnull=True) | Q(bill__status="open"))
    cancel = channel.order_flow.cancel_status
    return rounds.exclude(status=cancel) if cancel else rounds


# -- the floor plan's layout (the drag-and-drop editor) ------------------------------------------


class FloorPlanService:
    @staticmethod
    @transaction.atomic
    def place_tables(channel_code: str, placements: list[dict[str, Any]], *, actor: str = "system") -> list[FloorTable]:
        """Place tables on their areas' grids at once (the editor's Save): ``[{"id", "x", "y", "w"?, "h"?, "area_id"?}]``.

        All or nothing. Errors: ``channel_not_found``, ``invalid_field`` (a
        placement that is not whole numbers), ``off_grid`` (a table that does not fit on the grid), ``table_not_found``
        (an id not of this channel), ``area_not_found``, ``overlap`` (two
        tables on the same cells of one area, with ``context["tables"]``).
        """
        channel = Channel.objects.filter(code=channel_code).first()
        if channel is None:
            raise SessionError("channel_not_found", context={"channel_code": channel_code})
        if not isinstance(placements, list) or not all(isinstance(p, dict) for p in placements):
            raise ValidationError("invalid_field", _("placements must be a list of objects."), {"field": "placements"})
        tables = {t.pk: t for t in FloorTable.objects.select_for_update().filter(channel=channel)}
        areas = {a.pk: a for a in FloorArea.objects.filter(channel=channel)}
        for placement in placements:
            table = tables.get(_int(placement.get("id"), "id"))
            if table is None:
                raise ValidationError("table_not_found", _("No such table on this floor."), {"id": placement.get("id")})
            if placement.get("area_id") is not None:
                area_id = _int(placement.get("area_id"), "area_id")
                if area_id not in areas:
                    raise ValidationError("area_not_found", _("No such area on this floor."), {"area_id": area_id})
                table.area_id = area_id
            for name in ("x", "y", "w", "h"):
                if placement.get(name) is not None:
                    setattr(table, name, _int(placement[name], name))
            if not (1 <= table.w <= GRID_COLUMNS and 1 <= table.h <= GRID_ROWS
                    and table.x + table.w <= GRID_COLUMNS and table.y + table.h <= GRID_ROWS):
                raise ValidationError("off_grid", _("Table %(table)s does not fit on the grid.") % {"table": table.label},
                                      {"field": "x", "id": table.pk})
        _refuse_overlaps([t for t in tables.values() if t.is_active])
        for table in tables.values():
            table.save()
        logger.info("floor plan saved", extra={"channel": channel.code, "actor": actor, "tables": len(placements)})
        return sorted(tables.values(), key=lambda t: (t.area_id, t.y, t.x, t.pk))


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise ValidationError("invalid_field", _("%(field)s must be a whole number.") % {"field": name}, {"field": name})
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError("invalid_field", _("%(field)s must be a whole number.") % {"field": name}, {"field": name}) from None
    if number < 0:
        raise ValidationError("invalid_field", _("%(field)s must be a whole number.") % {"field": name}, {"field": name})
    return number


def _refuse_overlaps(tables: list[FloorTable]) -> None:
    cells: dict[tuple[int, int, int], FloorTable] = {}
    for table in tables:
        for x in range(table.x, table.x + table.w):
            for y in range(table.y, table.y + table.h):
                other = cells.setdefault((table.area_id, x, y), table)
                if other is not table:
                    raise ValidationError(
                        "overlap",
                        _("Tables %(a)s and %(b)s overlap.") % {"a": other.label, "b": table.label},
                        {"tables": [other.label, table.label]},
                    )


# -- the map's read -------------------------------------------------------------------------------


@dataclass
class TableState:
    """One table on the map: where it stands, and its tab now."""

    label: str
    seats: int = 0
    x: int = 0
    y: int = 0
    w: int = 2
    h: int = 2
    placed: bool = True
    session_key: str = ""
    rev: int = 0
    lines: int = 0
    rounds: int = 0
    opened_at: datetime | None = None
    owed_q: int = 0
    kitchen_waiting: int = 0  # rounds in the kitchen, not ready yet
    kitchen_ready: int = 0  # rounds ready to serve

    @property
    def occupied(self) -> bool:
        return bool(self.lines or self.rounds)

    def minutes_open(self, now: datetime | None = None) -> int | None:
        if not self.occupied or self.opened_at is None:
            return None
        return max(0, int(((now or timezone.now()) - self.opened_at).total_seconds() // 60))

    def as_dict(self, now: datetime | None = None) -> dict[str, Any]:
        return {
            "table": self.label, "seats": self.seats, "x": self.x, "y": self.y, "w": self.w, "h": self.h,
            "placed": self.placed, "occupied": self.occupied, "session_key": self.session_key, "rev": self.rev,
            "lines": self.lines, "rounds": self.rounds,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "minutes_open": self.minutes_open(now), "owed_q": self.owed_q,
            "kitchen": {"waiting": self.kitchen_waiting, "ready": self.kitchen_ready},
        }


@dataclass
class AreaState:
    id: int | None
    name: str
    tables: list[TableState] = field(default_factory=list)


@dataclass
class FloorState:
    channel: Channel
    areas: list[AreaState]
    version: str

    @property
    def tables(self) -> list[TableState]:
        return [table for area in self.areas for table in area.tables]


def open_bill_credits(rounds: list[Order]) -> dict[int, int]:
    """For each open bill the ``rounds`` are on: its own adjustments (discounts, voids) less what was paid on it.

    One query when a round is on a bill, none otherwise. A round on a settled or
    written-off bill owes nothing; a round on an open bill owes its charge, and
    the bill's credits come off the table's sum once.
    """
    from omniman.models import Bill

    bill_ids = {order.bill_id for order in rounds if order.bill_id}
    if not bill_ids:
        return {}
    rows = Bill.objects.filter(pk__in=bill_ids, status=Bill.Status.OPEN).values_list("pk", "paid_q", "adjustments")
    return {pk: sum(int(a.get("amount_q") or 0) for a in adjustments or []) - int(paid_q) for pk, paid_q, adjustments in rows}


def table_owed(open_total_q: int, rounds: list[Order], channel: Channel, credits: dict[int, int] | None = None) -> int:
    """What a table owes now: its open round's total plus its rounds of today not cancelled and not paid — on no
    bill, or on an open bill less that bill's payments and adjustments (``open_bill_credits``).

    The one place the amount a table owes is computed: the floor map, the POS
    tables list and the tab's running total read it.
    """
    cancelled = channel.order_flow.cancel_status
    if credits is None:
        credits = open_bill_credits(rounds)
    counted = [order for order in rounds if order.status != cancelled and (order.bill_id is None or order.bill_id in credits)]
    on_bills = {order.bill_id for order in counted if order.bill_id}
    owed = sum(order.charged_q for order in counted) + sum(credits[pk] for pk in on_bills)
    return int(open_total_q) + max(owed, 0)


def floor_version(channel: Channel) -> str:
    """Changes whenever a table's tab, a round of today or the plan changes (three aggregate queries)."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    types = channel.order_flow.table_handle_types
    sessions = Session.objects.filter(channel=channel, handle_type__in=types).filter(
        updated_at__gte=start).aggregate(n=Count("id"), last=Max("updated_at"))
    orders = Order.objects.filter(channel=channel, handle_type__in=types, created_at__gte=start).aggregate(
        n=Count("id"), last=Max("updated_at"))
    plan = FloorTable.objects.filter(channel=channel).aggregate(n=Count("id"), last=Max("updated_at"))
    stamp = lambda row: f"{row['n']}:{row['last'].timestamp() if row['last'] else 0:.6f}"  # noqa: E731
    return "-".join(stamp(row) for row in (sessions, orders, plan))


def floor_tables(channel: Channel) -> FloorState:
    """The map of a table channel: every area and table of its plan, with each table's tab now.

    Tables with a tab but not on the plan (opened by typing a number) are listed
    in a last, unnamed area. Fixed query count: areas, tables, open tabs,
    today's active rounds and the version's aggregates.
    """
    flow = channel.order_flow
    types = flow.table_handle_types
    version = floor_version(channel)
    areas = [AreaState(id=a.pk, name=a.name) for a in FloorArea.objects.filter(channel=channel).order_by("position", "id")]
    by_area = {area.id: area for area in areas}
    states: dict[str, TableState] = {}
    for table in FloorTable.objects.filter(channel=channel, is_active=True).order_by("y", "x", "id"):
        state = TableState(label=table.label, seats=table.seats, x=table.x, y=table.y, w=table.w, h=table.h)
        states[table.label] = state
        by_area[table.area_id].tables.append(state)
    unplaced = AreaState(id=None, name="")
    open_tabs = Session.objects.filter(channel=channel, state=Session.State.OPEN, handle_type__in=types).exclude(
        handle_ref="").only("session_key", "handle_ref", "rev", "lines", "data", "total_q", "opened_at")
    rounds: dict[str, list[Order]] = {}
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    today = Order.objects.filter(channel=channel, handle_type__in=types, created_at__gte=start)
    if flow.cancel_status:
        today = today.exclude(status=flow.cancel_status)
    for order in today.only("ref", "status", "total_q", "currency", "snapshot", "current_handle_ref", "created_at", "bill_id").order_by(
        "created_at", "id"
    ):
        rounds.setdefault(order.current_handle_ref, []).append(order)
    credits = open_bill_credits([order for orders in rounds.values() for order in orders])
    totals: dict[str, int] = {}
    for session in open_tabs:
        state = states.get(session.handle_ref)
        if state is None:
            state = states[session.handle_ref] = TableState(label=session.handle_ref, placed=False)
        state.session_key, state.rev, state.lines = session.session_key, session.rev, len(session.lines)
        totals[session.handle_ref] = session.total_q if session.lines else 0  # adjustments included (SPEC §2)
        if session.lines:
            state.opened_at = session.opened_at
    for label, orders in rounds.items():
        if not any(o.status in flow.active_statuses or (o.bill_id is None or o.bill_id in credits) for o in orders):
            continue  # a table whose rounds are all done and paid is free
        state = states.get(label)
        if state is None:
            state = states[label] = TableState(label=label, placed=False)
        state.rounds = len(orders)
        first = orders[0].created_at
        state.opened_at = min(state.opened_at, first) if state.opened_at else first
        state.kitchen_ready = sum(1 for o in orders if o.status == flow.ready_status)
        state.kitchen_waiting = sum(1 for o in orders if o.status in flow.kitchen_statuses and o.status != flow.ready_status)
    for label, state in states.items():
        state.owed_q = table_owed(totals.get(label, 0), rounds.get(label, []), channel, credits)
        if not state.placed and state.occupied:
            unplaced.tables.append(state)
    unplaced.tables.sort(key=lambda s: (len(s.label), s.label))
    if unplaced.tables:
        areas.append(unplaced)
    return FloorState(channel=channel, areas=areas, version=version)
