"""The stock directive handlers: ``stock.hold`` (the check), ``stock.commit`` and ``stock.release``.

Each runs inside the engine's transaction (the one that marks the directive
done) and is idempotent: it looks for its evidence first — a check already
written for the revision with its holds still live, an ``OrderEvent``
(``stock.committed`` / ``stock.released``), a movement row unique per order
and SKU — and writes that evidence in the same transaction as its effect.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_noop

from omniman import conf, texts
from omniman.contrib.catalog import get_catalog
from omniman.contrib.stock import get_stock_backend
from omniman.contrib.stock.protocols import UNLIMITED, Hold, StockBackend
from omniman.exceptions import DirectiveError, SessionError
from omniman.models import Channel, Order, Session
from omniman.monetary import qty_to_str
from omniman.services import SessionWriteService, apply_auto_transition, find_session, lock_order

# Issue texts, stored with their ids (omniman.texts) so each screen shows them in its language.
ONLY_AVAILABLE = gettext_noop("%(name)s: only %(available)s of %(requested)s available.")
OUT_OF_STOCK = gettext_noop("%(name)s is out of stock.")
REDUCE_TO = gettext_noop("Reduce to %(qty)s")
REMOVE_LINE = gettext_noop("Remove line")
REPLACE_WITH = gettext_noop("Replace with %(name)s")

logger = logging.getLogger("omniman.stock")

STOCK_COMMITTED = "stock.committed"
STOCK_RELEASED = "stock.released"
ZERO = Decimal("0")


def _required(payload: dict[str, Any], *fields: str) -> None:
    missing = [field for field in fields if payload.get(field) in (None, "")]
    if missing:
        raise DirectiveError("invalid_payload", f"The payload lacks {', '.join(missing)}.", {"missing": missing})


def _wanted(lines: list[dict[str, Any]]) -> dict[str, Decimal]:
    """Quantity per SKU over the session's lines."""
    wanted: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        wanted[line["sku"]] += Decimal(str(line["qty"]))
    return dict(wanted)


class _StockDirectiveHandler:
    """What the stock handlers share: they are ``database_only`` (claimed inside the directive engine's
    batch transaction, see :func:`omniman.engine.claims_in_batch`) when the stock backend keeps its
    levels and holds in this database; a backend that calls an outside system keeps them out."""

    @property
    def database_only(self) -> bool:
        return bool(getattr(get_stock_backend(), "database_only", False))


def _text(qty: Decimal) -> str:
    return qty_to_str(qty) if qty else "0"


# -- stock.hold ----------------------------------------------------------------


class StockHoldHandler(_StockDirectiveHandler):
    """The stock check: hold what the session's lines need, report what is short.

    Payload ``{"session_key", "channel_code", "rev", "check_code"}``. A session
    that moved past ``rev`` (or closed) is left alone: a newer check is queued.
    The session's holds are made those of its current lines (one per SKU; the
    database backend changes only the SKUs whose quantity changed), and the
    outcome is written with ``write_check(expected_rev=rev)``.

    **Lock order: the session, then the stock levels, then the holds**, on
    every path. Run by a worker (or dispatched after a commit), the handler
    locks the session row first, so the session cannot move on while it holds.
    Run in the transaction that changed the session
    (:func:`omniman.engine.dispatch_before_commit`, ``ctx["locked"]["session"]``),
    it takes that session as it is — locked, in memory, at its rev — without
    reading it again, and writes the check on that object too. An inline check
    and a worker's check of one session take their locks in the same order:
    they wait for each other, they cannot deadlock.
    """

    topic = "stock.hold"

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        payload = message.payload or {}
        _required(payload, "session_key", "channel_code", "rev")
        check_code = payload.get("check_code") or "stock"
        session = _locked_session(payload["session_key"], payload["channel_code"], ctx)
        if session is None or not session.is_open or session.rev != payload["rev"]:
            logger.info("stock check skipped: the session moved on", extra={"session_key": payload["session_key"], "rev": payload["rev"]})
            return
        backend = get_stock_backend()
        if _already_checked(session, check_code, backend):
            return
        if not hold_and_check(session, check_code=check_code, backend=backend, locked=True):
            # Not with the session locked at this rev: fail, so the hold changes roll back with this run.
            raise DirectiveError(
                "check_not_written", "write_check refused the stock check of a locked session.",
                {"session_key": session.session_key, "rev": session.rev},
            )


