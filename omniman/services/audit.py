"""The manager's audit trail of sensitive actions (issue #18): a read over the append-only rows the services write.

Nothing new is recorded here. Each kind of action is read from where its
service wrote it, once, in the period:

* ``price_override`` — ``OrderEvent("price.overridden")`` (a line sold at another price than the catalog's);
* ``discount`` — ``adjustment.applied`` of kind ``discount``: on the bill (``BillEvent``) or committed with
  the order (``OrderEvent``); ``over_threshold`` when it needed a manager (over the channel's
  ``discounts.approval_over_percent``, or approved by one);
* ``void`` — ``OrderEvent("item_voided")`` (what the kitchen board shows as VOID);
* ``cancellation`` — an order moved to its flow's cancel status (``OrderEvent("status_changed")``);
* ``refund`` — ``Refund`` rows;
* ``write_off`` — ``BillEvent("bill.written_off")``;
* ``drawer_difference`` — a ``Shift`` closed in the period with a difference (counted ≠ expected): who
  closed it, who accepted the difference (over the register's threshold), the reason;
* ``cash_out`` — ``CashMovement`` rows of kind ``out`` (cash taken out of a drawer, with its reason).

One query per kind, whatever the number of rows (the amounts and reasons are
in the rows' payloads); ``actor`` and ``query`` are matched in Python on
the rows of the period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from omniman.channel_config import discount_approval_percent
from omniman.exceptions import ValidationError
from omniman.models import BillEvent, CashMovement, Channel, OrderEvent, Refund, Shift

PRICE_OVERRIDE = "price_override"
DISCOUNT = "discount"
VOID = "void"
CANCELLATION = "cancellation"
REFUND = "refund"
WRITE_OFF = "write_off"
DRAWER_DIFFERENCE = "drawer_difference"
CASH_OUT = "cash_out"
AUDIT_KINDS = {
    PRICE_OVERRIDE: _("Price override"),
    DISCOUNT: _("Discount"),
    VOID: _("Void"),
    CANCELLATION: _("Cancellation"),
    REFUND: _("Refund"),
    WRITE_OFF: _("Write-off"),
    DRAWER_DIFFERENCE: _("Drawer difference"),
    CASH_OUT: _("Cash out"),
}
MAX_PERIOD_DAYS = 366
MAX_QUERY_LENGTH = 100


@dataclass(frozen=True)
class AuditEntry:
    """One sensitive action: what, when, who (and who approved), why, how much, on which order or bill."""

    kind: str
    at: datetime
    actor: str
    approver: str
    reason: str
    amount_q: int  # the money it moved, ≥ 0 (0 when the row does not say)
    currency: str
    order_ref: str
    bill_ref: str
    channel: str
    detail: str  # a short description: the line's SKU, the percent, the prices
    over_threshold: bool = False
    shift_id: int | None = None  # the drawer's shift (``drawer_difference``, ``cash_out``)

    @property
    def kind_label(self) -> str:
        return str(AUDIT_KINDS.get(self.kind, self.kind))

    def matches(self, text: str) -> bool:
        haystack = " ".join((self.actor, self.approver, self.reason, self.order_ref, self.bill_ref, self.detail, self.channel,
                             f"#{self.shift_id}" if self.shift_id else ""))
        return text in haystack.casefold()


def period_bounds(period: tuple[date, date]) -> tuple[datetime, datetime]:
    """The local days ``period`` (first, last; inclusive) as ``[start, end)``; ``invalid_period`` when backwards or too long."""
    try:
        first, last = period
    except (TypeError, ValueError):
        raise ValidationError("invalid_period", _("Give the first and the last day."), {"field": "period"}) from None
    if not isinstance(first, date) or not isinstance(last, date):
        raise ValidationError("invalid_period", _("Give the first and the last day."), {"field": "period"})
    if last < first or (last - first).days >= MAX_PERIOD_DAYS:
        raise ValidationError(
            "invalid_period",
            _("The period runs from its first day to its last, at most %(days)s days.") % {"days": MAX_PERIOD_DAYS},
            {"field": "period", "first": first.isoformat(), "last": last.isoformat()},
        )
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(first, time.min), zone)
    return start, timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), zone)


def audit_entries(
    period: tuple[date, date],
    *,
    kinds: Iterable[str] | None = None,
    actor: str = "",
    query: str = "",
) -> list[AuditEntry]:
    """The sensitive actions of ``period`` (local days, inclusive), newest first.

    ``kinds``: some of ``AUDIT_KINDS`` (default all); ``actor``: who did or approved it (exact, case-insensitive);
    ``query``: text found in the actor, approver, reason, order or bill ref, channel, detail or ``#<shift id>``
    (case-insensitive).
    At most one query per kind, whatever the number of rows. Errors: ``invalid_period``, ``invalid_field``
    (an unknown kind, a query longer than 100 characters).
    """
    start, end = period_bounds(period)
    wanted = list(AUDIT_KINDS) if kinds is None else list(dict.fromkeys(str(k) for k in kinds))
    unknown = [k for k in wanted if k not in AUDIT_KINDS]
    if unknown:
        raise ValidationError("invalid_field", _("Unknown kind: %(kinds)s.") % {"kinds": ", ".join(unknown)},
                              {"field": "kinds", "unknown": unknown, "kinds": list(AUDIT_KINDS)})
    query = str(query or "").strip()
    if len(query) > MAX_QUERY_LENGTH:
        raise ValidationError("invalid_field", _("The search is too long."), {"field": "query"})
    entries: list[AuditEntry] = []
    order_event_types = {
        PRICE_OVERRIDE: "price.overridden", VOID: "item_voided", DISCOUNT: "adjustment.applied", CANCELLATION: "status_changed",
    }
    wanted_order_types = [order_event_types[k] for k in wanted if k in order_event_types]
    if wanted_order_types:
        entries += _from_order_events(start, end, wanted_order_types)
    bill_types = [t for k, t in ((DISCOUNT, "adjustment.applied"), (WRITE_OFF, "bill.written_off")) if k in wanted]
    if bill_types:
        entries += _from_bill_events(start, end, bill_types)
    if REFUND in wanted:
        entries += _refunds(start, end)
    if DRAWER_DIFFERENCE in wanted:
        entries += _drawer_differences(start, end)
    if CASH_OUT in wanted:
        entries += _cash_outs(start, end)
    who = str(actor or "").strip().casefold()
    if who:
        entries = [e for e in entries if who in (e.actor.casefold(), e.approver.casefold())]
    if query:
        text = query.casefold()
        entries = [e for e in entries if e.matches(text)]
    entries.sort(key=lambda e: (e.at, e.kind, e.order_ref), reverse=True)
    return entries


def _amount(value: Any) -> int:
    try:
        return abs(int(value or 0))
    except (TypeError, ValueError):
        return 0


def _over(adjustment: dict[str, Any], threshold: Decimal) -> bool:
    if adjustment.get("approved_by"):
        return True
    try:
        return Decimal(str(adjustment.get("percent"))) > threshold
    except (InvalidOperation, ValueError):
        return False


def _thresholds() -> dict[int, Decimal]:
    return {pk: discount_approval_percent(config) for pk, config in Channel.objects.values_list("pk", "config")}


def _from_order_events(start, end, types: list[str]) -> list[AuditEntry]:
    channels = {c.pk: c for c in Channel.objects.all()}
    # Only the rows that are sensitive: discounts among the adjustments, the cancel status among the moves.
    match = Q(type__in=[t for t in types if t not in ("adjustment.applied", "status_changed")])
    if "adjustment.applied" in types:
        match |= Q(type="adjustment.applied", payload__kind="discount")
    if "status_changed" in types:
        cancels = sorted({c.order_flow.cancel_status for c in channels.values()} - {"", None})
        match |= Q(type="status_changed", payload__to__in=cancels)
    rows = (
        OrderEvent.objects.filter(match, created_at__gte=start, created_at__lt=end)
        .select_related("order__bill")
        .order_by()
    )
    thresholds = {pk: discount_approval_percent(c.config) for pk, c in channels.items()}
    entries = []
    for event in rows:
        order, payload = event.order, event.payload or {}
        channel = channels[order.channel_id]
        common = {
            "at": event.created_at, "currency": order.currency, "order_ref": order.ref,
            "bill_ref": order.bill.ref if order.bill_id else "", "channel": channel.code,
        }
        if event.type == "price.overridden":
            sku = payload.get("sku") or ""
            before, after = _amount(payload.get("from")), _amount(payload.get("to"))
            entries.append(AuditEntry(
                kind=PRICE_OVERRIDE, actor=event.actor, approver="", reason=str(payload.get("reason") or ""),
                amount_q=abs(before - after), detail=f"{sku} {before} → {after}", **common,
            ))
        elif event.type == "item_voided":
            entries.append(AuditEntry(
                kind=VOID, actor=event.actor, approver=str(payload.get("approved_by") or ""), reason=str(payload.get("reason") or ""),
                amount_q=_amount(payload.get("amount_q")), detail=f"{payload.get('qty') or ''} × {payload.get('sku') or payload.get('line_id') or ''}".strip(),
                **common,
            ))
        elif event.type == "adjustment.applied":
            if payload.get("kind") != "discount":
                continue
            entries.append(AuditEntry(
                kind=DISCOUNT, actor=event.actor, approver=str(payload.get("approved_by") or ""), reason=str(payload.get("reason") or ""),
                amount_q=_amount(payload.get("amount_q")), detail=_discount_detail(payload),
                over_threshold=_over(payload, thresholds.get(channel.pk, Decimal(10))), **common,
            ))
        elif event.type == "status_changed":
            if payload.get("to") != channel.order_flow.cancel_status:
                continue  # another channel's cancel status
            entries.append(AuditEntry(
                kind=CANCELLATION, actor=event.actor, approver="", reason=str(payload.get("reason") or ""),
                amount_q=int(order.total_q), detail=f"{payload.get('from') or ''} → {payload.get('to') or ''}", **common,
            ))
    return entries


def _discount_detail(adjustment: dict[str, Any]) -> str:
    percent = adjustment.get("percent")
    where = adjustment.get("line_id") or ""
    text = f"{percent} %" if percent not in (None, "") else ""
    return f"{text} {where}".strip()


def _from_bill_events(start, end, types: list[str]) -> list[AuditEntry]:
    match = Q(type__in=[t for t in types if t != "adjustment.applied"])
    if "adjustment.applied" in types:
        match |= Q(type="adjustment.applied", payload__adjustment__kind="discount")
    rows = (
        BillEvent.objects.filter(match, created_at__gte=start, created_at__lt=end)
        .select_related("bill__channel")
        .order_by()
    )
    thresholds = _thresholds()
    entries = []
    for event in rows:
        bill, payload = event.bill, event.payload or {}
        common = {"at": event.created_at, "currency": bill.currency, "order_ref": "", "bill_ref": bill.ref, "channel": bill.channel.code}
        if event.type == "adjustment.applied":
            adjustment = payload.get("adjustment") or {}
            if adjustment.get("kind") != "discount":
                continue
            entries.append(AuditEntry(
                kind=DISCOUNT, actor=event.actor, approver=str(adjustment.get("approved_by") or ""),
                reason=str(adjustment.get("reason") or ""), amount_q=_amount(adjustment.get("amount_q")),
                detail=_discount_detail(adjustment), over_threshold=_over(adjustment, thresholds.get(bill.channel_id, Decimal(10))),
                **common,
            ))
        else:
            adjustment = payload.get("adjustment") or {}
            entries.append(AuditEntry(
                kind=WRITE_OFF, actor=event.actor, approver="", reason=str(adjustment.get("reason") or bill.note or ""),
                amount_q=_amount(payload.get("amount_q")), detail="", **common,
            ))
    return entries


def _refunds(start, end) -> list[AuditEntry]:
    rows = (
        Refund.objects.filter(created_at__gte=start, created_at__lt=end)
        .select_related("payment__bill__channel")
        .order_by()
    )
    return [
        AuditEntry(
            kind=REFUND, at=refund.created_at, actor=refund.actor, approver="", reason=refund.reason,
            amount_q=int(refund.amount_q), currency=refund.payment.currency, order_ref="", bill_ref=refund.payment.bill.ref,
            channel=refund.payment.bill.channel.code, detail=f"{refund.payment.method} #{refund.payment_id}",
        )
        for refund in rows
    ]


def _drawer_differences(start, end) -> list[AuditEntry]:
    rows = (
        Shift.objects.filter(status=Shift.Status.CLOSED, closed_at__gte=start, closed_at__lt=end)
        .exclude(difference_q=0)
        .exclude(difference_q__isnull=True)
        .select_related("register")
        .order_by()
    )
    entries = []
    for shift in rows:
        difference = int(shift.difference_q)
        entries.append(AuditEntry(
            kind=DRAWER_DIFFERENCE, at=shift.closed_at, actor=shift.closed_by, approver=shift.difference_approved_by,
            reason=shift.difference_reason, amount_q=abs(difference), currency=shift.currency, order_ref="", bill_ref="",
            channel="", detail=f"{shift.register.code}: {'+' if difference > 0 else '−'}{abs(difference)} "
                               f"({shift.expected_cash_q} → {shift.counted_q})",
            over_threshold=bool(shift.difference_approved_by), shift_id=shift.pk,
        ))
    return entries


def _cash_outs(start, end) -> list[AuditEntry]:
    rows = (
        CashMovement.objects.filter(kind=CashMovement.Kind.OUT, created_at__gte=start, created_at__lt=end)
        .select_related("shift__register")
        .order_by()
    )
    return [
        AuditEntry(
            kind=CASH_OUT, at=movement.created_at, actor=movement.actor, approver="", reason=movement.reason,
            amount_q=int(movement.amount_q), currency=movement.shift.currency, order_ref="", bill_ref="", channel="",
            detail=movement.shift.register.code, shift_id=movement.shift_id,
        )
        for movement in rows
    ]
