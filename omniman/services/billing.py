"""Bills and payments (issue #15): open a bill, tender, split, discount, void, write off, refund.

Every use case runs in one transaction and locks the bill's row
(``SELECT … FOR UPDATE``) before it reads it: two screens paying one bill
are serialized, and the late one finds the bill changed (``stale_bill``,
when it passed ``expected_rev``) or paid (``already_paid``). A payment and a
refund carry an idempotency key: the same key again returns the first row
and writes nothing.

Bill-level adjustments use the kernel's one adjustments arithmetic
(``omniman.adjustments.apply_adjustments``) over the bill's lines; voids and
the write-off are fixed amounts taken off before and after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date as date_type
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman import registry, signals
from omniman.adjustments import apply_adjustments, effective_discount_percent, make_adjustment, validate_discount
from omniman.approvals import check_approval
from omniman.channel_config import discount_approval_percent, payment_methods
from omniman.exceptions import BillError, IdempotencyError, OmnimanError, ValidationError
from omniman.models import Bill, BillEvent, Channel, Order, OrderEvent, OrderItem, Payment, Refund
from omniman.monetary import monetary_mult, parse_qty, qty_to_str
from omniman.roles import MANAGER
from omniman.texts import modifiers_text
from omniman.services._common import parse_expected_rev, random_code
from omniman.services.orders import apply_auto_transition, lock_order
from omniman.services.shifts import shift_for_payment
from omniman.services.reports import Period, sales_summary
from omniman.services.tables import orders_of_handle_today

logger = logging.getLogger("omniman.services")

# BillEvent types.
BILL_OPENED = "bill.opened"
ORDERS_ATTACHED = "orders.attached"
PAYMENT_RECORDED = "payment.recorded"
BILL_SPLIT = "bill.split"
ADJUSTMENT_APPLIED = "adjustment.applied"
ADJUSTMENT_REMOVED = "adjustment.removed"
ITEM_VOIDED = "item.voided"
BILL_SETTLED = "bill.settled"
BILL_WRITTEN_OFF = "bill.written_off"
REFUND_RECORDED = "refund.recorded"
# OrderEvent types written by the billing services.
ORDER_ITEM_VOIDED = "item_voided"
ORDER_PAYMENT_RECORDED = "payment.recorded"
ORDER_BILL_SETTLED = "bill.settled"
ORDER_BILL_WRITTEN_OFF = "bill.written_off"
ORDER_REFUND_RECORDED = "refund.recorded"

CASH, CARD, PIX, GATEWAY = "cash", "card", "pix", "gateway"
SPLIT_MODES = ("equal", "items", "none")
MAX_SPLIT_PARTS = 50
# Adjustment kinds a bill lets be taken off again (a void or a write-off stays).
REMOVABLE_KINDS = ("discount", "surcharge", "service_charge")


@dataclass(frozen=True)
class PaymentResult:
    """What ``PaymentService.tender`` did: the payment, the bill after it, and whether it was a replay."""

    payment: Payment
    bill: Bill
    idempotent: bool = False


# -- helpers ---------------------------------------------------------------------


def line_key(order_ref: str, line_id: str) -> str:
    """A bill line's id: the order's ref and the order line's id (``ORD-…:L-…``)."""
    return f"{order_ref}:{line_id}"


def _now_iso() -> str:
    return timezone.now().isoformat()


def new_bill_ref() -> str:
    return f"BIL-{timezone.localdate().strftime('%Y%m%d')}-{random_code(6)}"


def _int_amount(value: Any, field_name: str, *, allow_zero: bool = False) -> int:
    """A whole number of cents, positive (or zero with ``allow_zero``): ``invalid_amount`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and not allow_zero):
        raise ValidationError(
            "invalid_amount",
            _("%(field)s must be a positive whole number of cents.") % {"field": field_name},
            {"field": field_name, "value": value if isinstance(value, int | str | float | type(None)) else str(value)},
        )
    return value


def _percent(value: Any, field_name: str, *, code: str) -> Decimal:
    try:
        percent = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ValidationError(code, context={"field": field_name, "value": str(value)}) from None
    if not percent.is_finite():
        raise ValidationError(code, context={"field": field_name, "value": str(value)})
    return percent


def _reason(reason: Any) -> str:
    text = str(reason or "").strip()
    if not text:
        raise ValidationError("reason_required", _("A reason is required."), {"field": "reason"})
    return text[:255]


def _is_manager(roles: Iterable[str] | None) -> bool:
    return roles is None or MANAGER in set(roles)


def _approval(percent: Decimal, threshold: Decimal | None, roles, approved_by: str, approver_roles) -> str:
    """Who approved (``omniman.approvals.check_approval``: ``approval_required`` unless the caller or an approver
    is a manager, when over ``threshold``; ``None``: always). ``roles=None`` is the system: nothing to approve."""
    if roles is None:
        return str(approved_by or "")
    return check_approval(percent, threshold, roles=roles, approved_by=str(approved_by or ""), approver_roles=approver_roles)


def _require_key(idempotency_key: Any) -> str:
    key = str(idempotency_key or "").strip()
    if not key:
        raise ValidationError("missing_idempotency_key", context={"field": "idempotency_key"})
    if len(key) > 255:
        raise ValidationError("invalid_field", _("The idempotency key is too long."), {"field": "idempotency_key"})
    return key


def find_bill(bill_ref: str, *, lock: bool = False) -> Bill:
    """The bill ``bill_ref`` with its channel (locked with ``lock``): ``not_found`` if there is none."""
    rows = Bill.objects.select_related("channel")
    if lock:
        rows = rows.select_for_update(of=("self",))
    bill = next(iter(rows.filter(ref=str(bill_ref or ""))[:1]), None)
    if bill is None:
        raise BillError("not_found", _("No bill %(bill_ref)s.") % {"bill_ref": repr(bill_ref)}, {"bill_ref": bill_ref})
    return bill


def _require_rev(bill: Bill, expected_rev: Any) -> None:
    expected = parse_expected_rev(expected_rev)
    if expected is None:
        return
    if expected != bill.rev:
        raise BillError(
            "stale_bill",
            _("Bill %(bill_ref)s changed since you loaded it (revision %(rev)d, not %(expected)d).")
            % {"bill_ref": bill.ref, "rev": bill.rev, "expected": expected},
            {"expected_rev": expected, "bill": bill_summary(bill), **bill.summary()},
        )


def _require_open(bill: Bill) -> None:
    if bill.is_closed:
        raise BillError(
            "already_paid",
            _("Bill %(bill_ref)s is already %(status)s.") % {"bill_ref": bill.ref, "status": bill.get_status_display().lower()},
            {"bill": bill_summary(bill), **bill.summary()},
        )


def bill_summary(bill: Bill) -> dict[str, Any]:
    """The fresh bill in an error's context: its numbers, its split plan and its adjustments."""
    return {**bill.summary(), "splits": bill.splits or [], "adjustments": bill.adjustments or []}


