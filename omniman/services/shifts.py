"""Shifts and cash control (issue #18): open a register's drawer with a float, move cash in and out, close it, the Z-report.

A register has at most one open shift (the partial unique constraint
``one_open_shift_per_register``: of two opens racing, one wins and the other
gets ``shift_already_open``). Every payment and refund is written into the
open shift of its register (:func:`shift_for_payment`, called by
``PaymentService.tender`` and ``refund`` under the bill's lock); with no
shift open one is opened on the spot with a zero float (``auto_opened``), so
a payment is always in a shift.

Lock order: a bill, then a shift. ``close`` and the cash movements lock the
shift's row; a tender on that register waits for the close and then finds
the shift closed (and opens another), so nothing is written into a closed
shift.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman import conf
from omniman.approvals import check_approval
from omniman.exceptions import ApprovalError, IdempotencyError, ShiftError, ValidationError
from omniman.models import MAIN_REGISTER, Bill, CashMovement, Channel, Directive, Payment, Refund, Register, Shift, ShiftEvent
from omniman.roles import MANAGER
from omniman.services._common import parse_expected_rev
from omniman.services.reports import adjustment_figures

logger = logging.getLogger("omniman.services")

# ShiftEvent types.
SHIFT_OPENED = "opened"
CASH_IN = "cash_in"
CASH_OUT = "cash_out"
SHIFT_CLOSED = "closed"
DIFFERENCE_APPROVED = "difference_approved"
Z_REPORT_EMAILED = "z_report_emailed"  # the Z-report email was handed to the mail backend (recorded before: see below)
Z_REPORT_EMAIL_FAILED = "z_report_email_failed"  # the mail backend refused it: a new directive sends it again

# The directive that emails the Z-report to the managers when a shift closes.
Z_REPORT_TOPIC = "shift.z_report"

CASH = "cash"
DEFAULT_DIFFERENCE_THRESHOLD_Q = 500
DEFAULT_DENOMINATIONS = (20000, 10000, 5000, 2000, 1000, 500, 200, 100, 50, 25, 10, 5)


# -- helpers ---------------------------------------------------------------------


def difference_threshold_q(register: Register) -> int:
    """The largest drawer difference (absolute, in cents) a cashier may close with alone:
    ``register.config["difference_threshold_q"]``, else ``OMNIMAN["SHIFT_DIFFERENCE_THRESHOLD_Q"]``, else 500."""
    value = (register.config or {}).get("difference_threshold_q")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        value = conf.get("SHIFT_DIFFERENCE_THRESHOLD_Q", DEFAULT_DIFFERENCE_THRESHOLD_Q)
    return int(value)


def denominations(register: Register) -> list[int]:
    """The notes and coins (in cents, largest first) the register's count form offers: ``config["denominations"]``."""
    values = (register.config or {}).get("denominations")
    if isinstance(values, list) and values and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        return sorted(set(values), reverse=True)
    return list(DEFAULT_DENOMINATIONS)


def _amount(value: Any, field_name: str, *, allow_zero: bool) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or (value == 0 and not allow_zero):
        raise ValidationError(
            "invalid_amount",
            _("%(field)s must be a positive whole number of cents.") % {"field": field_name},
            {"field": field_name, "value": value if isinstance(value, int | str | float | type(None)) else str(value)},
        )
    return value


def parse_count(count: Any, field_name: str) -> tuple[dict[str, int], int]:
    """A drawer count ``{"<denomination in cents>": how many}``: the cleaned count (zeros dropped) and its total.
    ``invalid_count`` for anything else (a denomination that is not a positive whole number, a negative count)."""
    if not isinstance(count, dict):
        raise ValidationError("invalid_count", context={"field": field_name})
    cleaned: dict[str, int] = {}
    total = 0
    for key, how_many in count.items():
        try:
            denomination = int(str(key).strip())
        except ValueError:
            denomination = 0
        if denomination <= 0 or isinstance(how_many, bool) or not isinstance(how_many, int) or how_many < 0:
            raise ValidationError("invalid_count", context={"field": field_name, "denomination": str(key)[:20]})
        if how_many:
            cleaned[str(denomination)] = cleaned.get(str(denomination), 0) + how_many
            total += denomination * how_many
    if total > 10**13:
        raise ValidationError("invalid_count", context={"field": field_name})
    return cleaned, total


