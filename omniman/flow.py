"""Order status flows are data: a dict the code asks.

A channel's ``config["order_flow"]`` keys replace the default's keys one by one.
Besides the moves, a flow names the *roles* its statuses play, so that no
screen or handler hard-codes a status: its cancel status, its done status, the
statuses a kitchen works on (and the one where its work is done), which
statuses are active, and which handle types are tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from omniman.roles import INTEGRATION, KITCHEN, MANAGER, POS

ANY = "*"

DEFAULT_ORDER_FLOW: dict[str, Any] = {
    "initial_status": "new",
    "transitions": {
        "new": ["confirmed", "cancelled"],
        "confirmed": ["processing", "ready", "cancelled"],
        "processing": ["ready", "cancelled"],
        "ready": ["dispatched", "completed"],
        "dispatched": ["delivered", "returned"],
        "delivered": ["completed", "returned"],
        "returned": ["completed"],
    },
    "terminal_statuses": ["completed", "cancelled"],
    "auto_transitions": {},
    "on_enter": {},
    # Semantic roles of the statuses ("" / null: the flow has none).
    "cancel_status": "cancelled",  # where "cancel" goes (never a one-tap move)
    "done_status": "completed",  # where "done" goes (the kitchen's last bump, closing a table)
    "kitchen_statuses": ["new", "confirmed", "processing", "ready"],  # the kitchen board shows these
    "ready_status": "ready",  # the kitchen's work is done: the pass (left out of the all-day counts)
    "active_statuses": None,  # still being worked on; null: every status that is not terminal
    "table_handle_types": ["table"],  # session/order handle types that are tables
    # Who may make which move: {role: [{"from": [...] | "*", "to": [...] | "*"}, ...]}.
    # null: the defaults of ``default_permissions`` (derived from the status roles above);
    # a role given here replaces that role's default, a role left out keeps it.
    "permissions": None,
}

FLOW_KEYS = tuple(DEFAULT_ORDER_FLOW)
STATUS_ROLE_KEYS = ("cancel_status", "done_status", "ready_status")
STATUS_LIST_KEYS = ("kitchen_statuses", "active_statuses")
AUTO_TRANSITION_KEYS = ("on_create", "on_stock_commit", "on_payment_confirm")

# Statuses whose first entry is stamped on the Order (``<status>_at``).
TIMESTAMPED_STATUSES = ("confirmed", "processing", "ready", "dispatched", "delivered", "completed", "cancelled")


@dataclass(frozen=True)
class OrderFlow:
    initial_status: str
    transitions: dict[str, list[str]]
    terminal_statuses: list[str]
    auto_transitions: dict[str, str] = field(default_factory=dict)
    on_enter: dict[str, list[str]] = field(default_factory=dict)
    cancel_status: str = "cancelled"
    done_status: str = "completed"
    kitchen_statuses: list[str] = field(default_factory=lambda: list(DEFAULT_ORDER_FLOW["kitchen_statuses"]))
    ready_status: str = "ready"
    configured_active_statuses: list[str] | None = None
    table_handle_types: list[str] = field(default_factory=lambda: ["table"])
    configured_permissions: dict[str, Any] | None = None

    @property
    def active_statuses(self) -> list[str]:
        """Statuses of orders still being worked on: ``active_statuses``, else every status that is not terminal."""
        if self.configured_active_statuses is not None:
            return list(self.configured_active_statuses)
        return [status for status in self.statuses if not self.is_terminal(status)]

    def is_active(self, status: str) -> bool:
        return status in self.active_statuses

    def is_table(self, handle_type: str) -> bool:
        """Is ``handle_type`` (a session's or an order's) a table of this flow?"""
        return bool(handle_type) and handle_type in self.table_handle_types

    @property
    def table_handle_type(self) -> str:
        """The handle type a new table is opened with (the first of ``table_handle_types``; ``""`` if none)."""
        return self.table_handle_types[0] if self.table_handle_types else ""

    def is_terminal(self, status: str) -> bool:
        return status in self.terminal_statuses

    def allowed_from(self, status: str) -> list[str]:
        """The statuses reachable from ``status`` in one step (none from a terminal one)."""
        if self.is_terminal(status):
            return []
        return list(self.transitions.get(status, []))

    def can(self, current: str, new: str) -> bool:
        return new in self.allowed_from(current)

    def path(self, start: str, goal: str) -> list[str] | None:
        """The shortest list of steps from ``start`` to ``goal`` (``[]`` if already there, ``None`` if unreachable)."""
        frontier, seen = [(start, [])], {start}
        while frontier:
            status, steps = frontier.pop(0)
            if status == goal:
                return steps
            for nxt in self.allowed_from(status):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append((nxt, [*steps, nxt]))
        return None

    @property
    def statuses(self) -> list[str]:
        """Every status the flow names, in first-mention order."""
        seen: dict[str, None] = {self.initial_status: None}
        for source, targets in self.transitions.items():
            seen.setdefault(source, None)
            for target in targets:
                seen.setdefault(target, None)
        for status in self.terminal_statuses:
            seen.setdefault(status, None)
        return list(seen)

    def topics_on_enter(self, status: str) -> list[str]:
        return list(self.on_enter.get(status, []))

    # -- who may move an order -------------------------------------------------

    @property
    def permissions(self) -> dict[str, list[dict[str, Any]]]:
        """Each role's rules (``{"from", "to"}``, ``"*"`` for any status): the defaults, with the configured roles replacing theirs."""
        rules = default_permissions(self)
        for role, configured in (self.configured_permissions or {}).items():
            rules[role] = _as_rules(configured)
        return rules

    def may_transition(self, roles: Iterable[str], current: str, new: str) -> bool:
        """May someone with ``roles`` move an order from ``current`` to ``new``? The flow must allow the move, and one role's rule cover it."""
        return self.can(current, new) and bool(set(roles) & set(self.roles_for(current, new)))

    def roles_for(self, current: str, new: str) -> list[str]:
        """The roles whose rules cover the move ``current`` → ``new`` (the flow's own rules aside)."""
        return sorted(role for role, rules in self.permissions.items() if any(_covers(rule, current, new) for rule in rules))


