"""Adjustments of an open session: discounts (a line or the whole), waiving the service charge, removing one."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from omniman.adjustments import (
    DISCOUNT,
    SERVICE_CHARGE,
    effective_discount_percent,
    make_adjustment,
    parse_percent,
    validate_discount,
)
from omniman.approvals import check_approval
from omniman.channel_config import discount_approval_percent
from omniman.exceptions import SessionError, ValidationError
from omniman.models import Session
from omniman.services import pipeline
from omniman.services._common import lock_session, require_open
from omniman.services.sessions import require_rev

logger = logging.getLogger("omniman.services")

MAX_REASON_LENGTH = 200


def _reason(reason: Any) -> str:
    text = str(reason or "").strip() if isinstance(reason, (str, type(None))) else ""
    if not text:
        raise ValidationError("reason_required", _("Say why (a reason is required)."), {"field": "reason"})
    if len(text) > MAX_REASON_LENGTH:
        raise ValidationError(
            "invalid_field", _("The reason is at most %(max)s characters.") % {"max": MAX_REASON_LENGTH}, {"field": "reason"}
        )
    return text


class AdjustmentService:
    """Discounts and the service charge of an open session (SPEC §10; docs/api/adjustments.rst).

    Each call locks the session, compares ``expected_rev``, changes its
    ``adjustments`` and reruns the pipeline (totals, validators, ``rev + 1``,
    checks again), all in one transaction. A refusal changes nothing.
    """

    @staticmethod
    @transaction.atomic
    def discount(
        session_key: str,
        channel_code: str,
        *,
        expected_rev: int | None = None,
        line_id: str = "",
        percent: Any = None,
        amount_q: Any = None,
        reason: str,
        actor: str = "system",
        roles=None,
        approved_by: str = "",
        approver_roles=None,
        kind: str = DISCOUNT,
    ) -> Session:
        """A discount of ``percent`` % or ``amount_q`` on ``line_id`` (``""`` = the whole), with a ``reason``.

        ``kind="service_charge"`` sets the service charge instead (``percent``
        from 0 to 100; ``"0"`` waives it): a manager's call, always.

        Errors: ``not_found``/``channel_not_found``, ``already_committed``/``abandoned``,
        ``stale_rev``, ``line_not_found``, ``invalid_discount``, ``reason_required``,
        ``approval_required`` (403; context ``threshold``, ``percent``).
        """
        session = lock_session(session_key, channel_code)
        require_open(session)
        require_rev(session, expected_rev)
        if kind == SERVICE_CHARGE:
            adjustment = _service_charge(session, percent=percent, amount_q=amount_q, reason=reason, actor=actor,
                                         roles=roles, approved_by=approved_by, approver_roles=approver_roles)
        elif kind == DISCOUNT:
            adjustment = _discount(session, line_id=str(line_id or ""), percent=percent, amount_q=amount_q, reason=reason,
                                   actor=actor, roles=roles, approved_by=approved_by, approver_roles=approver_roles)
        else:
            raise ValidationError("invalid_adjustment", _("Only discounts and the service charge are set here."), {"field": "kind"})
        session.adjustments = [*session.adjustments, adjustment]
        session = pipeline.rerun(session, ctx={"actor": actor})
        logger.info(
            "adjustment applied",
            extra={"session_key": session_key, "channel": channel_code, "actor": actor, "kind": adjustment["kind"],
                   "adjustment_id": adjustment["id"], "approved_by": adjustment["approved_by"]},
        )
        return session

    @staticmethod
    @transaction.atomic
    def remove(
        session_key: str,
        channel_code: str,
        adjustment_id: str,
        *,
        expected_rev: int | None = None,
        actor: str = "system",
        roles=None,
        approved_by: str = "",
        approver_roles=None,
    ) -> Session:
        """Take off an adjustment someone added (a discount, a waiver of the service charge).

        Removing one raises what the customer owes, so it needs no approval.
        The automatic service charge is not removed but waived
        (``discount(kind="service_charge", percent="0")``): removing it is
        ``invalid_adjustment``. Unknown id: ``adjustment_not_found`` (404).
        """
        session = lock_session(session_key, channel_code)
        require_open(session)
        require_rev(session, expected_rev)
        found = next((a for a in session.adjustments if a.get("id") == adjustment_id), None)
        if found is None:
            raise SessionError(
                "adjustment_not_found", context={"session_key": session_key, "adjustment_id": str(adjustment_id)[:64]}
            )
        if found.get("auto"):
            raise ValidationError(
                "invalid_adjustment",
                _("The automatic service charge is waived (a manager sets it to 0 %), not removed."),
                {"adjustment_id": adjustment_id},
            )
        session.adjustments = [a for a in session.adjustments if a.get("id") != adjustment_id]
        session = pipeline.rerun(session, ctx={"actor": actor})
        logger.info(
            "adjustment removed",
            extra={"session_key": session_key, "channel": channel_code, "actor": actor, "adjustment_id": adjustment_id},
        )
        return session


def _discount(session: Session, *, line_id: str, percent, amount_q, reason, actor, roles, approved_by, approver_roles) -> dict:
    parsed_percent, parsed_amount = validate_discount(
        session.lines, session.adjustments, line_id=line_id, percent=percent, amount_q=amount_q, reason=reason
    )
    reason = _reason(reason)
    adjustment = make_adjustment(
        DISCOUNT, line_id=line_id, percent=parsed_percent, amount_q=parsed_amount, reason=reason, actor=actor
    )
    threshold = discount_approval_percent(session.channel.config)
    effective = effective_discount_percent(session.lines, session.adjustments, adjustment)
    adjustment["approved_by"] = check_approval(
        effective, threshold, roles=roles, approved_by=approved_by, approver_roles=approver_roles
    )
    return adjustment


def _service_charge(session: Session, *, percent, amount_q, reason, actor, roles, approved_by, approver_roles) -> dict:
    if amount_q not in (None, ""):
        raise ValidationError("invalid_adjustment", _("The service charge is a percent."), {"field": "amount_q"})
    parsed = parse_percent(percent, allow_zero=True)
    if parsed is None:
        raise ValidationError(
            "invalid_adjustment", _("A percent is a number from 0 to 100 with at most 2 decimal places."), {"field": "percent"}
        )
    reason = _reason(reason)
    approved = check_approval(parsed, None, roles=roles, approved_by=approved_by, approver_roles=approver_roles)
    # One service charge set by hand: it replaces the automatic one and an earlier one set by hand.
    session.adjustments = [a for a in session.adjustments if not (a.get("kind") == SERVICE_CHARGE and not a.get("auto"))]
    return make_adjustment(SERVICE_CHARGE, percent=parsed, reason=reason, actor=actor, approved_by=approved)
