"""A month of café history for the demo (``seed_demo --days N``): orders, bills, payments, kitchen times.

Every order goes through the real services — a session with real products and
modifiers, its commit, its bill (discounts, voids, splits), its payments and
refunds, the kitchen's bumps — so the rows agree with each other exactly as a
day of service would leave them. What is not real is the clock: each step runs
under :class:`HistoryClock`, which makes ``django.utils.timezone.now`` answer
the moment the step happened (an order at 12:41, its burger bumped ready at
12:58, its bill settled at 13:35). Every ``auto_now``/``auto_now_add`` column,
every ``moved_at``/``settled_at`` a service stamps, and every event's
``created_at`` is written with that time: nothing is backdated afterwards, so
nothing can disagree.

The side effects the orders asked for (stock, tickets, receipts, notifications)
belong to days gone by: their directives are recorded ``done``, never run (the
stock levels stay today's). Deterministic (a random generator seeded per day)
and idempotent: a day whose orders exist (their session keys start with
``seed-YYYYMMDD-``) is skipped; each day is one transaction, so a day is either
wholly there or not at all.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

from django.db import transaction
from django.utils import timezone

from omniman.contrib.catalog.models import Product
from omniman.exceptions import OmnimanError
from omniman.models import Bill, Channel, Directive, Order, Session, Shift
from omniman.services import (
    BillService,
    CommitService,
    ExternalOrderService,
    KitchenService,
    ModifyService,
    OrderService,
    PaymentService,
    SessionService,
    SessionWriteService,
    ShiftService,
    order_kitchen,
    register_code_for,
    z_report,
)

ACTOR_MANAGER = "manager"
CASHIERS = ("pos", "ana", "rafael")
WAITERS = ("pos", "julia")
POS_ROLES = ("pos",)
MANAGER_ROLES = ("manager",)
KEY_PREFIX = "seed-"

# Orders by hour of the day (local time): breakfast, the lunch peak, the afternoon, a lighter dinner.
HOURLY = {7: 6, 8: 11, 9: 9, 10: 6, 11: 7, 12: 15, 13: 13, 14: 7, 15: 5, 16: 5, 17: 5, 18: 6, 19: 8, 20: 6, 21: 3}
# Share of the orders per channel.
CHANNEL_MIX = (("counter", 46), ("tables", 28), ("web", 15), ("marketplace", 11))
# Prep time per station in minutes (low, mode, high) and the expo's hand-out delay.
PREP_MINUTES = {"bar": (2, 4, 9), "pastry": (1, 3, 7), "kitchen": (8, 14, 30)}
EXPO_MINUTES = (1, 2, 6)

MORNING = {
    "drinks": ["ESP", "DOPPIO", "MACCH", "CAP", "CAP", "LATTE", "LATTE", "FLATW", "MOCHA", "CHAI", "OJ"],
    "food": ["CRO", "PDQ", "PDQ", "PAINCH", "CINN", "BANANA", "TOAST", "AVO", "EGGS", "GRANOLA", "PANCAKE", "BENNY"],
}
LUNCH = {
    "drinks": ["SODA", "SODA", "WATER", "LEMON", "ICETEA", "SPARK", "OJ", "ESP"],
    "food": ["BURG", "BURG", "VBURG", "CHICK", "RISOT", "SALMON", "CAESAR", "SOUP", "SOUP"],
    "sides": ["FRIES", "FRIES", "SWFRIES", "SALAD"],
}
AFTERNOON = {
    "drinks": ["ESP", "CAP", "LATTE", "FLATW", "ICETEA", "LEMON", "MOCHA"],
    "food": ["BROWNIE", "CHEESE", "GELATO", "CINN", "BANANA", "PDQ", "CRO"],
}
# Prices the marketplace sends (its own, a little above the menu's).
MARKUP = Decimal("1.15")
# The drawer: the float counted at opening (cents → how many), the cash taken out during the day, the closing count's
# differences (cents; most days the drawer is exact).
FLOATS = (
    {"5000": 1, "2000": 4, "1000": 5, "500": 6, "200": 10, "100": 10, "50": 10, "25": 8},
    {"2000": 5, "1000": 6, "500": 8, "200": 10, "100": 15, "50": 10, "25": 4, "10": 10},
)
CASH_OUTS = (("Bakery supplier", 2500, 6000), ("Tips paid out", 1000, 3000), ("Cleaning supplies", 800, 2000))
DIFFERENCES = (-1500, -700, -300, -200, -50, 50, 100, 200, 600, 1000)
DRAWER_DENOMINATIONS = (20000, 10000, 5000, 2000, 1000, 500, 200, 100, 50, 25, 10, 5)


@dataclass
class DayStats:
    day: date
    skipped: bool = False
    orders: int = 0
    bills: int = 0
    payments: int = 0
    refunds: int = 0
    discounts: int = 0
    voids: int = 0
    cancelled: int = 0
    written_off: int = 0
    overrides: int = 0
    shifts: int = 0
    cash_outs: int = 0


@dataclass
class HistoryResult:
    days: list[DayStats] = field(default_factory=list)

    @property
    def created(self) -> list[DayStats]:
        return [d for d in self.days if not d.skipped]

    def total(self, name: str) -> int:
        return sum(getattr(d, name) for d in self.created)


class HistoryClock:
    """``timezone.now()`` answers ``self.at`` while active (:meth:`running`); move it with :meth:`set`."""

    def __init__(self, at: datetime):
        self.at = at

    def set(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    @contextmanager
    def running(self) -> Iterator[HistoryClock]:
        with mock.patch("django.utils.timezone.now", self.now):
            yield self


def day_prefix(day: date) -> str:
    return f"{KEY_PREFIX}{day:%Y%m%d}-"


def day_exists(day: date) -> bool:
    return Order.objects.filter(session_key__startswith=day_prefix(day)).exists()


def seed_history(
    days: int,
    *,
    orders_per_day: int = 150,
    seed: int = 42,
    today: date | None = None,
    include_today: bool = True,
    log: Callable[[str], None] | None = None,
) -> HistoryResult:
    """``days`` days of history ending yesterday, and today up to now (``include_today``); ``HistoryResult``."""
    today = today or timezone.localdate()
    result = HistoryResult()
    wanted = [today - timedelta(days=n) for n in range(days, 0, -1)]
    if include_today:
        wanted.append(today)
    real_now = timezone.now()
    logging.disable(logging.INFO)  # a service's log line per step, thousands of times: the summary says enough
    try:
        _seed_days(result, wanted, today=today, real_now=real_now, orders_per_day=orders_per_day, seed=seed, log=log)
    finally:
        logging.disable(logging.NOTSET)
    return result


def _seed_days(result, wanted, *, today, real_now, orders_per_day, seed, log) -> None:
    for day in wanted:
        if day_exists(day):
            result.days.append(DayStats(day=day, skipped=True))
            continue
        until = real_now if day == today else None
        stats = _Day(day, orders_per_day=orders_per_day, seed=seed, until=until).run()
        result.days.append(stats)
        if log:
            log(f"{day.isoformat()}: {stats.orders} orders, {stats.payments} payments, {stats.refunds} refunds")


def _local(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute, second)), timezone.get_current_timezone())


def _triangular(rng: random.Random, low: float, mode: float, high: float) -> timedelta:
    return timedelta(minutes=rng.triangular(low, high, mode))


class _Day:
    def __init__(self, day: date, *, orders_per_day: int, seed: int, until: datetime | None):
        self.day = day
        self.until = until
        self.rng = random.Random(f"{seed}:{day.isoformat()}")
        weekend = day.weekday() >= 5
        target = orders_per_day * (1.15 if weekend else 1.0)
        self.count = max(1, round(self.rng.gauss(target, target * 0.06)))
        self.stats = DayStats(day=day)
        self.clock = HistoryClock(_local(day, 7))
        self.busy_tables: set[str] = set()
        self.table_free_at: dict[str, datetime] = {str(n): _local(day, 0) for n in range(1, 15)}
        self.number = 0
        self.latest = self.clock.at
        self.shifts: dict[str, Shift] = {}

    # -- the day ----------------------------------------------------------------

    def run(self) -> DayStats:
        starts = sorted(self._start_times())
        if self.until is not None:
            starts = [t for t in starts if t < self.until - timedelta(hours=1)]
            self.busy_tables = _tables_in_use(self.day)
        first_directive = Directive.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        with transaction.atomic(), self.clock.running():
            self._open_shifts()
            outs = self._cash_out_times(starts)
            for start in starts:
                while outs and outs[0] <= start:
                    self._cash_out(outs.pop(0))
                channel = self._pick([c for c, _ in CHANNEL_MIX], [w for _, w in CHANNEL_MIX])
                getattr(self, f"_{channel}")(start)
            if self.until is None:  # today's shift stays open
                self._close_shifts()
            # The side effects of a day gone by are history: recorded as done, never run.
            Directive.objects.filter(pk__gt=first_directive, status__in=("queued", "running")).update(
                status="done", last_error="", updated_at=self.clock.at
            )
        return self.stats

    def _start_times(self) -> list[datetime]:
        hours, weights = list(HOURLY), list(HOURLY.values())
        times = []
        for _ in range(self.count):
            hour = self._pick(hours, weights)
            times.append(_local(self.day, hour, self.rng.randrange(60), self.rng.randrange(60)))
        return times

    # -- helpers ----------------------------------------------------------------

    def _pick(self, values, weights=None):
        return self.rng.choices(values, weights=weights, k=1)[0]

    def _at(self, moment: datetime) -> None:
        self.clock.set(moment)
        self.latest = max(self.latest, moment)

    # -- the drawer ----------------------------------------------------------------

    def _open_shifts(self) -> None:
        """Before the first order, a cashier opens each register's drawer with a float counted by denomination. A
        shift still open from an earlier day is closed first (counted exact); one opened later (today's, the live
        demo's) is left alone and the day's payments go into it."""
        codes = sorted({register_code_for(c) for c in Channel.objects.filter(code__in=("counter", "tables", "web"))})
        opening = _local(self.day, 6, 45)
        if self.until is not None:  # today, seeded before 06:45: the drawer opened just before now
            opening = max(min(opening, self.until - timedelta(minutes=5)), _local(self.day, 0))
        for code in codes:
            self._at(opening)
            stale = Shift.objects.filter(register__code=code, status=Shift.Status.OPEN).first()
            if stale is not None:
                if stale.opened_at >= opening:
                    continue
                expected = z_report(stale.pk)["cash"]["expected_q"]
                ShiftService.close(stale.pk, counted_q=expected, actor=ACTOR_MANAGER, roles=MANAGER_ROLES,
                                   reason="closed at the next opening")
            count = dict(self._pick(FLOATS))
            shift = ShiftService.open(code, opening_count=count, actor=self._pick(CASHIERS),
                                      idempotency_key=f"{day_prefix(self.day)}open-{code}")
            self.shifts[code] = shift
            self.stats.shifts += 1

    def _cash_out_times(self, starts: list[datetime]) -> list[datetime]:
        if not self.shifts:
            return []
        moments = sorted(_local(self.day, self.rng.randint(10, 17), self.rng.randrange(60)) for _ in range(self._pick([1, 1, 2])))
        if self.until is not None:
            moments = [m for m in moments if m < self.until - timedelta(hours=1)]
        return moments

    def _cash_out(self, moment: datetime) -> None:
        self._at(moment)
        reason, low, high = self._pick(CASH_OUTS)
        amount = self.rng.randrange(low, high, 50)
        code = self._pick(sorted(self.shifts))
        shift = self.shifts[code]
        ShiftService.cash_out(shift.pk, amount_q=amount, reason=reason, actor=self._pick(CASHIERS),
                              idempotency_key=f"{day_prefix(self.day)}out-{self.stats.cash_outs}")
        self.stats.cash_outs += 1

    def _close_shifts(self) -> None:
        """After the last bill, the drawer is counted: usually exact, sometimes a few reais short or over; over the
        register's threshold the manager standing by accepts the difference."""
        closing = min(max(self.latest + timedelta(minutes=10), _local(self.day, 22, 30)), _local(self.day, 23, 59))
        for code, shift in sorted(self.shifts.items()):
            self._at(closing)
            expected = z_report(shift.pk)["cash"]["expected_q"]
            difference = 0 if self.rng.random() < 0.8 else self._pick(DIFFERENCES)
            counted = max(expected + difference, 0)
            reason = "" if counted == expected else self._pick(["change given wrong", "coins miscounted", "a note stuck in the till"])
            count = _count_of(counted)
            ShiftService.close(
                shift.pk, counted_q=counted if count is None else None, closing_count=count, actor=shift.opened_by, roles=POS_ROLES, approved_by=ACTOR_MANAGER, approver_roles=MANAGER_ROLES, reason=reason,
            )

    def _key(self) -> str:
        self.number += 1
        return f"{day_prefix(self.day)}{self.number:04d}"

    def _menu(self, start: datetime) -> dict[str, list[str]]:
        hour = timezone.localtime(start).hour
        if hour < 11:
            return MORNING
        if hour < 15 or hour >= 18:
            return LUNCH
        return AFTERNOON

    def _items(self, start: datetime, *, people: int = 1) -> list[dict[str, Any]]:
        menu = self._menu(start)
        items: list[dict[str, Any]] = []
        for _ in range(people):
            items.append(self._item(self._pick(menu["drinks"])))
            if self.rng.random() < 0.75:
                items.append(self._item(self._pick(menu["food"])))
            if "sides" in menu and self.rng.random() < 0.3:
                items.append(self._item(self._pick(menu["sides"])))
        merged: dict[tuple, dict[str, Any]] = {}
        for item in items:  # two of the same thing are one line of qty 2
            key = (item["sku"], tuple(item.get("meta", {}).get("modifiers", [])))
            if key in merged:
                merged[key]["qty"] += 1
            else:
                merged[key] = item
        return [{**item, "qty": str(item["qty"])} for item in merged.values()]

    def _item(self, sku: str) -> dict[str, Any]:
        modifiers = []
        if sku in ("CAP", "LATTE", "FLATW", "MOCHA", "CHAI", "MACCH") and self.rng.random() < 0.3:
            modifiers.append(self._pick(["milk:oat", "milk:oat", "milk:lactose-free", "milk:whole"]))
        if sku == "BURG":
            modifiers.append(self._pick(["doneness:medium", "doneness:medium", "doneness:rare", "doneness:well-done"]))
        if sku in ("BURG", "VBURG"):
            if self.rng.random() < 0.35:
                modifiers.append(self._pick(["extras:cheese", "extras:bacon", "extras:egg"]))
            if self.rng.random() < 0.15:
                modifiers.append(self._pick(["without:no-onions", "without:no-pickles"]))
        item: dict[str, Any] = {"sku": sku, "qty": 1}
        if modifiers:
            item["meta"] = {"modifiers": modifiers}
        return item

    def _session(self, channel: str, start: datetime, items, *, actor: str, handle_type="", handle_ref="", data=None) -> Session:
        self._at(start)
        session = SessionService.open_session(
            channel, handle_type=handle_type, handle_ref=handle_ref, session_key=self._key(), data=data, items=items, actor=actor
        )
        if self.rng.random() < 0.01 and session.lines:
            # A price override (a regular's price, a damaged item), with its reason: the audit view lists it.
            line = session.lines[0]
            price = max(int(line["unit_price_q"]) * 8 // 10, 100)
            session = ModifyService.modify_session(
                session.session_key, channel,
                [{"op": "override_price", "line_id": line["line_id"], "unit_price_q": price, "reason": "regular customer"}],
                ctx={"actor": ACTOR_MANAGER},
            )
            self.stats.overrides += 1
        # The stock check of a day gone by: what was sold was there (today's stock levels are not touched).
        for check in session.check_states():
            SessionWriteService.write_check(
                session.session_key, channel, check_code=check.code, expected_rev=session.rev, result={"holds": []}, status="ok"
            )
        return session

    def _commit(self, session: Session, channel: str, *, actor: str) -> str:
        self._at(self.clock.at + timedelta(seconds=self.rng.randint(20, 120)))
        result = CommitService.commit(session.session_key, channel, idempotency_key=session.session_key, actor=actor)
        self.stats.orders += 1
        return result["order_ref"]

    def _kitchen(self, order_ref: str, sent: datetime, *, stations: set[str]) -> datetime:
        """The ticket reaches every station at once (their items start cooking), each station finishes its items
        after its own prep time, and the expo hands the order out. When it was handed out."""
        if not stations:
            return sent
        started = sent + timedelta(seconds=self.rng.randint(10, 90))
        self._bump(order_ref, None, "queued", started)
        done = started
        for station in sorted(stations):
            low, mode, high = PREP_MINUTES.get(station, PREP_MINUTES["kitchen"])
            ready = started + _triangular(self.rng, low, mode, high)
            self._bump(order_ref, station, "cooking", ready)
            done = max(done, ready)
        served = done + _triangular(self.rng, *EXPO_MINUTES)
        self._bump(order_ref, None, "ready", served)
        return served

    def _bump(self, order_ref: str, station: str | None, status: str, moment: datetime) -> None:
        self._at(moment)
        try:
            KitchenService.bump(order_ref=order_ref, station=station, expected_status=status, actor="kitchen")
        except OmnimanError as exc:  # every item there voided: nothing to bump
            if exc.code != "stale_status":
                raise

    def _stations(self, order_ref: str) -> set[str]:
        return {item.station for item in order_kitchen(order_ref).items if item.station and not item.is_voided}

    def _pay(self, bill: Bill, *, actor: str, split: bool = False) -> None:
        """Pay what is due, in one payment or in parts (each part its own method)."""
        if split and bill.total_q >= 4000:
            parts = self._pick([2, 2, 3, 4])
            bill = BillService.split(bill.ref, mode="equal", parts=parts, actor=actor)
            for index, _part in enumerate(list(bill.splits)):
                self._at(self.clock.at + timedelta(seconds=self.rng.randint(20, 90)))
                self._tender(bill, actor=actor, part=_part["index"], key=f"{bill.ref}:{index}")
            return
        self._tender(bill, actor=actor, key=f"{bill.ref}:0")

    def _tender(self, bill: Bill, *, actor: str, key: str, part: int | None = None) -> None:
        method = self._pick(["cash", "card", "pix"], [28, 50, 22]) if bill.channel.code != "web" else "card"
        fresh = Bill.objects.get(pk=bill.pk)
        due = fresh.total_q - fresh.paid_q
        if part is not None:
            split = next(s for s in fresh.splits if s["index"] == part)
            due = min(due, split["amount_q"] - split["paid_q"])
        if due <= 0:
            return
        kwargs: dict[str, Any] = {}
        tip = 0
        if method == "card" and bill.channel.code == "counter" and self.rng.random() < 0.18:
            tip = self._pick([100, 200, 300, 500])
        if method == "cash":
            note = self._pick([0, 0, 500, 1000, 2000, 5000])
            kwargs["tendered_q"] = due if note == 0 else ((due + note - 1) // note) * note
        if method == "card":
            kwargs["reference"] = f"AUTH{self.rng.randrange(10**6):06d}"
            kwargs["brand"] = self._pick(["visa", "mastercard", "mastercard", "elo", "amex"])
        if method == "pix":
            kwargs["reference"] = f"E{self.rng.randrange(10**12):012d}"
        result = PaymentService.tender(
            bill.ref, method=method, amount_q=due, tip_q=tip, part=part, idempotency_key=key, actor=actor, **kwargs
        )
        self.stats.payments += 1
        self._refund_maybe(result.payment)

    def _refund_maybe(self, payment) -> None:
        if self.rng.random() >= 0.012:
            return
        self._at(self.clock.at + timedelta(minutes=self.rng.randint(5, 90)))
        amount = payment.amount_q if self.rng.random() < 0.4 else max(payment.amount_q // 3, 100)
        amount = min(amount, payment.amount_q)
        PaymentService.refund(
            payment.pk, amount_q=amount, reason=self._pick(["wrong order", "cold food", "charged twice", "long wait"]),
            idempotency_key=f"refund:{payment.bill_id}:{payment.pk}", actor=ACTOR_MANAGER, roles=MANAGER_ROLES,
        )
        self.stats.refunds += 1

    def _discount_maybe(self, bill: Bill, *, actor: str, rate: float) -> Bill:
        if self.rng.random() >= rate or bill.total_q <= 0:
            return bill
        percent = self._pick([5, 10, 10, 15, 20, 50])
        reason = self._pick(["staff meal", "birthday", "loyalty card", "complaint", "regular customer"])
        # The manager stands by: the service records them as the approver only when the discount is over the limit.
        bill = BillService.discount(
            bill.ref, percent=str(percent), reason=reason, actor=actor, roles=POS_ROLES,
            approved_by=ACTOR_MANAGER, approver_roles=MANAGER_ROLES,
        )
        self.stats.discounts += 1
        return bill

    def _void_maybe(self, order_ref: str, *, actor: str, rate: float) -> None:
        if self.rng.random() >= rate:
            return
        order = Order.objects.get(ref=order_ref)
        items = list(order.items.all())
        if len(items) < 2:
            return
        item = self._pick(items)
        BillService.void_item(
            order_ref, item.line_id, reason=self._pick(["customer changed mind", "wrong item", "out of stock"]),
            actor=actor, roles=POS_ROLES, approved_by=ACTOR_MANAGER, approver_roles=MANAGER_ROLES,
        )
        self.stats.voids += 1

    # -- the channels ----------------------------------------------------------------

    def _counter(self, start: datetime) -> None:
        cashier = self._pick(CASHIERS)
        people = self._pick([1, 1, 1, 2, 2, 3])
        session = self._session("counter", start, self._items(start, people=people), actor=cashier)
        ref = self._commit(session, "counter", actor=cashier)
        if self.rng.random() < 0.02:
            self._at(self.clock.at + timedelta(minutes=1))
            OrderService.transition(ref, "cancelled", actor=cashier, reason="customer left")
            self.stats.cancelled += 1
            return
        self._at(self.clock.at + timedelta(seconds=self.rng.randint(15, 60)))
        bill = BillService.open("counter", order_ref=ref, actor=cashier)
        self.stats.bills += 1
        bill = self._discount_maybe(bill, actor=cashier, rate=0.05)
        self._pay(bill, actor=cashier, split=self.rng.random() < 0.05)
        self._kitchen(ref, self.clock.at, stations=self._stations(ref))

    def _tables(self, start: datetime) -> None:
        free = [t for t, at in self.table_free_at.items() if at <= start and t not in self.busy_tables]
        if not free or timezone.localtime(start).hour >= 20:  # the last tables sit down before 20:00
            return self._counter(start)
        table = self._pick(free)
        waiter = self._pick(WAITERS)
        people = self._pick([1, 2, 2, 2, 3, 4, 4, 6])
        moment, refs = start, []
        rounds = self._pick([1, 1, 1, 2]) if timezone.localtime(start).hour < 19 else 1
        for round_number in range(rounds):
            items = self._items(moment, people=people if round_number == 0 else max(1, people // 2))
            session = self._session("tables", moment, items, actor=waiter, handle_type="table", handle_ref=table)
            ref = self._commit(session, "tables", actor=waiter)
            refs.append(ref)
            self._void_maybe(ref, actor=waiter, rate=0.06)
            moment = self._kitchen(ref, self.clock.at, stations=self._stations(ref))
            moment += timedelta(minutes=self.rng.randint(10, 30))
        self._at(moment + timedelta(minutes=self.rng.randint(15, 45)))
        bill = BillService.open("tables", handle_type="table", handle_ref=table, actor=waiter)
        self.stats.bills += 1
        if self.rng.random() < 0.004:
            BillService.write_off(bill.ref, reason="walked out without paying", actor=ACTOR_MANAGER, roles=MANAGER_ROLES)
            self.stats.written_off += 1
        else:
            bill = self._discount_maybe(bill, actor=waiter, rate=0.07)
            self._pay(bill, actor=waiter, split=self.rng.random() < 0.3)
        self.table_free_at[table] = self.clock.at + timedelta(minutes=5)

    def _web(self, start: datetime) -> None:
        customer = self._pick(["Carla", "Dani", "Eduardo", "Fernanda", "Gabriel", "Helena", "Igor", "Joana"])
        data = {"customer": {"name": customer, "email": f"{customer.lower()}@example.com"}}
        session = self._session("web", start, self._items(start, people=self._pick([1, 1, 2])), actor="web", data=data)
        ref = self._commit(session, "web", actor="web")
        self._at(self.clock.at + timedelta(seconds=self.rng.randint(30, 120)))
        bill = BillService.open("web", order_ref=ref, actor="web")
        self.stats.bills += 1
        self._pay(bill, actor="web")
        self._kitchen(ref, self.clock.at, stations=self._stations(ref))

    def _marketplace(self, start: datetime) -> None:
        self._at(start)
        items = self._items(start, people=self._pick([1, 2]))
        prices = dict(Product.objects.filter(sku__in=[i["sku"] for i in items]).values_list("sku", "price_q"))
        external_id = f"MKT-{self.day:%m%d}{self.number:04d}"
        self.number += 1
        delivered = [
            {"sku": item["sku"], "qty": item["qty"], "unit_price_q": int(Decimal(prices.get(item["sku"], 1000)) * MARKUP)}
            for item in items
        ]
        result = ExternalOrderService.ingest(
            "marketplace", external_id, items=delivered, actor="integration",
            data={"customer": {"name": self._pick(["Bruno", "Lia", "Marcos", "Nina"])}},
        )
        self.stats.orders += 1
        ref = result["order_ref"]
        # The marketplace collects the payment on its platform: the order has no bill here.
        self._kitchen(ref, self.clock.at, stations=self._stations(ref))


def _count_of(amount_q: int) -> dict[str, int] | None:
    """``amount_q`` counted in notes and coins (largest first), or ``None`` when no coin makes it (a cent amount)."""
    count: dict[str, int] = {}
    left = amount_q
    for denomination in DRAWER_DENOMINATIONS:
        if left >= denomination:
            count[str(denomination)], left = divmod(left, denomination)
    return count if left == 0 and count else None


def _tables_in_use(day: date) -> set[str]:
    """Tables with an open tab or an unpaid round today (the live demo's): history leaves them alone."""
    open_tabs = Session.objects.filter(channel__code="tables", state=Session.State.OPEN).values_list("handle_ref", flat=True)
    start = _local(day, 0)
    unpaid = Order.objects.filter(channel__code="tables", created_at__gte=start).exclude(
        bill__status__in=(Bill.Status.SETTLED, Bill.Status.WRITTEN_OFF)
    ).values_list("current_handle_ref", flat=True)
    return set(open_tabs) | set(unpaid)