def _cancel_status(channel: Channel) -> str:
    return channel.order_flow.cancel_status or ""


def _bill_orders(bill: Bill) -> list[Order]:
    """The bill's orders that count (not cancelled), oldest first."""
    rows = Order.objects.filter(bill=bill).order_by("created_at", "id")
    cancel = _cancel_status(bill.channel)
    if cancel:
        rows = rows.exclude(status=cancel)
    return list(rows)


def bill_lines(orders: list[Order]) -> list[dict[str, Any]]:
    """The bill's lines (one query): every item of its orders, ``line_id`` = ``line_key(order_ref, line_id)``."""
    refs = {order.pk: order.ref for order in orders}
    items = OrderItem.objects.filter(order_id__in=list(refs)).order_by("order_id", "id")
    return [
        {
            "line_id": line_key(refs[item.order_id], item.line_id),
            "order_ref": refs[item.order_id],
            "order_line_id": item.line_id,
            "sku": item.sku,
            "name": item.name,
            "qty": item.qty,
            "unit_price_q": item.unit_price_q,
            "line_total_q": item.line_total_q,
            "modifiers": modifiers_text(item.meta),  # "Medium · Bacon · No onions" ("" without)
        }
        for item in items
    ]


def _voided_by_line(adjustments: list[dict[str, Any]]) -> dict[str, tuple[Decimal, int]]:
    """Per bill line: (quantity voided, amount voided as a positive number of cents)."""
    voided: dict[str, tuple[Decimal, int]] = {}
    for adjustment in adjustments:
        if adjustment.get("kind") == "void":
            qty, amount = voided.get(adjustment.get("line_id", ""), (Decimal(0), 0))
            voided[adjustment.get("line_id", "")] = (
                qty + Decimal(str(adjustment.get("qty") or 0)),
                amount - int(adjustment.get("amount_q") or 0),
            )
    return voided


EXTRAS = "+"  # the line id (after the order ref) of what an order charged beyond its items (its own adjustments)


@dataclass
class _Computed:
    orders: list[Order]
    lines: list[dict[str, Any]]  # the bill's item lines (``bill_lines``)
    calc_lines: list[dict[str, Any]]  # what ``apply_adjustments`` runs over: the items, plus each order's extras
    adjustments: list[dict[str, Any]]  # with amounts filled
    orders_q: int
    total_q: int
    line_values: dict[str, int] = field(default_factory=dict)  # each item line after its voids and line discounts


def _compute(bill: Bill, adjustments: list[dict[str, Any]] | None = None, orders: list[Order] | None = None) -> _Computed:
    """The bill's total: the kernel's one arithmetic (``omniman.adjustments.apply_adjustments``) over its lines.

    The lines are the items of its orders plus, per order, one line of what
    the order charged beyond its items (``<order_ref>:+``: its service charge
    and its own discounts, as snapshotted), so the items and the extras add up
    to the orders' charged totals; the bill's adjustments (voids, discounts,
    surcharges, the write-off) apply over them. Never negative.
    """
    adjustments = [dict(a) for a in (bill.adjustments if adjustments is None else adjustments)]
    orders = _bill_orders(bill) if orders is None else orders
    lines = bill_lines(orders)
    items_by_order: dict[str, int] = {}
    for line in lines:
        items_by_order[line["order_ref"]] = items_by_order.get(line["order_ref"], 0) + int(line["line_total_q"])
    calc_lines = [{"line_id": line["line_id"], "line_total_q": int(line["line_total_q"])} for line in lines]
    for order in orders:
        extras = order.charged_q - items_by_order.get(order.ref, 0)
        if extras:
            calc_lines.append({"line_id": line_key(order.ref, EXTRAS), "line_total_q": extras})
    filled, totals = apply_adjustments(calc_lines, adjustments)
    values = {line["line_id"]: int(line["line_total_q"]) for line in lines}
    for adjustment in filled:
        if adjustment.get("line_id") in values:
            values[adjustment["line_id"]] = max(values[adjustment["line_id"]] + int(adjustment.get("amount_q") or 0), 0)
    orders_q = sum(order.charged_q for order in orders)
    return _Computed(orders, lines, calc_lines, filled, orders_q, int(totals["total_q"]), values)


def _paid_q(bill: Bill) -> int:
    return int(Payment.objects.filter(bill=bill).aggregate(total=Sum("amount_q"))["total"] or 0)


def _refresh_numbers(bill: Bill, computed: _Computed) -> bool:
    """Store the computed total, adjustments and payments on the bill; ``True`` if the total changed."""
    before = bill.total_q
    bill.adjustments = computed.adjustments
    bill.total_q = computed.total_q
    bill.paid_q = _paid_q(bill)
    return before != bill.total_q


def _event(bill: Bill, type_: str, *, actor: str, before: dict[str, Any] | None, **payload: Any) -> BillEvent:
    return BillEvent.objects.create(
        bill=bill, type=type_, actor=actor, payload={**payload, "before": before, "after": bill.summary()}
    )


def _order_events(orders: list[Order], type_: str, *, actor: str, payload: dict[str, Any]) -> None:
    if orders:
        OrderEvent.objects.bulk_create([OrderEvent(order=o, type=type_, actor=actor, payload=payload) for o in orders])