def default_permissions(flow: OrderFlow) -> dict[str, list[dict[str, Any]]]:
    """Who may move orders when a flow says nothing (``order_flow.permissions`` null).

    - ``manager`` and ``integration`` (machine clients): every move of the flow;
    - ``pos``: every move except into the cancel status (a cancel may refund:
      a manager's call);
    - ``kitchen``: the kitchen's moves only — from a kitchen status to a
      kitchen status or the done status, never the cancel status.
    """
    not_cancel = [status for status in flow.statuses if status != flow.cancel_status]
    kitchen_to = [s for s in [*flow.kitchen_statuses, flow.done_status] if s and s != flow.cancel_status]
    return {
        MANAGER: [{"from": ANY, "to": ANY}],
        INTEGRATION: [{"from": ANY, "to": ANY}],
        POS: [{"from": ANY, "to": not_cancel}],
        KITCHEN: [{"from": list(flow.kitchen_statuses), "to": list(dict.fromkeys(kitchen_to))}],
    }


def _as_rules(configured: Any) -> list[dict[str, Any]]:
    if not configured:
        return []
    return [dict(rule) for rule in ([configured] if isinstance(configured, dict) else configured)]


def _covers(rule: dict[str, Any], current: str, new: str) -> bool:
    sources, targets = rule.get("from", ANY), rule.get("to", ANY)
    return (sources == ANY or current in sources) and (targets == ANY or new in targets)


def build_order_flow(override: dict[str, Any] | None) -> OrderFlow:
    """The default flow with ``override``'s keys replacing the default's, key by key."""
    merged = dict(DEFAULT_ORDER_FLOW)
    for key, value in (override or {}).items():
        if key in merged:
            merged[key] = value
    return OrderFlow(
        initial_status=merged["initial_status"] or "new",
        transitions={k: list(v) for k, v in (merged["transitions"] or {}).items()},
        terminal_statuses=list(merged["terminal_statuses"] or []),
        auto_transitions=dict(merged["auto_transitions"] or {}),
        on_enter={k: list(v) for k, v in (merged["on_enter"] or {}).items()},
        cancel_status=merged["cancel_status"] or "",
        done_status=merged["done_status"] or "",
        kitchen_statuses=list(merged["kitchen_statuses"] or []),
        ready_status=merged["ready_status"] or "",
        configured_active_statuses=None if merged["active_statuses"] is None else list(merged["active_statuses"]),
        table_handle_types=list(merged["table_handle_types"] or []),
        configured_permissions=dict(merged["permissions"]) if merged["permissions"] else None,
    )