def _cash(amount_q: Any, count: Any, *, amount_field: str, count_field: str) -> tuple[int, dict[str, int]]:
    """A drawer amount typed as a total (``amount_q``) or counted by denomination (``count``; its total wins)."""
    if count not in (None, "", {}):
        cleaned, total = parse_count(count, count_field)
        if amount_q not in (None, "") and amount_q != total:
            raise ValidationError(
                "invalid_count", _("The count adds up to %(total)d, not %(amount)s.") % {"total": total, "amount": amount_q},
                {"field": amount_field, "count_total_q": total},
            )
        return total, cleaned
    if amount_q in (None, ""):
        raise ValidationError("missing_field", _("Type the total or count by denomination."), {"field": amount_field})
    return _amount(amount_q, amount_field, allow_zero=True), {}


def _reason(reason: Any) -> str:
    text = str(reason or "").strip()
    if not text:
        raise ValidationError("reason_required", _("A reason is required."), {"field": "reason"})
    return text[:255]


def _key(idempotency_key: Any, *, required: bool) -> str:
    key = str(idempotency_key or "").strip()
    if not key and required:
        raise ValidationError("missing_idempotency_key", context={"field": "idempotency_key"})
    if len(key) > 255:
        raise ValidationError("invalid_field", _("The idempotency key is too long."), {"field": "idempotency_key"})
    return key


def find_register(code: Any) -> Register:
    """The active register ``code``: ``register_not_found`` (404) if there is none. The register ``main`` is
    created again if it was deleted (a payment must always find a shift)."""
    if code == MAIN_REGISTER:
        Register.objects.get_or_create(code=MAIN_REGISTER, defaults={"name": "Main"})
    register = Register.objects.filter(code=str(code or ""), is_active=True).first()
    if register is None:
        raise ShiftError("register_not_found", _("No register %(code)s.") % {"code": repr(code)}, {"register": str(code or "")[:64]})
    return register


def find_shift(shift_id: Any, *, lock: bool = False) -> Shift:
    """The shift ``shift_id`` with its register (row-locked with ``lock``): ``shift_not_found`` (404) if there is none."""
    try:
        pk = int(shift_id)
    except (TypeError, ValueError):
        pk = 0
    rows = Shift.objects.select_related("register")
    if lock:
        rows = rows.select_for_update(of=("self",))
    shift = rows.filter(pk=pk).first() if pk > 0 else None
    if shift is None:
        raise ShiftError("shift_not_found", _("No shift %(id)s.") % {"id": repr(shift_id)}, {"shift_id": shift_id})
    return shift


def _require_open(shift: Shift) -> None:
    if not shift.is_open:
        raise ShiftError("shift_closed", _("This shift is already closed."), {"shift": shift.summary()})


def _require_rev(shift: Shift, expected_rev: Any) -> None:
    expected = parse_expected_rev(expected_rev)
    if expected is None:
        return
    if expected != shift.rev:
        raise ShiftError(
            "stale_shift",
            _("The shift changed since you loaded it (revision %(rev)d, not %(expected)d).") % {"rev": shift.rev, "expected": expected},
            {"expected_rev": expected, "shift": shift.summary()},
        )


def _event(shift: Shift, type_: str, *, actor: str, reason: str = "", **payload: Any) -> ShiftEvent:
    return ShiftEvent.objects.create(shift=shift, type=type_, actor=actor, reason=reason, payload=payload)


def _insert_open_shift(register: Register, *, opening_float_q: int, opening_count: dict[str, int], actor: str,
                       auto_opened: bool, reason: str = "", idempotency_key: str = "") -> Shift | None:
    """Insert the register's open shift and its ``opened`` event; ``None`` if another one is open (the constraint)."""
    try:
        with transaction.atomic():
            shift = Shift.objects.create(
                register=register, currency=conf.get("DEFAULT_CURRENCY"), opening_float_q=opening_float_q,
                opening_count=opening_count, opened_by=actor, auto_opened=auto_opened,
            )
    except IntegrityError:
        return None
    _event(shift, SHIFT_OPENED, actor=actor, reason=reason, opening_float_q=opening_float_q, opening_count=opening_count,
           auto_opened=auto_opened, register=register.code, idempotency_key=idempotency_key)
    logger.info("shift opened", extra={"register": register.code, "shift_id": shift.pk, "actor": actor, "auto": auto_opened})
    return shift