def _locked_session(session_key: str, channel_code: str, ctx: dict[str, Any]) -> Session | None:
    """The session, locked in this transaction: the one the enqueuing transaction holds (``ctx["locked"]``), or locked here."""
    shared = (ctx.get("locked") or {}).get("session")
    if isinstance(shared, Session) and shared.session_key == session_key and shared.channel.code == channel_code:
        return shared
    try:
        return find_session(session_key, channel_code, lock=True)
    except SessionError:
        return None


def _already_checked(session: Session, check_code: str, backend: StockBackend) -> bool:
    """The check for this revision is written and its holds are still live."""
    check = session.check_state(check_code)
    if check.pending or check.state == check.EXPIRED:
        return False
    result = check.check.get("result") or {}
    if not isinstance(result, dict) or not isinstance(result.get("holds"), list):
        return False
    live = {hold.id for hold in backend.holds_for_reference(session.session_key)}
    return live == set(result["holds"])


def hold_and_check(
    session: Session, *, check_code: str = "stock", backend: StockBackend | None = None, locked: bool = False
) -> bool:
    """Replace the session's holds for its current lines and write the check; ``write_check``'s answer.

    Call it inside a transaction (the availability stays locked until it ends).
    ``locked``: the caller holds ``session`` locked in it (the session before
    the stock, the handler's lock order): the check is written on that object,
    without reading the session again. Its number of queries does not depend on
    the number of lines or SKUs.
    """
    backend = backend or get_stock_backend()
    reference = session.session_key
    lines = session.lines
    wanted = _wanted(lines)
    first_line: dict[str, str] = {}
    for line in lines:
        first_line.setdefault(line["sku"], line["line_id"])

    expires_at = timezone.now() + timedelta(minutes=float(conf.get("STOCK_HOLD_TTL_MINUTES")))
    available, holds = _replace_holds(backend, reference, wanted, line_ids=first_line, expires_at=expires_at)

    remaining = dict(available)
    short: list[tuple[dict[str, Any], Decimal]] = []
    for line in lines:
        sku, qty = line["sku"], Decimal(str(line["qty"]))
        got = min(qty, remaining.get(sku, UNLIMITED))
        remaining[sku] = remaining.get(sku, UNLIMITED) - got
        if got < qty:
            short.append((line, got))

    issues = [_issue(line, got, check_code) for line, got in short]
    _offer_alternatives(session, issues, short, wanted, backend)
    result: dict[str, Any] = {"holds": [hold.id for hold in holds], "held": {h.sku: qty_to_str(h.qty) for h in holds}}
    if holds:  # the check lasts as long as its earliest hold (kept holds may be older than this check)
        result["expires_at"] = min(hold.expires_at for hold in holds).isoformat()
    return SessionWriteService.write_check(
        reference,
        session.channel.code,
        check_code=check_code,
        expected_rev=session.rev,
        result=result,
        status="issues" if issues else "ok",
        issues=issues,
        session=session if locked else None,
    )


def _replace_holds(
    backend: StockBackend,
    reference: str,
    wanted: dict[str, Decimal],
    *,
    line_ids: dict[str, str],
    expires_at: datetime,
) -> tuple[dict[str, Decimal], list[Hold]]:
    """Availability for ``reference``, and its new holds: per tracked SKU, what is wanted or what is free if less."""
    replace = getattr(backend, "replace_holds", None)
    if replace is not None:
        done = replace(reference, wanted, line_ids=line_ids, expires_at=expires_at)
        return done.available, list(done.holds)
    # A backend without the bulk methods: the same steps through the basic ones.
    available = backend.check_availability(wanted, reference=reference)
    backend.release_holds_for_reference(reference)
    holding = {}
    for sku, qty in sorted(wanted.items()):
        free = available.get(sku, UNLIMITED)
        if free != UNLIMITED and min(qty, free) > 0:
            holding[sku] = min(qty, free)
    create_holds = getattr(backend, "create_holds", None)
    if create_holds is not None:
        return available, list(create_holds(holding, reference=reference, line_ids=line_ids, expires_at=expires_at))
    return available, [
        backend.create_hold(sku, qty, reference=reference, line_id=line_ids[sku], expires_at=expires_at)
        for sku, qty in holding.items()
    ]


