"""Omniman errors: a stable machine ``code``, a human ``message``, a ``context`` dict.

Tests and docs assert the code, never the message. The HTTP status of a code is
decided once, here (``http_status``); the API's exception handler and the
operator UI's error mapper both ask it.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

# Default human messages, by code (translated: the message is in the active
# language when the error is raised; the code never changes). A raise site may
# pass a more specific one, through gettext with its values as %(name)s.
MESSAGES: dict[str, Any] = {
    # ops
    "unsupported_op": _("Unsupported operation."),
    "missing_field": _("A required field is missing."),
    "invalid_field": _("A field has an invalid value."),
    "invalid_qty": _("Quantity must be a positive number with at most 3 decimal places."),
    "invalid_price": _("Price must be a non-negative integer amount in cents."),
    "missing_unit_price_q": _("This channel uses external pricing: unit_price_q is required."),
    "unknown_line_id": _("No line with this id in the session."),
    "invalid_merge": _("Only two different lines of the same SKU can be merged."),
    "reserved_path": _("This path is reserved and cannot be written directly."),
    "invalid_path": _("Invalid path."),
    "invalid_issue": _("Invalid issue."),
    # sessions
    "not_found": _("Not found."),
    "channel_not_found": _("Unknown or inactive channel."),
    "already_committed": _("The session has already been committed."),
    "abandoned": _("The session has been abandoned."),
    "locked": _("This session's items cannot be edited (locked edit policy)."),
    "stale_rev": _("The session changed since you loaded it."),
    "session_key_conflict": _("This session key belongs to another channel."),
    # commit
    "in_progress": _("A commit with this idempotency key is in progress."),
    "empty_session": _("The session has no items."),
    "missing_check": _("A required check has not run yet."),
    "stale_check": _("A required check ran on an older revision of the session."),
    "hold_expired": _("A required check's hold has expired."),
    "blocking_issues": _("The session has blocking issues."),
    "validation_failed": _("The session failed validation."),
    "missing_idempotency_key": _("An idempotency key is required."),
    "conflict": _("This idempotency key was used for another request."),
    # resolve
    "issue_not_found": _("No such issue in the session."),
    "action_not_found": _("No such action for this issue."),
    "resolver_error": _("The issue resolver failed."),
    # orders
    "stale_status": _("The order's status changed since you loaded it."),
    "invalid_transition": _("This status change is not allowed."),
    "forbidden_transition": _("Your role may not make this status change."),
    # adjustments (service charge, discounts) and manager approval
    "invalid_discount": _("The discount is not valid."),
    "reason_required": _("A reason is required."),
    "line_not_found": _("No line with this id."),
    "invalid_adjustment": _("The adjustment is not valid."),
    "adjustment_not_found": _("No such adjustment."),
    "approval_required": _("This needs a manager's approval."),
    "approval_failed": _("The manager's PIN was not accepted."),
    "invalid_pin": _("A PIN is 4 to 8 digits."),
    # the floor
    "not_a_table": _("Only a table's tab can do this."),
    "same_table": _("The tab is already at that table."),
    "table_not_found": _("There is no such table on the floor plan."),
    "table_occupied": _("That table is occupied: merge the tabs instead."),
    "nothing_to_move": _("This table has nothing to move."),
    "area_not_found": _("No such area on this floor."),
    "overlap": _("Two tables overlap on the floor plan."),
    "off_grid": _("A table does not fit on the floor plan's grid."),
    # model layer
    "immutable": _("This record is immutable."),
    "unsupported_snapshot_version": _("Unknown order snapshot version."),
    "pipeline_violation": _("A modifier or validator broke the pipeline contract."),
    # bills and payments (issue #15)
    "stale_bill": _("The bill changed since you loaded it."),
    "already_paid": _("This bill is already paid."),
    "already_voided": _("This item is already voided or cancelled."),
    "bill_not_settled": _("The table's bill is not settled yet."),
    "overpayment": _("The amount is more than what is due."),
    "invalid_amount": _("Amounts must be positive whole cents (a tip may be zero)."),
    "insufficient_tender": _("The cash tendered does not cover the amount and the tip."),
    "unknown_method": _("This payment method is not enabled on the channel."),
    "reference_required": _("A card payment needs the terminal's authorization code."),
    "currency_mismatch": _("The payment's currency is not the bill's."),
    "over_refund": _("The refund is more than what is left of the payment."),
    "invalid_split": _("This split is not possible."),
    "forbidden": _("Your role may not do this."),
    "payment_declined": _("The payment was declined."),
    "gateway_unavailable": _("The payment gateway cannot be reached; try again."),
    # shifts and cash control (issue #18)
    "register_not_found": _("Unknown or inactive register."),
    "shift_not_found": _("No such shift."),
    "shift_already_open": _("This register already has an open shift."),
    "shift_closed": _("This shift is already closed."),
    "stale_shift": _("The shift changed since you loaded it."),
    "invalid_count": _("A drawer count is a number of notes or coins (zero or more) per denomination in cents."),
    "difference_needs_approval": _("The drawer difference is over the threshold: a manager must accept it."),
}


class OmnimanError(Exception):
    """Base of every Omniman error."""

    def __init__(self, code: str, message: str = "", context: dict[str, Any] | None = None):
        self.code = code
        self.message = str(message or MESSAGES.get(code) or code.replace("_", " ").capitalize() + ".")
        self.context = dict(context or {})
        super().__init__(code, self.message, self.context)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.context!r})"

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "context": self.context}


class ValidationError(OmnimanError):
    """Bad input: a malformed op, quantity, price or path."""


class SessionError(OmnimanError):
    """The session is missing, closed, locked, or changed under you."""


class CommitError(OmnimanError):
    """The session cannot be committed now."""


class IdempotencyError(OmnimanError):
    """The idempotency key cannot be used for this request."""


class IssueResolveError(OmnimanError):
    """An issue or its action cannot be resolved."""


class DirectiveError(OmnimanError):
    """A directive cannot be processed."""


class InvalidTransition(OmnimanError):
    """An order status change that the channel's flow does not allow."""