def _open_shift_of(register: Register, *, lock: bool) -> Shift | None:
    rows = Shift.objects.select_related("register").filter(register=register, status=Shift.Status.OPEN)
    if lock:
        rows = rows.select_for_update(of=("self",))
    return rows.first()


def register_code_for(channel: Channel | None, register: str = "") -> str:
    """Which register a payment goes to: ``register``, else ``channel.config["register"]``, else ``"main"``."""
    if register:
        return str(register)
    configured = ((channel.config or {}) if channel is not None else {}).get("register")
    return str(configured) if isinstance(configured, str) and configured else MAIN_REGISTER


def shift_for_payment(channel: Channel | None, *, register: str = "", actor: str = "system") -> Shift:
    """The open shift a payment or refund goes into, row-locked: the resolved register's
    (:func:`register_code_for`), opened automatically with a zero float when it has none
    (``auto_opened``; its ``opened`` event says so). ``register_not_found`` for an unknown or inactive register
    (the register ``main`` is created if it was deleted). Call inside the caller's transaction."""
    target = find_register(register_code_for(channel, register))
    for _attempt in range(3):
        shift = _open_shift_of(target, lock=True)
        if shift is not None:
            return shift
        shift = _insert_open_shift(target, opening_float_q=0, opening_count={}, actor=actor, auto_opened=True,
                                   reason=_("Opened automatically by a payment"))
        if shift is not None:
            return Shift.objects.select_related("register").select_for_update(of=("self",)).get(pk=shift.pk)
    raise ShiftError("shift_already_open", context={"register": target.code})  # pragma: no cover - a close/open storm


# -- the use cases ---------------------------------------------------------------