def _issue(line: dict[str, Any], got: Decimal, check_code: str) -> dict[str, Any]:
    requested = Decimal(str(line["qty"]))
    name = line.get("name") or line["sku"]
    actions = []
    if got > 0:
        text = texts.message(ONLY_AVAILABLE, name=name, available=_text(got), requested=_text(requested))
        actions.append(
            {
                "id": "reduce",
                **texts.message(REDUCE_TO, "label", qty=_text(got)),
                "ops": [{"op": "set_qty", "line_id": line["line_id"], "qty": _text(got)}],
            }
        )
    else:
        text = texts.message(OUT_OF_STOCK, name=name)
    actions.append({"id": "remove", **texts.message(REMOVE_LINE, "label"), "ops": [{"op": "remove_line", "line_id": line["line_id"]}]})
    return {
        "source": check_code,
        "code": "insufficient_stock" if got > 0 else "out_of_stock",
        "severity": "blocking",
        "line_id": line["line_id"],
        "sku": line["sku"],
        **text,
        "context": {"requested": _text(requested), "available": _text(got)},
        "actions": actions,
    }


def _offer_alternatives(
    session: Session,
    issues: list[dict[str, Any]],
    short: list[tuple[dict[str, Any], Decimal]],
    wanted: dict[str, Decimal],
    backend: StockBackend,
) -> None:
    """Add "Replace with …" to short lines, for catalog alternatives with enough stock.

    Only on internal-pricing sessions: ``replace_sku`` on an external session
    needs a price the hub does not own.
    """
    if not short or session.pricing_policy != Channel.PricingPolicy.INTERNAL:
        return
    # Without omniman.contrib.catalog (and no CATALOG_BACKEND) the catalog is empty: no alternative.
    catalog = get_catalog()
    options = _alternatives(catalog, sorted({line["sku"] for line, _got in short}))
    alt_skus = {alt.sku for alts in options.values() for alt in alts}
    if not alt_skus:
        return
    # A read without locks: the offer is advisory, and replacing triggers a new check.
    free = backend.check_availability({sku: Decimal("1") for sku in alt_skus}, reference=session.session_key, lock=False)
    for issue, (line, _got) in zip(issues, short, strict=True):
        requested = Decimal(str(line["qty"]))
        for alt in options[line["sku"]]:
            if free.get(alt.sku, ZERO) - wanted.get(alt.sku, ZERO) < requested:
                continue
            op: dict[str, Any] = {"op": "replace_sku", "line_id": line["line_id"], "sku": alt.sku, "name": alt.name}
            if alt.price_q is not None:
                op["unit_price_q"] = alt.price_q
            issue["actions"].append({"id": f"replace:{alt.sku}", **texts.message(REPLACE_WITH, "label", name=alt.name), "ops": [op]})


def _alternatives(catalog, skus: list[str]) -> dict[str, list]:
    """Each SKU's catalog alternatives (other than itself), in the catalog's order.

    The catalog's ``alternatives_many`` when it has one (the model catalog: two
    queries for all the SKUs), else ``alternatives(sku)`` once per SKU.
    """
    many = getattr(catalog, "alternatives_many", None)
    if many is not None:
        return many(skus)
    return {sku: [alt for alt in catalog.alternatives(sku) if alt.sku != sku] for sku in skus}


# -- stock.commit / stock.release -------------------------------------------------


def _sold(order: Order) -> dict[str, Decimal]:
    rows = order.items.values("sku").annotate(total=Sum("qty")).order_by("sku")
    return {row["sku"]: row["total"] for row in rows}


def stock_committed(order: Order, *, actor: str, session_key: str, holds: list, sold: dict[str, Decimal]):
    return order.emit_event(
        STOCK_COMMITTED,
        actor=actor,
        payload={"session_key": session_key, "holds": holds, "sold": {sku: qty_to_str(qty) for sku, qty in sold.items()}},
    )