def validate_order_flow(override: Any) -> list[str]:
    """Problems with a channel's ``order_flow`` config, as sentences (empty when valid)."""
    if override in (None, {}):
        return []
    if not isinstance(override, dict):
        return ["order_flow must be an object"]
    problems = [f"order_flow: unknown key {key!r}" for key in override if key not in FLOW_KEYS]
    shapes = {
        "initial_status": str,
        "transitions": dict,
        "terminal_statuses": list,
        "auto_transitions": dict,
        "on_enter": dict,
        "cancel_status": str,
        "done_status": str,
        "ready_status": str,
        "kitchen_statuses": list,
        "active_statuses": list,
        "table_handle_types": list,
        "permissions": dict,
    }
    for key, kind in shapes.items():
        value = override.get(key)
        nullable = key in (*STATUS_ROLE_KEYS, *STATUS_LIST_KEYS, "table_handle_types", "permissions")
        if key in override and not isinstance(value, kind) and not (value is None and nullable):
            problems.append(f"order_flow.{key} must be a {kind.__name__}")
    for key in (*STATUS_LIST_KEYS, "table_handle_types"):
        if isinstance(override.get(key), list) and not all(isinstance(item, str) and item for item in override[key]):
            problems.append(f"order_flow.{key} must be a list of names")
    if problems:
        return problems
    flow = build_order_flow(override)
    for source, targets in flow.transitions.items():
        if not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets):
            problems.append(f"order_flow.transitions.{source} must be a list of statuses")
    if problems:
        return problems
    known = set(flow.statuses)
    for status in flow.terminal_statuses:
        if flow.transitions.get(status):
            problems.append(f"terminal status {status!r} has outgoing transitions")
    for key, target in flow.auto_transitions.items():
        if key not in AUTO_TRANSITION_KEYS:
            problems.append(f"order_flow.auto_transitions: unknown key {key!r}")
        elif target not in known:
            problems.append(f"order_flow.auto_transitions.{key}: unknown status {target!r}")
    on_create = flow.auto_transitions.get("on_create")
    if on_create and on_create in known and not flow.can(flow.initial_status, on_create):
        problems.append(
            f"order_flow.auto_transitions.on_create: {flow.initial_status!r} cannot move to {on_create!r}"
        )
    # The roles a channel names itself must be statuses of its flow (the defaults may name statuses it lacks: unused).
    for key in STATUS_ROLE_KEYS:
        status = override.get(key)
        if status and status not in known:
            problems.append(f"order_flow.{key}: unknown status {status!r}")
    for key in STATUS_LIST_KEYS:
        for status in override.get(key) or []:
            if status not in known:
                problems.append(f"order_flow.{key}: unknown status {status!r}")
    problems.extend(_permission_problems(override.get("permissions") or {}, known))
    for status, topics in flow.on_enter.items():
        if status not in known:
            problems.append(f"order_flow.on_enter: unknown status {status!r}")
        if not isinstance(topics, list) or not all(isinstance(t, str) and t for t in topics):
            problems.append(f"order_flow.on_enter.{status} must be a list of directive topics")
    return problems


def _permission_problems(permissions: dict[str, Any], known: set[str]) -> list[str]:
    problems = []
    for role, configured in permissions.items():
        where = f"order_flow.permissions.{role}"
        if configured in (None, []):
            continue  # this role may make no move
        rules = [configured] if isinstance(configured, dict) else configured
        if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
            problems.append(f"{where} must be a rule {{\"from\", \"to\"}} or a list of them")
            continue
        for rule in rules:
            extra = sorted(set(rule) - {"from", "to"})
            if extra:
                problems.append(f"{where}: unknown key {extra[0]!r} (a rule has \"from\" and \"to\")")
            for side in ("from", "to"):
                value = rule.get(side, ANY)
                if value == ANY:
                    continue
                if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                    problems.append(f"{where}.{side} must be \"*\" or a list of statuses")
                    continue
                problems.extend(f"{where}.{side}: unknown status {s!r}" for s in value if s not in known)
    return problems


# -- the kitchen's own flow: per-item statuses -----------------------------------------------------

DEFAULT_KITCHEN_FLOW: dict[str, Any] = {
    # An item's statuses at its station, in order; the first is where it starts.
    "statuses": ["queued", "cooking", "ready", "served"],
    # A station's last bump: a station screen moves its items up to here; the expo moves them on.
    "station_done": "ready",
    # The order status an order follows to when its least advanced live item reaches an item status.
    # null: {"cooking": processing, "ready": the order flow's ready_status, "served": its done_status}.
    "order_statuses": None,
    # The order statuses whose items reach the stations (channel policy: a web channel may wait for
    # "confirmed"); null: the order flow's kitchen_statuses.
    "admit_statuses": None,
    # How long a bump can be undone from the recall list.
    "undo_minutes": 15,
}
KITCHEN_FLOW_KEYS = tuple(DEFAULT_KITCHEN_FLOW)


