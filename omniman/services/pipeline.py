"""The modify pipeline: ops → line totals → modifiers → validators → rev + 1.

It also guards the extension contract: modifiers and validators run with
database access switched off (no IO), a validator that mutates the session
is rejected, and no modifier may reprice an external session.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.utils.translation import gettext as _

from omniman import registry
from omniman.adjustments import SERVICE_CHARGE, make_adjustment, percent_text, prune_adjustments
from omniman.channel_config import service_charge_percent
from omniman.exceptions import OmnimanError, ValidationError
from omniman.models import Channel, Directive, Session
from omniman.monetary import MAX_AMOUNT_Q, monetary_mult, parse_price_q, parse_qty
from omniman.services.kitchen import SOLD_OUT_CTX_KEY, load_sold_out
from omniman.services.ops import apply_ops


class _NoDatabase:
    def __init__(self, who: str):
        self.who = who

    def __call__(self, execute, sql, params, many, context):
        raise OmnimanError(
            "pipeline_violation",
            _("%(who)s queried the database; modifiers and validators do no IO (load data in a modifier's prepare() hook instead).")
            % {"who": self.who},
            {"extension": self.who},
        )


@contextmanager
def no_io(who: str):
    """Fail any database query made inside the block."""
    blocker = _NoDatabase(who)
    with _wrap_all(blocker):
        yield


@contextmanager
def _wrap_all(blocker):
    stack = []
    try:
        for conn in connections.all(initialized_only=True):
            cm = conn.execute_wrapper(blocker)
            cm.__enter__()
            stack.append(cm)
        yield
    finally:
        for cm in reversed(stack):
            cm.__exit__(None, None, None)


def fingerprint(session: Session) -> str:
    """Everything a validator could mutate, as canonical text."""
    return json.dumps(
        {
            "lines": session.lines,
            "adjustments": session.adjustments,
            "data": session.data,
            "rev": session.rev,
            "state": session.state,
            "pricing_policy": session.pricing_policy,
            "edit_policy": session.edit_policy,
            "handle": [session.handle_type, session.handle_ref],
        },
        sort_keys=True,
        default=str,
    )


def recompute_line_totals(session: Session) -> None:
    """``line_total_q = qty × unit_price_q`` (half up) for every line; the total follows."""
    total = 0
    for line in session.lines:
        qty = parse_qty(line.get("qty"))
        price = parse_price_q(line.get("unit_price_q"))
        if qty is None or price is None:
            raise OmnimanError(
                "pipeline_violation",
                _("Line %(line_id)s has an invalid qty or unit_price_q after the modifiers.")
                % {"line_id": repr(line.get('line_id'))},
                {"line_id": line.get("line_id")},
            )
        line["line_total_q"] = monetary_mult(qty, price)
        total += line["line_total_q"]
    if total > MAX_AMOUNT_Q:
        raise ValidationError("invalid_price", _("The session total is too large."), {"total_q": total})


def run_modifiers(session: Session, ctx: dict[str, Any]) -> None:
    channel = session.channel
    modifiers = registry.get_modifiers()
    for modifier in modifiers:
        prepare = getattr(modifier, "prepare", None)
        if prepare is not None:
            prepare(channel=channel, session=session, ctx=ctx)
    external = session.pricing_policy == Channel.PricingPolicy.EXTERNAL
    prices_before = {line["line_id"]: line["unit_price_q"] for line in session.lines}
    for modifier in modifiers:
        with no_io(f"modifier {modifier.code!r}"):
            modifier.apply(channel=channel, session=session, ctx=ctx)
        if external:
            # Lines the channel priced keep their price; a modifier may add
            # lines of its own (a fee, say), but never reprice the channel's.
            repriced = [
                line.get("line_id")
                for line in session.lines
                if line.get("line_id") in prices_before and line.get("unit_price_q") != prices_before[line["line_id"]]
            ]
            if repriced:
                raise OmnimanError(
                    "pipeline_violation",
                    _("modifier %(modifier_code)s repriced an external session.")
                    % {"modifier_code": repr(modifier.code)},
                    {"modifier": modifier.code, "line_ids": repriced},
                )


def run_validators(session: Session, stage: str, ctx: dict[str, Any]) -> None:
    channel = session.channel
    for validator in registry.get_validators(stage):
        before = fingerprint(session)
        with no_io(f"validator {validator.code!r}"):
            validator.validate(channel=channel, session=session, ctx=ctx)
        if fingerprint(session) != before:
            raise OmnimanError(
                "pipeline_violation",
                _("validator %(validator_code)s mutated the session; validators are read-only gates.")
                % {"validator_code": repr(validator.code)},
                {"validator": validator.code},
            )


def sync_adjustments(session: Session) -> None:
    """The kernel's part of the adjustments, kept in step with the lines and the channel (SPEC §10).

    An adjustment of a line that is gone goes with it. The channel's automatic
    service charge (``omniman.channel_config.service_charge_percent``) is there
    exactly when the channel has one and no one waived it (a service charge
    adjustment that is not ``auto``, added through ``AdjustmentService``); it
    keeps its id while its percent stays the same.
    """
    adjustments = prune_adjustments(session.lines, session.adjustments or [])
    percent = service_charge_percent(session.channel.config)
    waived = any(a.get("kind") == SERVICE_CHARGE and not a.get("auto") for a in adjustments)
    automatic = [a for a in adjustments if a.get("kind") == SERVICE_CHARGE and a.get("auto")]
    kept = [a for a in adjustments if not (a.get("kind") == SERVICE_CHARGE and a.get("auto"))]
    if percent > 0 and not waived:
        same = next((a for a in automatic if a.get("percent") == percent_text(percent)), None)
        kept.append(same or make_adjustment(SERVICE_CHARGE, percent=percent, auto=True, actor="system"))
    session.adjustments = kept


# ``ctx`` key: the 86 list read in the statement that locked the session (``ModifyService``), taken by the
# one ``modify`` it is passed to; without it ``modify`` reads the list itself.
SOLD_OUT_READ = "_sold_out_read"


def adds_skus(ops: Any) -> bool:
    """Whether ``ops`` add a SKU to the session (``add_line``, ``replace_sku``): the ops that refuse a sold-out one."""
    return isinstance(ops, list) and any(isinstance(op, dict) and op.get("op") in ("add_line", "replace_sku") for op in ops)


def modify(session: Session, ops: Any, *, ctx: dict[str, Any], allow_locked: bool = False) -> Session:
    """Run the whole pipeline on a locked, open session and save it (one UPDATE).

    ``ctx[SOLD_OUT_READ]``, when there, is the 86 list the caller read with the session's lock (in this
    transaction, after no earlier change): the ops check against it instead of reading it again.
    """
    sold_out = ctx.pop(SOLD_OUT_READ, None)  # read with the session's lock, for this modification only
    if adds_skus(ops):
        # The 86 list, read once for the ops that add a SKU (they refuse a sold-out one).
        if sold_out is None:
            load_sold_out(ctx)
        else:
            ctx[SOLD_OUT_CTX_KEY] = frozenset(sold_out)
    apply_ops(session, ops, ctx=ctx, allow_locked=allow_locked)
    return rerun(session, ctx=ctx)


def rerun(session: Session, *, ctx: dict[str, Any]) -> Session:
    """The pipeline after the session's lines or adjustments changed in memory (by the ops, an adjustment,
    or a kernel service moving lines between tabs): line totals → modifiers → adjustments → validators →
    rev + 1 → checks cleared and enqueued again. Saves (one UPDATE)."""
    recompute_line_totals(session)
    run_modifiers(session, ctx)
    recompute_line_totals(session)
    sync_adjustments(session)
    run_validators(session, "draft", ctx)
    session.rev += 1
    session.data["checks"] = {}
    session.data["issues"] = []
    session.save(update_fields=["lines", "adjustments", "data", "rev", "total_q", "updated_at"])
    enqueue_checks(session)
    return session


def enqueue_checks(session: Session) -> list[Directive]:
    """One check directive per required check of the channel, for this rev."""
    channel = session.channel
    return [
        Directive.objects.enqueue(
            channel.check_topic(code),
            {
                "session_key": session.session_key,
                "channel_code": channel.code,
                "rev": session.rev,
                "check_code": code,
            },
            dedupe_key=f"{session.session_key}:{code}:{session.rev}",
        )
        for code in channel.required_checks
    ]