def stock_released(order: Order, *, actor: str, holds: list, restored: dict[str, Decimal]):
    return order.emit_event(
        STOCK_RELEASED,
        actor=actor,
        payload={"holds": holds, "restored": {sku: qty_to_str(qty) for sku, qty in restored.items()}},
    )


class StockCommitHandler(_StockDirectiveHandler):
    """After the commit: the sold units leave the stock, once.

    Payload ``{"order_ref", "channel_code", "session_key"}``. Takes the order's
    items off ``on_hand`` (whether or not the session held them: an external
    order may come without holds), fulfils the session's holds, writes
    ``OrderEvent("stock.committed")`` and applies
    ``order_flow.auto_transitions.on_stock_commit``. Does nothing for an order
    whose stock was committed, or already released (cancelled first).
    """

    topic = "stock.commit"

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        payload = message.payload or {}
        _required(payload, "order_ref")
        actor = ctx.get("actor") or f"directive:{self.topic}"
        order = lock_order(payload["order_ref"])
        if order.events.filter(type__in=(STOCK_COMMITTED, STOCK_RELEASED)).exists():
            return
        backend = get_stock_backend()
        sold = _sold(order)
        # Stock rows before hold rows, like the hold check: no lock-order deadlock.
        taken = backend.record_sale(order.ref, sold, actor=actor)
        session_key = order.session_key or payload.get("session_key") or ""
        fulfilled = _fulfill_holds(backend, session_key) if session_key else []
        stock_committed(order, actor=actor, session_key=session_key, holds=fulfilled, sold=taken)
        apply_auto_transition(order, "on_stock_commit", actor=actor)


def _fulfill_holds(backend: StockBackend, reference: str) -> list[int]:
    """Turn ``reference``'s active holds into a sale; their ids (SKU order)."""
    fulfill = getattr(backend, "fulfill_holds_for_reference", None)
    if fulfill is not None:
        return list(fulfill(reference))
    return [hold.id for hold in backend.holds_for_reference(reference) if backend.fulfill_hold(hold.id)]


class StockReleaseHandler(_StockDirectiveHandler):
    """On cancellation (``order_flow.on_enter``): free the holds, put sold units back, once.

    Payload ``{"order_ref", "from", "to"}``. Releases the session's active
    holds, restores what ``stock.commit`` took, and writes
    ``OrderEvent("stock.released")`` — which also tells a late ``stock.commit``
    to do nothing.
    """

    topic = "stock.release"

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        payload = message.payload or {}
        _required(payload, "order_ref")
        actor = ctx.get("actor") or f"directive:{self.topic}"
        order = lock_order(payload["order_ref"])
        if order.events.filter(type=STOCK_RELEASED).exists():
            return
        backend = get_stock_backend()
        restored = backend.restore_sale(order.ref, actor=actor)
        released = backend.release_holds_for_reference(order.session_key) if order.session_key else []
        stock_released(order, actor=actor, holds=released, restored=restored)


class StockReleaseSessionHandler(_StockDirectiveHandler):
    """When a session is abandoned (channel ``config["on_abandon"]``): free its holds at once.

    Payload ``{"session_key", "channel_code"}``. Releasing is idempotent: a
    second run finds no active hold. Without it the holds simply expire.
    """

    topic = "stock.release_session"

    def handle(self, *, message, ctx: dict[str, Any]) -> None:
        payload = message.payload or {}
        _required(payload, "session_key")
        session = Session.objects.filter(session_key=payload["session_key"]).only("state").first()
        if session is None or session.state == Session.State.OPEN:
            return  # reopened sessions don't exist; an open one keeps its holds
        get_stock_backend().release_holds_for_reference(payload["session_key"])


HANDLERS = (StockHoldHandler(), StockCommitHandler(), StockReleaseHandler(), StockReleaseSessionHandler())

__all__ = [
    "StockHoldHandler",
    "StockCommitHandler",
    "StockReleaseHandler",
    "StockReleaseSessionHandler",
    "HANDLERS",
    "hold_and_check",
    "STOCK_COMMITTED",
    "STOCK_RELEASED",
]