@dataclass(frozen=True)
class KitchenFlow:
    """A channel's ``config["kitchen_flow"]``: how its items move at the stations (data, like the order flow)."""

    statuses: list[str]
    station_done: str
    order_statuses: dict[str, str]
    admit_statuses: list[str]
    undo_minutes: int = 15

    @property
    def initial_status(self) -> str:
        return self.statuses[0]

    def index(self, status: str) -> int:
        return self.statuses.index(status) if status in self.statuses else -1

    def next(self, status: str) -> str | None:
        """The status one bump moves an item in ``status`` to (``None`` at the end)."""
        i = self.index(status)
        return self.statuses[i + 1] if 0 <= i < len(self.statuses) - 1 else None

    def station_may_bump(self, status: str) -> bool:
        """May a station screen bump an item in ``status`` (its work ends at ``station_done``)?"""
        return 0 <= self.index(status) < self.index(self.station_done)

    def station_is_done(self, status: str) -> bool:
        return self.index(status) >= self.index(self.station_done)

    @property
    def station_statuses(self) -> list[str]:
        """The statuses a station screen shows: up to ``station_done``."""
        return self.statuses[: self.index(self.station_done) + 1]

    def order_status_for(self, least: str) -> str | None:
        """The order status an order follows to when its least advanced live item is in ``least`` (``None``: stay)."""
        for status in reversed(self.statuses[: self.index(least) + 1]):
            if self.order_statuses.get(status):
                return self.order_statuses[status]
        return None

    def admits(self, order_status: str) -> bool:
        """Does an order in ``order_status`` reach the stations?"""
        return order_status in self.admit_statuses


def build_kitchen_flow(override: dict[str, Any] | None, order_flow: OrderFlow) -> KitchenFlow:
    """The default kitchen flow with ``override``'s keys replacing the default's, key by key."""
    merged = dict(DEFAULT_KITCHEN_FLOW)
    for key, value in (override or {}).items():
        if key in merged:
            merged[key] = value
    statuses = list(merged["statuses"] or DEFAULT_KITCHEN_FLOW["statuses"])
    order_statuses = merged["order_statuses"]
    if order_statuses is None:
        order_statuses = {"cooking": "processing", "ready": order_flow.ready_status, "served": order_flow.done_status}
    admit = merged["admit_statuses"]
    return KitchenFlow(
        statuses=statuses,
        station_done=merged["station_done"] if merged["station_done"] in statuses else statuses[-1],
        order_statuses={k: v for k, v in dict(order_statuses).items() if v},
        admit_statuses=list(order_flow.kitchen_statuses if admit is None else admit),
        undo_minutes=int(merged["undo_minutes"] or 0),
    )


def validate_kitchen_flow(override: Any, order_flow: OrderFlow) -> list[str]:
    """Problems with a channel's ``kitchen_flow`` config, as sentences (empty when valid)."""
    if override in (None, {}):
        return []
    if not isinstance(override, dict):
        return ["kitchen_flow must be an object"]
    problems = [f"kitchen_flow: unknown key {key!r}" for key in override if key not in KITCHEN_FLOW_KEYS]
    statuses = override.get("statuses", DEFAULT_KITCHEN_FLOW["statuses"])
    if not isinstance(statuses, list) or len(statuses) < 2 or not all(isinstance(s, str) and s for s in statuses):
        return [*problems, "kitchen_flow.statuses must be a list of at least two names"]
    if "station_done" in override and override["station_done"] not in statuses:
        problems.append(f"kitchen_flow.station_done: unknown status {override['station_done']!r}")
    known = set(order_flow.statuses)
    order_statuses = override.get("order_statuses")
    if order_statuses is not None:
        if not isinstance(order_statuses, dict):
            problems.append("kitchen_flow.order_statuses must be an object")
        else:
            for item_status, status in order_statuses.items():
                if item_status not in statuses:
                    problems.append(f"kitchen_flow.order_statuses: unknown item status {item_status!r}")
                if status and status not in known:
                    problems.append(f"kitchen_flow.order_statuses.{item_status}: unknown status {status!r}")
    admit = override.get("admit_statuses")
    if admit is not None:
        if not isinstance(admit, list):
            problems.append("kitchen_flow.admit_statuses must be a list of statuses")
        else:
            problems.extend(f"kitchen_flow.admit_statuses: unknown status {s!r}" for s in admit if s not in known)
    minutes = override.get("undo_minutes")
    if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 0):
        problems.append("kitchen_flow.undo_minutes must be a whole number of minutes")
    return problems