class BillError(OmnimanError):
    """A bill or payment use case refused: the bill changed, is paid, or the caller may not."""


class ApprovalError(OmnimanError):
    """A manager's approval is needed (``approval_required``) or was not given (``approval_failed``)."""


class ShiftError(OmnimanError):
    """A shift use case refused: unknown register or shift, a shift already open, closed, or changed under you."""


# What a code means to the caller, for the two places that turn errors into HTTP
# (the API's exception handler and the operator UI's error mapper; SPEC §4).
# "The world changed under you": a fresh read (and perhaps a retry) resolves it.
# Issues are cleared by every modification, so an issue or action that is gone
# was resolved or replaced elsewhere.
WORLD_CHANGED_CODES = frozenset(
    {
        "stale_rev",
        "stale_status",
        "stale_check",
        "blocking_issues",
        "already_committed",
        "abandoned",
        "in_progress",
        "locked",
        "conflict",
        "missing_check",
        "hold_expired",
        "empty_session",
        "session_key_conflict",
        "issue_not_found",
        "action_not_found",
        # The kitchen (KitchenService): the order is not (or no longer) on the stations, an item is
        # held, a station is not done yet, a bump is too old to undo.
        "not_in_kitchen",
        "item_held",
        "not_ready",
        "undo_expired",
        # bills (issue #15): the bill changed, was paid, or the item was voided elsewhere
        "stale_bill",
        "already_paid",
        "already_voided",
        "bill_not_settled",
        "table_occupied",
        # shifts (issue #18): another shift is open on the register, the shift closed or changed
        "shift_already_open",
        "shift_closed",
        "stale_shift",
    }
)
# What was asked for is not there.
GONE_CODES = frozenset({"not_found", "channel_not_found", "adjustment_not_found", "register_not_found", "shift_not_found"})
# Bad input that is not a ValidationError (and a commit refused because its channel's
# currency, planted behind the model, is not ISO 4217: refused, never a 500).
REFUSED_INPUT_CODES = frozenset({"invalid_transition", "validation_failed", "invalid_currency"})
# Allowed, but not to this caller's role (the channel's flow says who may).
FORBIDDEN_CODES = frozenset(
    {"forbidden_transition", "forbidden", "approval_required", "approval_failed", "difference_needs_approval"}
)
# A provider the request needs cannot be reached now: retry later.
UNAVAILABLE_CODES = frozenset({"gateway_unavailable"})


def http_status(error: OmnimanError, *, form: bool = False) -> int:
    """The HTTP status an error answers with, for the API's handler and the operator UI's mapper (SPEC §4).

    409 when the world changed under the caller, 404 for what is gone, 403 for
    a move the caller's role may not make (or a use case it may not run), 503 for a payment
    gateway that cannot be reached, 400 for
    refused input — 422 instead where a ``form`` is re-rendered with its
    errors in place (the HTMX views) — and 500 for anything else: an
    extension or the kernel broke its contract.
    """
    if error.code in WORLD_CHANGED_CODES:
        return 409
    if error.code in GONE_CODES:
        return 404
    if error.code in FORBIDDEN_CODES:
        return 403
    if error.code in UNAVAILABLE_CODES:
        return 503
    if isinstance(error, ValidationError) or error.code in REFUSED_INPUT_CODES:
        return 422 if form else 400
    return 500


__all__ = [
    "WORLD_CHANGED_CODES",
    "GONE_CODES",
    "REFUSED_INPUT_CODES",
    "FORBIDDEN_CODES",
    "UNAVAILABLE_CODES",
    "http_status",
    "OmnimanError",
    "ValidationError",
    "SessionError",
    "CommitError",
    "IdempotencyError",
    "IssueResolveError",
    "DirectiveError",
    "InvalidTransition",
    "BillError",
    "ApprovalError",
    "ShiftError",
    "MESSAGES",
]