def _save(bill: Bill, *, total_changed: bool = False) -> None:
    """Bump the revision and write the bill; a total that changed drops the split plan (it no longer adds up)."""
    if total_changed and bill.splits:
        bill.splits = []
    bill.rev += 1
    bill.save()


def _settle_if_covered(bill: Bill, computed: _Computed, *, actor: str) -> bool:
    """Payments cover the total of a bill with orders: settled, audited, and each order's ``on_payment_confirm``."""
    if not bill.is_open or not computed.orders or bill.paid_q < bill.total_q:
        return False
    before = bill.summary()
    bill.status = Bill.Status.SETTLED
    bill.settled_at = timezone.now()
    bill.closed_by = actor
    _event(bill, BILL_SETTLED, actor=actor, before=before)
    _order_events(computed.orders, ORDER_BILL_SETTLED, actor=actor, payload={"bill_ref": bill.ref, "total_q": bill.total_q})
    for order in computed.orders:
        apply_auto_transition(lock_order(order.ref), "on_payment_confirm", actor=actor)
    # In this transaction: a receiver's directives (the receipt's print, its email) commit with the settle.
    signals.bill_settled.send(sender=Bill, bill=bill, orders=list(computed.orders), actor=actor)
    logger.info("bill settled", extra={"bill_ref": bill.ref, "channel": bill.channel.code, "actor": actor})
    return True


def _find_channel(channel_code: str) -> Channel:
    channel = Channel.objects.filter(code=str(channel_code or ""), is_active=True).first()
    if channel is None:
        raise BillError("channel_not_found", f"No channel {channel_code!r}.", {"channel_code": channel_code})
    return channel


def _unbilled_orders(channel: Channel, handle_type: str, handle_ref: str):
    rows = orders_of_handle_today(channel, handle_type, handle_ref).filter(bill__isnull=True)
    cancel = _cancel_status(channel)
    return rows.exclude(status=cancel) if cancel else rows


# -- bills -------------------------------------------------------------------------