class ShiftService:
    @staticmethod
    @transaction.atomic
    def open(
        register: str,
        *,
        opening_float_q: Any = None,
        opening_count: Any = None,
        actor: str = "system",
        idempotency_key: str = "",
    ) -> Shift:
        """Open ``register``'s drawer with a float: counted by denomination (``opening_count``
        ``{"<cents>": count}``; the float is its total) or typed as a total (``opening_float_q``).
        The same ``idempotency_key`` (optional) returns the shift it opened (``shift.idempotent``).

        Errors: ``register_not_found`` (404), ``missing_field`` / ``invalid_amount`` / ``invalid_count`` (400),
        ``shift_already_open`` (409: the register has an open shift; context ``shift_id``).
        """
        key = _key(idempotency_key, required=False)
        target = find_register(register)
        if key:
            replay = ShiftEvent.objects.filter(type=SHIFT_OPENED, shift__register=target, payload__idempotency_key=key).first()
            if replay is not None:
                shift = Shift.objects.select_related("register").get(pk=replay.shift_id)
                shift.idempotent = True
                return shift
        float_q, count = _cash(opening_float_q, opening_count, amount_field="opening_float_q", count_field="opening_count")
        shift = _insert_open_shift(target, opening_float_q=float_q, opening_count=count, actor=actor, auto_opened=False,
                                   idempotency_key=key)
        if shift is None:
            current = _open_shift_of(target, lock=False)
            raise ShiftError(
                "shift_already_open",
                _("Register %(register)s already has an open shift.") % {"register": target.name or target.code},
                {"register": target.code, "shift_id": current.pk if current else None},
            )
        shift.idempotent = False
        return shift

    @staticmethod
    def cash_in(shift_id: Any, *, amount_q: Any, reason: str = "", actor: str = "system", idempotency_key: str) -> CashMovement:
        """Put cash into the drawer (change brought from the safe…) with a reason. See :meth:`cash_out`."""
        return _move(shift_id, CashMovement.Kind.IN, amount_q=amount_q, reason=reason, actor=actor, idempotency_key=idempotency_key)

    @staticmethod
    def cash_out(shift_id: Any, *, amount_q: Any, reason: str = "", actor: str = "system", idempotency_key: str) -> CashMovement:
        """Take cash out of the drawer (a bank drop, a supplier paid, tips paid out) with a reason.

        Idempotent by key (the returned movement has ``idempotent``). Errors: ``missing_idempotency_key``,
        ``shift_not_found`` (404), ``shift_closed`` (409), ``reason_required``, ``invalid_amount`` (400),
        ``conflict`` (409: the key moved other cash).
        """
        return _move(shift_id, CashMovement.Kind.OUT, amount_q=amount_q, reason=reason, actor=actor, idempotency_key=idempotency_key)

    @staticmethod
    @transaction.atomic
    def close(
        shift_id: Any,
        *,
        counted_q: Any = None,
        closing_count: Any = None,
        expected_rev: Any = None,
        actor: str = "system",
        roles: Iterable[str] | None = None,
        approved_by: str = "",
        approver_roles: Iterable[str] | None = None,
        reason: str = "",
    ) -> Shift:
        """Close the shift with the drawer counted (``counted_q`` or ``closing_count`` by denomination).

        Stores the expected cash (:func:`z_report`'s ``cash.expected_q``), the count and the difference
        (counted − expected). A difference whose absolute value is over the register's threshold
        (:func:`difference_threshold_q`) needs a manager: ``roles`` has ``manager`` (``None`` is the system),
        or ``approved_by`` with ``approver_roles`` (a PIN verified by ``omniman.approvals.verify_pin``);
        then the ``difference_approved`` event records who. Queues the Z-report email (``shift.z_report``).
        Bills still open are allowed (a tab may outlive the shift; their payments so far are in it): the
        Z-report counts them apart (``open_bills``).

        Errors: ``shift_not_found`` (404), ``shift_closed`` / ``stale_shift`` (409), ``missing_field`` /
        ``invalid_amount`` / ``invalid_count`` (400), ``difference_needs_approval`` (403; context
        ``expected_q``, ``counted_q``, ``difference_q``, ``threshold_q``). Nothing is written on an error.
        """
        shift = find_shift(shift_id, lock=True)
        _require_open(shift)
        _require_rev(shift, expected_rev)
        counted, count = _cash(counted_q, closing_count, amount_field="counted_q", count_field="closing_count")
        text = str(reason or "").strip()[:255]
        summary = _cash_summary(shift)
        expected = summary["expected_q"]
        difference = counted - expected
        threshold = difference_threshold_q(shift.register)
        approver = ""
        if roles is not None and abs(difference) > threshold:
            try:
                approver = check_approval(Decimal(abs(difference)), Decimal(threshold), roles=roles,
                                          approved_by=str(approved_by or ""), approver_roles=approver_roles)
            except ApprovalError as exc:
                raise ApprovalError(
                    "difference_needs_approval",
                    _("The drawer is off by more than the threshold: a manager must accept the difference."),
                    {"expected_q": expected, "counted_q": counted, "difference_q": difference, "threshold_q": threshold,
                     "shift_id": shift.pk},
                ) from exc
            approver = approver or actor
        elif roles is None and abs(difference) > threshold:
            approver = str(approved_by or "") or actor
        now = timezone.now()
        shift.status = Shift.Status.CLOSED
        shift.closed_by = actor
        shift.closed_at = now
        shift.counted_q = counted
        shift.closing_count = count
        shift.expected_cash_q = expected
        shift.difference_q = difference
        shift.difference_approved_by = approver
        shift.difference_reason = text
        shift.rev += 1
        shift.save()
        _event(shift, SHIFT_CLOSED, actor=actor, reason=text, counted_q=counted, closing_count=count, expected_q=expected,
               difference_q=difference, threshold_q=threshold)
        if approver:
            _event(shift, DIFFERENCE_APPROVED, actor=approver, reason=text, difference_q=difference, threshold_q=threshold,
                   closed_by=actor)
        Directive.objects.enqueue(Z_REPORT_TOPIC, {"shift_id": shift.pk}, dedupe_key=f"{Z_REPORT_TOPIC}:{shift.pk}")
        logger.info("shift closed", extra={"register": shift.register.code, "shift_id": shift.pk, "actor": actor,
                                           "difference_q": difference})
        return shift


@transaction.atomic
def _move(shift_id: Any, kind: str, *, amount_q: Any, reason: str, actor: str, idempotency_key: str) -> CashMovement:
    key = _key(idempotency_key, required=True)
    shift = find_shift(shift_id, lock=True)
    replay = CashMovement.objects.filter(idempotency_key=key).first()
    if replay is not None:
        if replay.shift_id != shift.pk or replay.kind != kind or amount_q != replay.amount_q:
            raise IdempotencyError("conflict", _("This idempotency key moved other cash."),
                                   {"idempotency_key": key, "cash_movement_id": replay.pk})
        replay.idempotent = True
        return replay
    _require_open(shift)
    amount = _amount(amount_q, "amount_q", allow_zero=False)
    text = _reason(reason)
    movement = CashMovement.objects.create(shift=shift, kind=kind, amount_q=amount, reason=text, actor=actor, idempotency_key=key)
    shift.rev += 1
    shift.save(update_fields=["rev"])
    _event(shift, CASH_IN if kind == CashMovement.Kind.IN else CASH_OUT, actor=actor, reason=text, amount_q=amount,
           cash_movement_id=movement.pk)
    movement.idempotent = False
    return movement


