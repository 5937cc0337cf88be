"""A manager's approval on someone else's screen: the operator PIN, and the rule that asks for it.

A discount above the channel's threshold (``config["discounts"]["approval_over_percent"]``,
default 10 %) needs a manager: either the person asking is one (``roles``), or a
manager approves on the spot by typing their username and PIN — no re-login.
The operator app and the API both verify the PIN here (:func:`verify_pin`) and
pass the approver's username and roles to the service, which decides with
:func:`check_approval`.

PINs are 4 to 8 digits, stored hashed (``django.contrib.auth.hashers``). After
``MAX_FAILURES`` wrong PINs in a row the PIN is locked for ``LOCK_MINUTES``
(a correct PIN typed meanwhile is refused too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from omniman.exceptions import ApprovalError, ValidationError
from omniman.models import OperatorPin
from omniman.roles import MANAGER, roles_of

MIN_DIGITS, MAX_DIGITS = 4, 8
MAX_FAILURES = 5
LOCK_MINUTES = 5

APPROVAL_REQUIRED = "approval_required"
APPROVAL_FAILED = "approval_failed"
INVALID_PIN = "invalid_pin"


@dataclass(frozen=True)
class Approver:
    """Who approved: the username to record (``approved_by``) and their roles (``approver_roles``)."""

    username: str
    roles: frozenset[str]


def valid_pin(pin: object) -> bool:
    return isinstance(pin, str) and pin.isascii() and pin.isdigit() and MIN_DIGITS <= len(pin) <= MAX_DIGITS


def set_pin(user, pin: str) -> OperatorPin:
    """Set (or replace) ``user``'s PIN; ``ValidationError("invalid_pin")`` unless it is 4 to 8 digits. Clears a lock."""
    if not valid_pin(pin):
        raise ValidationError(INVALID_PIN, _("A PIN is 4 to 8 digits."), {"field": "pin"})
    row, _created = OperatorPin.objects.update_or_create(
        user=user, defaults={"pin_hash": make_password(pin), "failed_attempts": 0, "locked_until": None}
    )
    return row


def has_pin(user) -> bool:
    return OperatorPin.objects.filter(user=user).exists()


def verify_pin(username: str, pin: str, *, require_role: str = MANAGER) -> Approver:
    """The approver whose ``username`` and ``pin`` these are, if they have ``require_role``.

    ``ApprovalError("approval_failed")`` otherwise — unknown or inactive user,
    no PIN, wrong PIN, locked PIN, or not a manager — one code for all, so a
    screen does not tell which usernames exist. Each wrong PIN is counted
    (committed at once, whatever the caller's transaction does next).
    """
    refused = ApprovalError(APPROVAL_FAILED, context={"approved_by": str(username or "")[:150]})
    if not isinstance(username, str) or not username or not isinstance(pin, str) or not pin:
        raise refused
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}, is_active=True).first()
    if user is None:
        make_password(pin)  # about the time a check takes: do not tell unknown users apart by timing
        raise refused
    now = timezone.now()
    with transaction.atomic():
        row = OperatorPin.objects.select_for_update().filter(user=user).first()
        if row is None:
            make_password(pin)
            raise refused
        if row.locked_until is not None and row.locked_until > now:
            raise ApprovalError(
                APPROVAL_FAILED,
                _("Too many wrong PINs: try again in a few minutes."),
                {"approved_by": username, "locked_until": row.locked_until.isoformat()},
            )
        if not check_password(pin, row.pin_hash):
            row.failed_attempts += 1
            if row.failed_attempts >= MAX_FAILURES:
                row.failed_attempts = 0
                row.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            row.save(update_fields=["failed_attempts", "locked_until", "updated_at"])
            failed = True
        else:
            if row.failed_attempts or row.locked_until:
                row.failed_attempts = 0
                row.locked_until = None
                row.save(update_fields=["failed_attempts", "locked_until", "updated_at"])
            failed = False
    if failed:
        raise refused
    roles = frozenset(roles_of(user))
    if require_role and require_role not in roles:
        raise refused
    return Approver(username=user.get_username(), roles=roles)


def check_approval(
    percent: Decimal,
    threshold: Decimal | None,
    *,
    roles=None,
    approved_by: str = "",
    approver_roles=None,
) -> str:
    """Who approved what is asked, or ``ApprovalError("approval_required")``.

    Nothing is needed when ``threshold`` is not ``None`` and ``percent`` does
    not exceed it (returns ``""``). Otherwise the caller must be a manager
    (``roles``; returns ``""``: the actor is the manager) or an approver must
    be (``approved_by`` with ``approver_roles``; returns ``approved_by``).
    ``threshold=None`` always needs a manager (waiving the service charge).
    Context: ``threshold``, ``percent`` (decimal text).
    """
    if threshold is not None and percent <= threshold:
        return ""
    if MANAGER in set(roles or ()):
        return ""
    if approved_by and MANAGER in set(approver_roles or ()):
        return approved_by
    raise ApprovalError(
        APPROVAL_REQUIRED,
        _("A manager must approve this (more than %(threshold)s %%).") % {"threshold": threshold}
        if threshold is not None
        else _("A manager must approve this."),
        {"threshold": None if threshold is None else str(threshold), "percent": str(percent)},
    )