class BillService:
    @staticmethod
    @transaction.atomic
    def open(
        channel_code: str, *, handle_type: str = "", handle_ref: str = "", order_ref: str = "", actor: str = "system"
    ) -> Bill:
        """Get or open the bill of a handle (a table: every unpaid, non-cancelled order of today joins it)
        or of one order (``order_ref``: a counter sale, a web draft paid at pickup). Idempotent.

        The returned bill has ``created`` (``True`` when this call opened it).
        Errors: ``channel_not_found``, ``not_found`` (no such order in the channel),
        ``invalid_field`` (neither a handle nor an order given).
        """
        channel = _find_channel(channel_code)
        if order_ref:
            return BillService._open_for_order(channel, str(order_ref), actor=actor)
        handle_type, handle_ref = str(handle_type or ""), str(handle_ref or "")
        if not handle_ref:
            raise ValidationError(
                "invalid_field", _("Give a handle (handle_type and handle_ref) or an order_ref."), {"field": "handle_ref"}
            )
        bill, created = BillService._get_or_create_open(channel, handle_type, handle_ref, actor=actor)
        BillService._attach(bill, list(_unbilled_orders(channel, handle_type, handle_ref)), actor=actor, created=created)
        bill.created = created
        return bill

    @staticmethod
    def _get_or_create_open(channel: Channel, handle_type: str, handle_ref: str, *, actor: str) -> tuple[Bill, bool]:
        lookup = {"channel": channel, "handle_type": handle_type, "handle_ref": handle_ref, "status": Bill.Status.OPEN}
        for _attempt in range(3):
            bill = Bill.objects.select_related("channel").select_for_update(of=("self",)).filter(**lookup).first()
            if bill is not None:
                return bill, False
            try:
                with transaction.atomic():
                    bill = Bill.objects.create(
                        ref=new_bill_ref(), channel=channel, handle_type=handle_type, handle_ref=handle_ref,
                        currency=channel.currency,
                    )
            except IntegrityError:
                continue  # another request opened it (or the ref collided): read it again
            _event(bill, BILL_OPENED, actor=actor, before=None, handle_type=handle_type, handle_ref=handle_ref)
            return Bill.objects.select_related("channel").select_for_update(of=("self",)).get(pk=bill.pk), True
        raise OmnimanError("conflict", "Could not open the bill; try again.", {"handle_ref": handle_ref})

    @staticmethod
    def _open_for_order(channel: Channel, order_ref: str, *, actor: str) -> Bill:
        order = lock_order(missing=BillError("not_found", _("No order %(order_ref)s.") % {"order_ref": repr(order_ref)},
                                              {"order_ref": order_ref}), ref=order_ref, channel=channel)
        if order.bill_id is not None:
            bill = find_bill(Bill.objects.filter(pk=order.bill_id).values_list("ref", flat=True).get(), lock=True)
            bill.created = False
            return bill
        if order.status == _cancel_status(channel):
            raise BillError("already_voided", _("Order %(order_ref)s is cancelled.") % {"order_ref": order_ref},
                            {"order_ref": order_ref})
        flow = channel.order_flow
        if flow.is_table(order.handle_type) and order.handle_ref:
            # A table's round: the table's bill.
            bill, created = BillService._get_or_create_open(channel, order.handle_type, order.handle_ref, actor=actor)
            unbilled = list(_unbilled_orders(channel, order.handle_type, order.handle_ref))
            if order.pk not in {o.pk for o in unbilled}:
                unbilled.append(order)
        else:
            bill = Bill.objects.create(
                ref=new_bill_ref(), channel=channel, handle_type=order.handle_type, handle_ref="", currency=order.currency
            )
            bill = Bill.objects.select_related("channel").select_for_update(of=("self",)).get(pk=bill.pk)
            _event(bill, BILL_OPENED, actor=actor, before=None, order_ref=order.ref)
            created, unbilled = True, [order]
        BillService._attach(bill, unbilled, actor=actor, created=created)
        bill.created = created
        return bill

    @staticmethod
    def _attach(bill: Bill, orders: list[Order], *, actor: str, created: bool) -> None:
        """Join ``orders`` to the (locked, open) bill; recompute and audit when any joined."""
        if orders:
            Order.objects.filter(pk__in=[o.pk for o in orders], bill__isnull=True).update(bill=bill)
        if orders or created:
            before = None if created else bill.summary()
            computed = _compute(bill)
            changed = _refresh_numbers(bill, computed)
            _save(bill, total_changed=changed)
            if orders:
                _event(bill, ORDERS_ATTACHED, actor=actor, before=before, order_refs=[o.ref for o in orders])

    @staticmethod
    @transaction.atomic
    def refresh(bill_ref: str, *, actor: str = "system") -> Bill:
        """Attach the handle's rounds sent since the bill opened (``open`` does it too); recompute. Errors: ``not_found``."""
        bill = find_bill(bill_ref, lock=True)
        if bill.is_open and bill.handle_ref:
            BillService._attach(
                bill, list(_unbilled_orders(bill.channel, bill.handle_type, bill.handle_ref)), actor=actor, created=False
            )
        return bill

    @staticmethod
    @transaction.atomic
    def discount(
        bill_ref: str,
        *,
        expected_rev: Any = None,
        percent: Any = None,
        amount_q: Any = None,
        order_ref: str = "",
        line_id: str = "",
        reason: str = "",
        actor: str = "system",
        roles: Iterable[str] | None = None,
        approved_by: str = "",
        approver_roles: Iterable[str] | None = None,
    ) -> Bill:
        """A discount on one line (``order_ref`` + ``line_id``) or the whole bill, a percent or an amount, with a reason.

        Above the channel's ``discounts.approval_over_percent`` (default 10) of
        what it applies to, it needs a manager: the caller's ``roles``, or an
        approver (``approved_by`` with ``approver_roles``) — else ``approval_required`` (403).
        Errors: ``not_found``, ``already_paid``, ``stale_bill``, ``reason_required``,
        ``invalid_discount`` (percent not in (0, 100], amount ≤ 0 or over what it applies to, both or neither), ``line_not_found``.
        """
        bill = find_bill(bill_ref, lock=True)
        _require_open(bill)
        _require_rev(bill, expected_rev)
        current = _compute(bill)
        target = line_key(str(order_ref or ""), str(line_id or "")) if (order_ref or line_id) else ""
        if target and target not in current.line_values:
            raise ValidationError("line_not_found", context={"order_ref": order_ref, "line_id": line_id})
        parsed_percent, parsed_amount = validate_discount(
            current.calc_lines, bill.adjustments, line_id=target, percent=percent, amount_q=amount_q, reason=reason
        )
        adjustment = make_adjustment(
            "discount", label=_("Discount"), line_id=target, percent=parsed_percent, amount_q=parsed_amount,
            reason=_reason(reason), actor=actor, approved_by=str(approved_by or ""),
        )
        effective = effective_discount_percent(current.calc_lines, bill.adjustments, adjustment)
        adjustment["approved_by"] = _approval(effective, discount_approval_percent(bill.channel.config), roles, approved_by, approver_roles)
        before = bill.summary()
        computed = _compute(bill, [*bill.adjustments, adjustment])
        changed = _refresh_numbers(bill, computed)
        _save(bill, total_changed=changed)
        applied = next(a for a in bill.adjustments if a["id"] == adjustment["id"])
        _event(bill, ADJUSTMENT_APPLIED, actor=actor, before=before, adjustment=applied)
        if _settle_if_covered(bill, computed, actor=actor):
            bill.save()
        return bill

    @staticmethod
    @transaction.atomic
    def remove_adjustment(
        bill_ref: str,
        adjustment_id: str,
        *,
        expected_rev: Any = None,
        actor: str = "system",
        roles: Iterable[str] | None = None,
        approved_by: str = "",
        approver_roles: Iterable[str] | None = None,
    ) -> Bill:
        """Take a discount (or surcharge) off the bill. Voids and write-offs stay (``not_removable``).
        Errors: ``not_found``, ``adjustment_not_found``, ``already_paid``, ``stale_bill``."""
        bill = find_bill(bill_ref, lock=True)
        _require_open(bill)
        _require_rev(bill, expected_rev)
        target = next((a for a in bill.adjustments if a.get("id") == adjustment_id), None)
        if target is None:
            raise BillError("adjustment_not_found", _("No adjustment %(id)s on this bill.") % {"id": repr(adjustment_id)},
                            {"bill_ref": bill.ref, "adjustment_id": adjustment_id})
        if target.get("kind") not in REMOVABLE_KINDS:
            raise ValidationError("not_removable", _("A void or a write-off cannot be removed."),
                                  {"adjustment_id": adjustment_id, "kind": target.get("kind")})
        before = bill.summary()
        computed = _compute(bill, [a for a in bill.adjustments if a.get("id") != adjustment_id])
        changed = _refresh_numbers(bill, computed)
        _save(bill, total_changed=changed)
        _event(bill, ADJUSTMENT_REMOVED, actor=actor, before=before, adjustment=target, approved_by=str(approved_by or ""))
        return bill

    @staticmethod
    @transaction.atomic
    def split(
        bill_ref: str,
        *,
        expected_rev: Any = None,
        mode: str,
        parts: Any = None,
        groups: Any = None,
        rest_parts: Any = None,
        actor: str = "system",
    ) -> Bill:
        """Plan how the due is paid: ``equal`` in ``parts`` (default 2); by ``items`` (each of ``groups`` pays its lines,
        with their share of the adjustments; the lines left over are the rest, equally by ``rest_parts``, default 1);
        ``none`` drops the plan. The parts add up exactly to the due.

        Stores ``bill.splits`` = ``[{"index", "label", "amount_q", "lines", "paid_q"}]``.
        Errors: ``not_found``, ``already_paid`` (settled or written off), ``stale_bill``,
        ``invalid_split`` (unknown mode, parts not 2…50, rest_parts not 1…50, an empty group, a line in two groups,
        nothing due or nothing to split),
        ``line_not_found``.
        """
        bill = find_bill(bill_ref, lock=True)
        _require_open(bill)
        _require_rev(bill, expected_rev)
        if mode not in SPLIT_MODES:
            raise ValidationError("invalid_split", _("Split mode must be equal, items or none."), {"field": "mode"})
        before = bill.summary()
        if mode == "none":
            plan: list[dict[str, Any]] = []
        else:
            computed = _compute(bill)
            due = bill.total_q - _paid_q(bill)
            if due <= 0:
                raise ValidationError("invalid_split", _("Nothing is due on this bill."), {"due_q": due})
            plan = _equal_plan(due, parts) if mode == "equal" else _items_plan(due, computed, groups, rest_parts)
        bill.splits = plan
        bill.rev += 1
        bill.save()
        _event(bill, BILL_SPLIT, actor=actor, before=before, mode=mode, splits=plan)
        return bill

    @staticmethod
    @transaction.atomic
    def void_item(
        order_ref: str,
        line_id: str,
        *,
        qty: Any = None,
        reason: str = "",
        actor: str = "system",
        roles: Iterable[str] | None = None,
        approved_by: str = "",
        approver_roles: Iterable[str] | None = None,
    ) -> Bill:
        """Void (all or ``qty`` of) a sent line: the order gets ``item_voided`` (the kitchen board shows it),
        its bill (opened if needed) a ``void`` adjustment of the line's value. A manager, or approved by one.

        Errors: ``approval_required`` (403), ``reason_required``, ``not_found`` (order), ``line_not_found``,
        ``already_voided`` (cancelled order, line already voided), ``already_paid`` (the bill is settled: refund instead),
        ``invalid_qty``, ``over_void`` (more than what is left of the line).
        """
        text = _reason(reason)
        approver = _approval(Decimal(100), None, roles, approved_by, approver_roles)
        order = Order.objects.select_related("channel").filter(ref=str(order_ref or "")).first()
        if order is None:
            raise BillError("not_found", _("No order %(order_ref)s.") % {"order_ref": repr(order_ref)}, {"order_ref": order_ref})
        item = OrderItem.objects.filter(order=order, line_id=str(line_id or "")).first()
        if item is None:
            raise ValidationError("line_not_found", context={"order_ref": order_ref, "line_id": line_id})
        if order.status == _cancel_status(order.channel):
            raise BillError("already_voided", _("Order %(order_ref)s is cancelled.") % {"order_ref": order_ref},
                            {"order_ref": order_ref, "line_id": line_id})
        if order.bill_id is None:
            bill = BillService._open_for_order(order.channel, order.ref, actor=actor)
        else:
            bill = find_bill(Bill.objects.filter(pk=order.bill_id).values_list("ref", flat=True).get(), lock=True)
        _require_open(bill)
        key = line_key(order.ref, item.line_id)
        voided_qty, voided_q = _voided_by_line(bill.adjustments).get(key, (Decimal(0), 0))
        left = item.qty - voided_qty
        if left <= 0:
            raise BillError("already_voided", _("This item is already voided."), {"order_ref": order_ref, "line_id": line_id})
        if qty in (None, ""):
            amount, count = item.line_total_q - voided_q, left
        else:
            count = parse_qty(qty)
            if count is None or count <= 0:
                raise ValidationError("invalid_qty", context={"field": "qty"})
            if count > left:
                raise ValidationError("over_void", _("Only %(left)s of this item are left to void.") % {"left": qty_to_str(left)},
                                      {"field": "qty", "left": qty_to_str(left)})
            amount = item.line_total_q - voided_q if count == left else min(monetary_mult(count, item.unit_price_q),
                                                                           item.line_total_q - voided_q)
        adjustment = make_adjustment(
            "void", label=_("Void: %(name)s") % {"name": item.name or item.sku}, line_id=key, amount_q=int(amount),
            reason=text, actor=actor, approved_by=approver,
        )
        adjustment["qty"] = qty_to_str(count)
        before = bill.summary()
        computed = _compute(bill, [*bill.adjustments, adjustment])
        changed = _refresh_numbers(bill, computed)
        _save(bill, total_changed=changed)
        _event(bill, ITEM_VOIDED, actor=actor, before=before, adjustment=adjustment, order_ref=order.ref)
        # The order's row is touched (``updated_at``): the kitchen board and the API's changed-since pollers see it.
        Order.objects.filter(pk=order.pk).update(updated_at=timezone.now())
        order.emit_event(
            ORDER_ITEM_VOIDED,
            actor=actor,
            payload={"line_id": item.line_id, "sku": item.sku, "name": item.name, "qty": qty_to_str(count),
                     "amount_q": int(amount), "reason": text, "approved_by": adjustment["approved_by"], "bill_ref": bill.ref},
        )
        if _settle_if_covered(bill, computed, actor=actor):
            bill.save()
        return bill

    @staticmethod
    @transaction.atomic
    def write_off(
        bill_ref: str, *, expected_rev: Any = None, reason: str = "", actor: str = "system", roles: Iterable[str] | None = None
    ) -> Bill:
        """A manager writes off what is still due (adjustment ``write_off``): the bill is ``written_off``.
        Errors: ``forbidden`` (403), ``reason_required``, ``not_found``, ``already_paid``, ``stale_bill``."""
        if not _is_manager(roles):
            raise BillError("forbidden", _("Only a manager may write off a bill."), {"bill_ref": bill_ref})
        text = _reason(reason)
        bill = find_bill(bill_ref, lock=True)
        _require_open(bill)
        _require_rev(bill, expected_rev)
        before = bill.summary()
        due = max(bill.total_q - _paid_q(bill), 0)
        # The amount asked is what is due (a write-off without an amount would take everything, payments included).
        adjustment = make_adjustment("write_off", label=_("Write-off"), amount_q=due, reason=text, actor=actor)
        computed = _compute(bill, [*bill.adjustments, adjustment] if due else None)
        _refresh_numbers(bill, computed)
        bill.status = Bill.Status.WRITTEN_OFF
        bill.settled_at = timezone.now()
        bill.closed_by = actor
        bill.note = text
        _save(bill, total_changed=False)
        _event(bill, BILL_WRITTEN_OFF, actor=actor, before=before, adjustment=adjustment, amount_q=due)
        _order_events(computed.orders, ORDER_BILL_WRITTEN_OFF, actor=actor, payload={"bill_ref": bill.ref, "amount_q": due, "reason": text})
        return bill