# -- selectors --------------------------------------------------------------------


def current_shift(register: str) -> Shift | None:
    """The register's open shift (with its register), or ``None``. ``register_not_found`` for an unknown register."""
    return _open_shift_of(find_register(register), lock=False)


def registers() -> list[Register]:
    """The active registers, by code, each with ``open_shift`` (its open shift or ``None``): 2 queries."""
    rows = list(Register.objects.filter(is_active=True).order_by("code"))
    open_shifts = {shift.register_id: shift for shift in Shift.objects.filter(status=Shift.Status.OPEN, register__in=rows)}
    for row in rows:
        row.open_shift = open_shifts.get(row.pk)
    return rows


def shift_screen(register: str) -> dict[str, Any]:
    """What the POS shift screen shows for ``register`` (the device's): the active registers, the register, its open
    shift with its X-report and cash movements (or ``None``), and its last closed shift. ``register_not_found``."""
    target = find_register(register)
    shift = _open_shift_of(target, lock=False)
    last = Shift.objects.filter(register=target, status=Shift.Status.CLOSED).order_by("-closed_at", "-id").first()
    return {
        "registers": registers(),
        "register": target,
        "shift": shift,
        "report": z_report(shift.pk) if shift else None,
        "movements": list(CashMovement.objects.filter(shift=shift).order_by("created_at", "id")) if shift else [],
        "last_closed": last,
        "denominations": denominations(target),
        "threshold_q": difference_threshold_q(target),
    }


def shift_detail(shift_id: Any) -> Shift:
    """The shift with its register, cash movements and events (3 queries): ``shift_not_found``."""
    shift = find_shift(shift_id)
    shift.movements = list(CashMovement.objects.filter(shift=shift).order_by("created_at", "id"))
    shift.audit = list(ShiftEvent.objects.filter(shift=shift).order_by("created_at", "id"))
    return shift


def _cash_summary(shift: Shift) -> dict[str, int]:
    """The drawer's figures (3 queries): float, cash sales and tips, cash in/out, cash refunds, expected."""
    cash = Payment.objects.filter(shift=shift, method=CASH).aggregate(amount=Sum("amount_q"), tip=Sum("tip_q"))
    moves = CashMovement.objects.filter(shift=shift).aggregate(
        cash_in=Sum("amount_q", filter=Q(kind=CashMovement.Kind.IN)), cash_out=Sum("amount_q", filter=Q(kind=CashMovement.Kind.OUT))
    )
    refunds = Refund.objects.filter(shift=shift, payment__method=CASH).aggregate(total=Sum("amount_q"))
    summary = {
        "float_q": int(shift.opening_float_q),
        "cash_sales_q": int(cash["amount"] or 0),
        "cash_tips_q": int(cash["tip"] or 0),
        "cash_in_q": int(moves["cash_in"] or 0),
        "cash_out_q": int(moves["cash_out"] or 0),
        "cash_refunds_q": int(refunds["total"] or 0),
    }
    summary["expected_q"] = (summary["float_q"] + summary["cash_sales_q"] + summary["cash_tips_q"] + summary["cash_in_q"]
                             - summary["cash_out_q"] - summary["cash_refunds_q"])
    return summary


def shift_bills(shift: Shift):
    """The bills of a shift: closed (settled or written off) bills whose last payment is in the shift."""
    last_shift = Payment.objects.filter(bill=OuterRef("pk")).order_by("-created_at", "-id").values("shift_id")[:1]
    return Bill.objects.filter(status__in=(Bill.Status.SETTLED, Bill.Status.WRITTEN_OFF)).annotate(
        last_shift=Subquery(last_shift)
    ).filter(last_shift=shift.pk)