def _allocate(total: int, weights: list[int]) -> list[int]:
    """``total`` shared in proportion to ``weights``, in whole cents that add up exactly (largest remainder)."""
    weight = sum(weights)
    if weight <= 0:
        return [total // len(weights) + (1 if i < total % len(weights) else 0) for i in range(len(weights))]
    shares = [total * w // weight for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % weight), i))
    for i in remainders[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _count(value: Any, field_name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_SPLIT_PARTS:
        raise ValidationError(
            "invalid_split",
            _("%(field)s must be a whole number from %(min)d to %(max)d.") % {"field": field_name, "min": minimum, "max": MAX_SPLIT_PARTS},
            {"field": field_name},
        )
    return value


def _equal_plan(due: int, parts: Any) -> list[dict[str, Any]]:
    count = 2 if parts in (None, "") else _count(parts, "parts", minimum=2)
    return [
        {"index": i, "label": _("Part %(n)d of %(total)d") % {"n": i + 1, "total": count}, "amount_q": amount, "lines": [], "paid_q": 0}
        for i, amount in enumerate(_allocate(due, [1] * count))
    ]


def _items_plan(due: int, computed: _Computed, groups: Any, rest_parts: Any) -> list[dict[str, Any]]:
    groups = [] if groups is None else groups
    if not isinstance(groups, list) or len(groups) > MAX_SPLIT_PARTS:
        raise ValidationError("invalid_split", _("Give at most %(max)d groups of lines.") % {"max": MAX_SPLIT_PARTS}, {"field": "groups"})
    taken: set[str] = set()
    keyed: list[list[str]] = []
    for group in groups:
        if not isinstance(group, list) or not group:
            raise ValidationError("invalid_split", _("A group needs at least one line."), {"field": "groups"})
        keys = []
        for entry in group:
            if not isinstance(entry, dict):
                raise ValidationError("invalid_split", _("A line is given as order_ref and line_id."), {"field": "groups"})
            key = line_key(str(entry.get("order_ref") or ""), str(entry.get("line_id") or ""))
            if key not in computed.line_values:
                raise ValidationError("line_not_found", context={"order_ref": entry.get("order_ref"), "line_id": entry.get("line_id")})
            if key in taken:
                raise ValidationError("invalid_split", _("A line can be in one group only."), {"line_id": key})
            taken.add(key)
            keys.append(key)
        keyed.append(keys)
    rest = [key for key in computed.line_values if key not in taken]
    rest_count = _count(rest_parts, "rest_parts", minimum=1) if rest and rest_parts not in (None, "") else (1 if rest else 0)
    weights = [sum(computed.line_values[k] for k in keys) for keys in keyed]
    rest_weight = sum(computed.line_values[k] for k in rest)
    if sum(weights) + rest_weight <= 0:
        raise ValidationError("invalid_split", _("Nothing is left to split."), {"due_q": due})
    shares = _allocate(due, [*weights, rest_weight] if rest else weights)
    plan = [
        {"index": i, "label": _("Guest %(n)d") % {"n": i + 1}, "amount_q": shares[i],
         "lines": [{"order_ref": k.split(":", 1)[0], "line_id": k.split(":", 1)[1]} for k in keys], "paid_q": 0}
        for i, keys in enumerate(keyed)
    ]
    if rest:
        rest_lines = [{"order_ref": k.split(":", 1)[0], "line_id": k.split(":", 1)[1]} for k in rest]
        for j, amount in enumerate(_allocate(shares[-1], [1] * rest_count)):
            plan.append({
                "index": len(plan),
                "label": _("Rest %(n)d of %(total)d") % {"n": j + 1, "total": rest_count},
                "amount_q": amount, "lines": rest_lines, "paid_q": 0,
            })
    return plan


# -- payments ----------------------------------------------------------------------


class PaymentService:
    @staticmethod
    @transaction.atomic
    def tender(
        bill_ref: str,
        *,
        method: str,
        amount_q: Any = None,
        tendered_q: Any = None,
        tip_q: Any = 0,
        tip_percent: Any = None,
        reference: str = "",
        brand: str = "",
        part: Any = None,
        expected_rev: Any = None,
        idempotency_key: str,
        actor: str = "system",
        roles: Iterable[str] | None = None,
        currency: str = "",
        register: str = "",
    ) -> PaymentResult:
        """Record one payment on a bill (locked): ``amount_q`` (default: the due, or the part's due) goes to the bill,
        the tip (``tip_q`` plus ``tip_percent`` of the amount) is kept apart, cash gets its change (``tendered_q``,
        default the amount and the tip; ignored for the other methods, which take exactly the amount and the tip).

        When payments cover the total the bill is ``settled``: ``bill.settled`` on the bill and its orders, and each
        order's ``auto_transitions.on_payment_confirm`` if its flow allows it (never a kitchen status by force).
        The same ``idempotency_key`` returns the first payment (``idempotent=True``) and writes nothing.
        Errors: ``missing_idempotency_key``, ``not_found``, ``already_paid``, ``stale_bill``, ``unknown_method``,
        ``currency_mismatch``, ``invalid_amount`` (not a whole positive number; a tip may be 0), ``overpayment``
        (more than the due or the part's due, or nothing due), ``insufficient_tender``, ``reference_required``,
        ``invalid_split`` (no such part), ``conflict`` (the key paid something else), ``payment_declined``,
        ``gateway_unavailable``, ``register_not_found``.

        The payment goes into the open shift of ``register`` (else the channel's ``config["register"]``, else
        ``"main"``); a register without an open shift gets one, opened automatically with a zero float.
        """
        key = _require_key(idempotency_key)
        bill = find_bill(bill_ref, lock=True)
        replay = Payment.objects.filter(bill=bill, idempotency_key=key).first()
        if replay is not None:
            if replay.method != method or (amount_q not in (None, "") and amount_q != replay.amount_q):
                raise IdempotencyError("conflict", _("This idempotency key paid something else."),
                                       {"idempotency_key": key, "payment_id": replay.pk})
            return PaymentResult(payment=replay, bill=bill, idempotent=True)
        _require_open(bill)
        _require_rev(bill, expected_rev)
        if method not in payment_methods(bill.channel.config):
            raise ValidationError("unknown_method", _("The channel does not take %(method)s.") % {"method": repr(method)},
                                  {"method": method, "methods": payment_methods(bill.channel.config)})
        if currency and currency != bill.currency:
            raise ValidationError("currency_mismatch", context={"currency": currency, "bill_currency": bill.currency})
        due = bill.total_q - _paid_q(bill)
        split = None
        if part not in (None, ""):
            split = next((s for s in bill.splits if isinstance(part, int) and not isinstance(part, bool) and s["index"] == part), None)
            if split is None:
                raise ValidationError("invalid_split", _("No part %(part)s in the bill's split.") % {"part": part}, {"part": part})
        limit = min(due, split["amount_q"] - split["paid_q"]) if split else due
        amount = limit if amount_q in (None, "") else _int_amount(amount_q, "amount_q")
        if amount <= 0:
            raise ValidationError("overpayment", _("Nothing is due here."), {"field": "amount_q", "amount_q": 0, "due_q": limit, "part": part})
        if amount > limit:
            raise ValidationError(
                "overpayment",
                _("%(amount)d is more than the %(limit)d due.") % {"amount": amount, "limit": limit},
                {"amount_q": amount, "due_q": limit, "part": part},
            )
        tip = _int_amount(tip_q or 0, "tip_q", allow_zero=True)
        if tip_percent not in (None, ""):
            percent = _percent(tip_percent, "tip_percent", code="invalid_amount")
            if not Decimal(0) <= percent <= Decimal(100):
                raise ValidationError("invalid_amount", _("A tip percent is from 0 to 100."), {"field": "tip_percent"})
            tip += int((Decimal(amount) * percent / 100).quantize(Decimal(1), ROUND_HALF_UP))
        reference, brand = str(reference or "").strip()[:128], str(brand or "").strip()[:32]
        if method == CASH:
            tendered = amount + tip if tendered_q in (None, "") else _int_amount(tendered_q, "tendered_q")
            if tendered < amount + tip:
                raise ValidationError(
                    "insufficient_tender",
                    _("%(tendered)d tendered does not cover %(needed)d.") % {"tendered": tendered, "needed": amount + tip},
                    {"tendered_q": tendered, "needed_q": amount + tip},
                )
        else:  # only cash gives change: what another method takes is the amount and the tip
            if tendered_q not in (None, ""):
                _int_amount(tendered_q, "tendered_q")
            tendered = amount + tip
        if method == CARD and not reference:
            raise ValidationError("reference_required", context={"field": "reference"})
        shift = shift_for_payment(bill.channel, register=str(register or ""), actor=actor)
        meta: dict[str, Any] = {}
        if method == GATEWAY:
            reference, meta = _gateway_charge(bill, amount + tip, key), {"gateway": True}
        before = bill.summary()
        payment = Payment.objects.create(
            bill=bill, shift=shift, method=method, amount_q=amount, tip_q=tip, tendered_q=tendered, change_q=tendered - amount - tip,
            currency=bill.currency, reference=reference, brand=brand, part=part if split else None, actor=actor,
            idempotency_key=key, meta=meta,
        )
        if split is not None:
            bill.splits = [dict(s, paid_q=s["paid_q"] + amount) if s["index"] == part else s for s in bill.splits]
        computed = _compute(bill)
        _refresh_numbers(bill, computed)
        _save(bill, total_changed=False)
        payload = {"payment_id": payment.pk, "method": method, "amount_q": amount, "tip_q": tip,
                   "change_q": payment.change_q, "part": payment.part, "bill_ref": bill.ref}
        _event(bill, PAYMENT_RECORDED, actor=actor, before=before, **payload)
        _order_events(computed.orders, ORDER_PAYMENT_RECORDED, actor=actor, payload=payload)
        if _settle_if_covered(bill, computed, actor=actor):
            bill.save()
        logger.info("payment recorded", extra={"bill_ref": bill.ref, "method": method, "actor": actor})
        return PaymentResult(payment=payment, bill=bill, idempotent=False)

    @staticmethod
    @transaction.atomic
    def refund(
        payment_id: Any,
        *,
        amount_q: Any,
        reason: str = "",
        idempotency_key: str,
        actor: str = "system",
        roles: Iterable[str] | None = None,
        register: str = "",
    ) -> Refund:
        """A manager gives back (part of) a payment; a gateway payment through its gateway. Idempotent by key
        (the returned refund has ``idempotent``). Errors: ``forbidden`` (403), ``missing_idempotency_key``,
        ``not_found``, ``reason_required``, ``invalid_amount``, ``over_refund``, ``conflict`` (the key refunded another payment),
        ``register_not_found``. The refund comes out of the open shift of ``register`` (else the payment's shift's register,
        else the channel's, else ``"main"``; opened automatically if none is open)."""
        if not _is_manager(roles):
            raise BillError("forbidden", _("Only a manager may refund a payment."), {"payment_id": payment_id})
        key = _require_key(idempotency_key)
        try:
            pk = int(payment_id)
        except (TypeError, ValueError):
            pk = 0
        bill_id = Payment.objects.filter(pk=pk).values_list("bill_id", flat=True).first()
        if bill_id is None:
            raise BillError("not_found", _("No payment %(id)s.") % {"id": repr(payment_id)}, {"payment_id": payment_id})
        bill = Bill.objects.select_related("channel").select_for_update(of=("self",)).get(pk=bill_id)
        payment = Payment.objects.select_related("shift__register").get(pk=pk)
        replay = Refund.objects.filter(idempotency_key=key).first()
        if replay is not None:
            if replay.payment_id != payment.pk or (amount_q != replay.amount_q):
                raise IdempotencyError("conflict", _("This idempotency key refunded something else."),
                                       {"idempotency_key": key, "refund_id": replay.pk})
            replay.idempotent = True
            return replay
        text = _reason(reason)
        amount = _int_amount(amount_q, "amount_q")
        refunded = int(payment.refunds.aggregate(total=Sum("amount_q"))["total"] or 0)
        left = payment.amount_q - refunded
        if amount > left:
            raise ValidationError(
                "over_refund",
                _("%(amount)d is more than the %(left)d left to refund.") % {"amount": amount, "left": left},
                {"amount_q": amount, "refundable_q": left, "payment_id": payment.pk},
            )
        code = str(register or "") or (payment.shift.register.code if payment.shift_id else "")
        shift = shift_for_payment(bill.channel, register=code, actor=actor)
        reference = ""
        if payment.method == GATEWAY:
            reference = _gateway_refund(payment, amount, key)
        before = bill.summary()
        refund = Refund.objects.create(payment=payment, shift=shift, amount_q=amount, reason=text, actor=actor, idempotency_key=key,
                                       reference=reference)
        bill.rev += 1
        bill.save(update_fields=["rev", "updated_at"])
        payload = {"refund_id": refund.pk, "payment_id": payment.pk, "amount_q": amount, "reason": text, "bill_ref": bill.ref}
        _event(bill, REFUND_RECORDED, actor=actor, before=before, **payload)
        _order_events(_bill_orders(bill), ORDER_REFUND_RECORDED, actor=actor, payload=payload)
        refund.idempotent = False
        return refund


def _gateway_charge(bill: Bill, amount_q: int, key: str) -> str:
    gateway = registry.get_payment_gateway()
    if gateway is None:
        raise ValidationError("unknown_method", _("No payment gateway is installed."), {"method": GATEWAY})
    try:
        result = gateway.charge(amount_q=amount_q, currency=bill.currency, reference=bill.ref, idempotency_key=f"bill:{bill.ref}:{key}")
    except OmnimanError as exc:
        if exc.code == "gateway_unavailable":
            raise BillError("gateway_unavailable", context={"bill_ref": bill.ref}) from exc
        raise
    except Exception as exc:  # a gateway that cannot be reached: the caller retries later
        raise BillError("gateway_unavailable", context={"bill_ref": bill.ref}) from exc
    if result.declined:
        raise ValidationError("payment_declined", result.message or "", {"error_code": result.error_code, "bill_ref": bill.ref})
    return result.transaction_id[:128]


def _gateway_refund(payment: Payment, amount_q: int, key: str) -> str:
    gateway = registry.get_payment_gateway()
    if gateway is None:
        raise BillError("gateway_unavailable", _("No payment gateway is installed."), {"payment_id": payment.pk})
    try:
        result = gateway.refund(transaction_id=payment.reference, amount_q=amount_q, idempotency_key=f"refund:{key}")
    except Exception as exc:
        raise BillError("gateway_unavailable", context={"payment_id": payment.pk}) from exc
    if result.declined:
        raise ValidationError("payment_declined", result.message or "", {"error_code": result.error_code})
    return result.transaction_id[:128]


# -- selectors ---------------------------------------------------------------------


@dataclass(frozen=True)
class BillView:
    """A bill to show (the POS bill screen, the receipt, the API): read in a fixed number of queries."""

    bill: Bill
    orders: list[Order]
    lines: list[dict[str, Any]]  # order_ref, line_id (the order's), sku, name, qty, unit_price_q, line_total_q, voided_qty
    adjustments: list[dict[str, Any]]
    payments: list[Payment]
    refunds: list[Refund]
    splits: list[dict[str, Any]]
    total_q: int
    paid_q: int
    due_q: int
    tips_q: int
    change_q: int
    refunded_q: int
    rev: int

    @property
    def ref(self) -> str:
        return self.bill.ref


def bill_view(bill_ref: str) -> BillView:
    """The bill, its orders, lines, adjustments, payments, refunds and split plan (5 queries, whatever their number)."""
    bill = find_bill(bill_ref)
    orders = _bill_orders(bill)
    lines = bill_lines(orders)
    voided = _voided_by_line(bill.adjustments or [])
    for line in lines:
        line["voided_qty"] = voided.get(line["line_id"], (Decimal(0), 0))[0]
        line["bill_line_id"] = line["line_id"]
        line["line_id"] = line.pop("order_line_id")
    payments = list(Payment.objects.filter(bill=bill).order_by("created_at", "id"))
    refunds = list(Refund.objects.filter(payment__bill=bill).order_by("created_at", "id"))
    paid = sum(p.amount_q for p in payments)
    return BillView(
        bill=bill, orders=orders, lines=lines, adjustments=list(bill.adjustments or []), payments=payments, refunds=refunds,
        splits=list(bill.splits or []), total_q=bill.total_q, paid_q=paid, due_q=max(bill.total_q - paid, 0),
        tips_q=sum(p.tip_q for p in payments), change_q=sum(p.change_q for p in payments),
        refunded_q=sum(r.amount_q for r in refunds), rev=bill.rev,
    )


def day_totals(day: date_type | None = None, channel: Channel | str | None = None) -> dict[str, Any]:
    """The day's money (local ``day``, default today; one channel or all): ``sales_summary`` over that one day.

    ``sales_q`` — the totals of the bills closed (settled or written off) that day, minus the refunds made that
    day: what the business sold. ``payments_q`` — what those bills' payments put on them (``amount_q``; tips apart),
    so ``sales_q == payments_q - refunds_q`` for a day whose refunds are of its own bills.
    ``discounts_q`` (taken off, ≥ 0, bill-level and order-level), ``service_q``, ``tips_q``, ``change_q``,
    ``refunds_q``, ``written_off_q``, ``by_method`` (``{method: {"count", "amount_q", "tip_q"}}``),
    ``bills`` (count closed), ``open_bills``, ``open_paid_q`` (paid on bills still open), and ``by_channel``
    (``{code: {"bills", "sales_q", "payments_q", "tips_q", "refunds_q"}}``, the same figures per channel).
    The one computation is ``omniman.services.reports.sales_summary`` (the reports read it too).
    """
    day = day or timezone.localdate()
    code = (channel if isinstance(channel, str) else channel.code) if channel is not None else ""
    totals = sales_summary(Period(day, day, channel=code))
    for key in ("start", "end", "register", "orders", "orders_q", "bill_adjustments_q", "average_q"):
        totals.pop(key)
    return {"date": day.isoformat(), **totals, "channel": code or None}