def z_report(shift_id: Any) -> dict[str, Any]:
    """The shift's Z-report (open or closed: an open one is an X-report) in a fixed number of queries (10).

    Definitions (docs/operator/manager.rst, "Shifts and the Z-report"):

    * ``by_method`` — the shift's payments (``Payment.shift``) by method: ``count``, ``amount_q``, ``tip_q``;
      ``payments_q`` / ``tips_q`` / ``change_q`` their sums.
    * ``refunds`` — the refunds made during the shift (``Refund.shift``), by the refunded payment's method.
    * ``bills`` — the bills the shift closed: settled or written-off bills whose last payment is in the shift
      (so a bill counts in exactly one shift). ``sales_q`` their totals, ``order_count`` their orders (not
      cancelled), ``average_ticket_q`` = ``sales_q`` // ``bills`` (0 without bills); ``discounts_q`` (bill and
      order discounts, positive), ``voids_q``, ``service_q``, ``written_off_q`` over those bills, by the sales
      summary's rule (``omniman.services.reports.adjustment_figures``: the orders' and the bills' service charge).
    * ``open_bills`` — bills still open with payments in the shift (``count``, ``paid_q`` in this shift).
    * ``cash`` — ``float_q``, ``cash_sales_q``, ``cash_tips_q``, ``cash_in_q``, ``cash_out_q``, ``cash_refunds_q``,
      ``expected_q`` (float + cash sales + cash tips + cash in − cash out − cash refunds), and once closed
      ``counted_q`` and ``difference_q`` (counted − expected).
    * No taxes: Omniman computes none, so the report has no tax figure.
    """
    shift = find_shift(shift_id)
    payments = Payment.objects.filter(shift=shift)
    by_method: dict[str, dict[str, int]] = {}
    for row in payments.values("method").annotate(count=Count("id"), amount=Sum("amount_q"), tip=Sum("tip_q"), change=Sum("change_q")).order_by("method"):
        by_method[row["method"]] = {"count": row["count"], "amount_q": int(row["amount"] or 0), "tip_q": int(row["tip"] or 0),
                                    "change_q": int(row["change"] or 0)}
    refunds_by_method: dict[str, dict[str, int]] = {}
    for row in Refund.objects.filter(shift=shift).values("payment__method").annotate(count=Count("id"), amount=Sum("amount_q")).order_by("payment__method"):
        refunds_by_method[row["payment__method"]] = {"count": row["count"], "amount_q": int(row["amount"] or 0)}
    bills = shift_bills(shift)
    closed = list(bills.values("id", "total_q", "adjustments", "status"))
    # The same rule as the sales summary's (one function): a bill-level service charge is service too.
    figures = adjustment_figures(closed, shift_bills(shift).values("pk"))
    discounts_q, voids_q, written_off_q, service_q = (figures[k] for k in ("discounts_q", "voids_q", "written_off_q", "service_q"))
    order_count = figures["orders"]
    open_rows = Payment.objects.filter(shift=shift, bill__status=Bill.Status.OPEN).aggregate(count=Count("bill_id", distinct=True),
                                                                                             paid=Sum("amount_q"))
    cash = _cash_summary(shift)
    sales_q = sum(int(row["total_q"]) for row in closed)
    report = {
        "shift_id": shift.pk,
        "register": shift.register.code,
        "register_name": shift.register.name,
        "status": shift.status,
        "currency": shift.currency,
        "opened_at": shift.opened_at.isoformat(),
        "opened_by": shift.opened_by,
        "auto_opened": shift.auto_opened,
        "closed_at": shift.closed_at.isoformat() if shift.closed_at else None,
        "closed_by": shift.closed_by,
        "by_method": by_method,
        "payments_q": sum(m["amount_q"] for m in by_method.values()),
        "tips_q": sum(m["tip_q"] for m in by_method.values()),
        "change_q": sum(m["change_q"] for m in by_method.values()),
        "refunds": refunds_by_method,
        "refunds_q": sum(m["amount_q"] for m in refunds_by_method.values()),
        "bills": len(closed),
        "order_count": order_count,
        "sales_q": sales_q,
        "average_ticket_q": sales_q // len(closed) if closed else 0,
        "discounts_q": discounts_q,
        "voids_q": voids_q,
        "service_q": service_q,
        "written_off_q": written_off_q,
        "open_bills": {"count": int(open_rows["count"] or 0), "paid_q": int(open_rows["paid"] or 0)},
        "cash": {
            **cash,
            "counted_q": shift.counted_q,
            "difference_q": shift.difference_q,
            "difference_approved_by": shift.difference_approved_by,
            "difference_reason": shift.difference_reason,
            "threshold_q": difference_threshold_q(shift.register),
        },
    }
    return report


# -- the Z-report email ------------------------------------------------------------


def manager_emails() -> list[str]:
    """The email addresses of the active users in the ``manager`` group (and superusers), sorted, without duplicates."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(Q(groups__name=MANAGER) | Q(is_superuser=True), is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


class ZReportEmailHandler:
    """``shift.z_report`` (payload ``{"shift_id"}``): email the closed shift's Z-report (text, with its PDF) to the
    managers — **once** per shift, however often the directive runs.

    Directives run at least once (a run can be fenced out, killed or rolled back after its handler returned), and an
    email cannot be taken back, so the mail is not sent inside the run: under the shift's row lock (two runs of one
    shift queue up) the handler looks for the shift's ``z_report_emailed`` event and returns if it is there; else it
    builds the mail (an error here rolls back and retries), writes that event and hands the mail to the backend
    **after the run commits** (``transaction.on_commit``). A run that does not commit sent nothing; a run that
    committed is seen by every later one. If the backend then refuses the mail, a ``z_report_email_failed`` event and a
    new ``shift.z_report`` directive (after the engine's backoff) send it again, up to ``DIRECTIVE_MAX_ATTEMPTS``
    times. What is left: a process that dies between the commit and the hand-off leaves the event without a mail
    (at most once, never twice)."""

    topic = Z_REPORT_TOPIC
    own_transaction = True

    def handle(self, *, message: Directive, ctx: dict[str, Any]) -> None:
        from django.core.mail import EmailMessage
        from django.core.mail.message import make_msgid

        from omniman.receipts import z_report_pdf, z_report_text

        shift = find_shift((message.payload or {}).get("shift_id"), lock=True)
        last = (ShiftEvent.objects.filter(shift=shift, type__in=(Z_REPORT_EMAILED, Z_REPORT_EMAIL_FAILED))
                .order_by("-created_at", "-id").values_list("type", flat=True).first())
        if last == Z_REPORT_EMAILED:
            return  # sent (or handed over) already: a redelivery or a second directive is a no-op
        report = z_report(shift.pk)
        recipients = manager_emails()
        if not recipients:
            return
        subject = _("Z-report: %(register)s, shift %(shift)s") % {"register": report["register_name"] or report["register"],
                                                                  "shift": report["shift_id"]}
        # One Message-ID per shift: a mail system that sees the same message twice can tell.
        message_id = make_msgid(f"z-report-{shift.pk}")
        email = EmailMessage(subject=subject, body=z_report_text(report), to=recipients, headers={"Message-ID": message_id})
        email.attach(f"z-report-{report['shift_id']}.pdf", z_report_pdf(report), "application/pdf")
        _event(shift, Z_REPORT_EMAILED, actor=ctx.get("actor") or f"directive:{Z_REPORT_TOPIC}", recipients=recipients,
               message_id=message_id, directive_id=message.pk)
        transaction.on_commit(lambda: _send_z_report(shift, email))


def _send_z_report(shift: Shift, email) -> None:
    """Hand the recorded Z-report mail to the backend (after the run committed); a refusal is recorded and retried."""
    try:
        email.send()
    except Exception as exc:  # noqa: BLE001 - after the commit: recorded on the shift and retried by a new directive
        failures = ShiftEvent.objects.filter(shift=shift, type=Z_REPORT_EMAIL_FAILED).count() + 1
        retry = failures < int(conf.get("DIRECTIVE_MAX_ATTEMPTS"))
        with transaction.atomic():
            _event(shift, Z_REPORT_EMAIL_FAILED, actor=f"directive:{Z_REPORT_TOPIC}", error=f"{type(exc).__name__}: {exc}"[:500],
                   failures=failures, retried=retry)
            if retry:
                from omniman.engine import backoff_seconds

                Directive.objects.enqueue(Z_REPORT_TOPIC, {"shift_id": shift.pk}, dedupe_key=f"{Z_REPORT_TOPIC}:{shift.pk}",
                                          available_at=timezone.now() + timedelta(seconds=backoff_seconds(failures)))
        (logger.warning if retry else logger.error)(
            "z-report email refused", extra={"shift_id": shift.pk, "failures": failures, "error": f"{type(exc).__name__}: {exc}"})
        return
    logger.info("z-report emailed", extra={"shift_id": shift.pk, "recipients": len(email.to)})
