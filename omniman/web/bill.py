"""POS settle screens: the bill, the tender (cash, card, Pix, gateway), split, tip, discount, void, write-off, close.

Each view parses a form (``omniman.web.forms``), makes one service call
(``BillService``/``PaymentService``/``TableService``) and renders the bill.
Like the cart, the bill screen is stale-safe: every form carries the bill's
``rev`` (passed as ``expected_rev``: a bill changed on another screen answers
409 with the fresh bill, the typed values kept) and a payment form carries an
idempotency key rendered into it (a double tap records one payment). An HTMX
POST re-renders the bill (``#bill``); without JavaScript a POST redirects
(post/redirect/get) or, refused, renders the page with the form as typed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from omniman import pix, registry
from omniman.channel_config import payment_methods, payments_config
from omniman.exceptions import BillError, OmnimanError, ValidationError
from omniman.models import Bill, Channel
from omniman.roles import MANAGER, has_role, roles_of
from omniman.services import BillService, CommitService, PaymentService, TableService
from omniman.services import bill_view as bill_selector
from omniman.web import forms, selectors
from omniman.web.errors import banner_for, status_for
from omniman.web.shifts import REGISTER_SESSION_KEY
from omniman.web.pos import pos_required, _channel, _session_on_screen
from omniman.web.roles import actor, role_required

# Methods the screen knows how to take (a channel enables some of them in ``config["payments"]["methods"]``).
METHODS = ("cash", "card", "pix", "gateway")
# Card brands offered when the channel lists none.
DEFAULT_BRANDS = ["visa", "mastercard", "elo", "amex", "hipercard"]
BRAND_LABELS = {"visa": "Visa", "mastercard": "Mastercard", "elo": "Elo", "amex": "Amex", "hipercard": "Hipercard", "diners": "Diners"}
# Notes a quick-tender button may offer (in major units), when the channel lists none
# (``config["payments"]["quick_tender"]``, in quanta, replaces them).
DEFAULT_NOTES = [2, 5, 10, 20, 50, 100, 200]
QUICK_TENDERS = 3  # "next note up" buttons beside "Exact"
TIP_PERCENTS = ("10", "12", "15")


# -- what the screen shows ---------------------------------------------------------------


@dataclass
class Round:
    order_ref: str
    status: str
    total_q: int = 0
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TenderPanel:
    """The right-hand panel: which part is being paid, by which method, how much, the tip, the Pix QR."""

    method: str
    methods: list[str]
    part: int | None
    amount_q: int  # what this payment applies to the bill (the due, or the part's due)
    tip_q: int
    tip_percent: str
    quick: list[int]  # quick-tender amounts (quanta), the first one is "exact"
    brands: list[str]
    pix_payload: str = ""
    pix_svg: str = ""
    pix_txid: str = ""
    idempotency_key: str = ""

    @property
    def charge_q(self) -> int:
        """What the customer hands over (or the terminal charges): the amount plus the tip."""
        return self.amount_q + self.tip_q


def _payments_config(channel: Channel) -> dict[str, Any]:
    return payments_config(channel.config)


def channel_methods(channel: Channel) -> list[str]:
    """The methods the channel takes (``config["payments"]["methods"]``, default cash and card), as the kernel reads them."""
    return [m for m in payment_methods(channel.config) if m in METHODS]


def quick_tenders(amount_q: int, currency_notes_q: list[int], count: int = QUICK_TENDERS) -> list[int]:
    """Exact, then the next ``count`` amounts a customer is likely to hand over: the smallest notes above the
    amount, and round sums of them (a R$ 37.40 bill: exact, 40, 50, 100)."""
    options = [amount_q]
    notes = sorted(n for n in currency_notes_q if n > 0)
    candidates = set()
    for note in notes:
        candidates.add(-(-amount_q // note) * note)  # the amount rounded up to this note
    for value in sorted(candidates):
        if value > amount_q and value not in options:
            options.append(value)
        if len(options) > count:
            break
    return options


def tip_for(amount_q: int, percent: str) -> int:
    """``percent`` of ``amount_q``, half up to the quantum (what the screen shows is what is recorded)."""
    return int((Decimal(amount_q) * Decimal(percent) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- helpers --------------------------------------------------------------------------------


def _bill_url(channel_code: str, bill_ref: str) -> str:
    return reverse("pos:bill", args=[channel_code, bill_ref])


def _load(channel_code: str, bill_ref: str):
    """The bill's view (orders, lines, adjustments, payments, splits, totals), on this channel; 404 otherwise."""
    try:
        view = bill_selector(bill_ref)
    except (Bill.DoesNotExist, OmnimanError):
        raise Http404("No such bill") from None
    if view is None or view.bill.channel.code != channel_code:
        raise Http404("No such bill")
    return view


def _rev_fields(request, view) -> str:
    return format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}"><input type="hidden" name="rev" value="{}">',
        get_token(request),
        view.rev,
    )


def _rounds(view, guests: dict[str, int] | None = None) -> list[Round]:
    """The bill's lines by round (order), each with the guest a split form gave it (``guests``) and the part of
    the current split by items that pays it (``part_label``)."""
    rounds = {order.ref: Round(order_ref=order.ref, status=order.status, total_q=order.charged_q) for order in view.orders}
    payers: dict[str, list[str]] = {}
    for part in view.splits or []:
        for entry in part.get("lines") or []:
            payers.setdefault(f"{entry.get('order_ref')}:{entry.get('line_id')}", []).append(part.get("label", ""))
    owner = {key: labels[0] for key, labels in payers.items() if len(labels) == 1}  # the rest's lines are shared
    for line in view.lines:
        ref = line["order_ref"]
        voided = line.get("voided_qty") or 0
        shown = {
            **line,
            "part_label": owner.get(f"{ref}:{line['line_id']}", ""),
            "guest": (guests or {}).get(f"{ref}:{line['line_id']}"),
            "voided": bool(voided) and voided >= line["qty"],
            "part_voided": voided if voided and voided < line["qty"] else None,
        }
        rounds.setdefault(ref, Round(order_ref=ref, status="")).lines.append(shown)
    return [r for r in rounds.values() if r.lines]


def _typed_guests(params) -> dict[str, int]:
    guests = {}
    for key, value in params.items():
        if key.startswith("guest-") and str(value).isdigit():
            guests[key[len("guest-") :]] = int(value)
    return guests


def _url_or_empty(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _part_due(view, part: int | None) -> int:
    if part is None:
        return view.due_q
    for split in view.splits or []:
        if split.get("index") == part:
            return max(0, int(split.get("amount_q", 0)) - int(split.get("paid_q", 0)))
    return view.due_q


def _first_open_part(view) -> int | None:
    for split in view.splits or []:
        if int(split.get("amount_q", 0)) > int(split.get("paid_q", 0)):
            return split.get("index")
    return None


def _panel(view, params) -> TenderPanel:
    """The tender panel for ``params`` (the query string, or a refused form's data): method, part, tip."""
    channel = view.bill.channel
    methods = channel_methods(channel)
    method = params.get("method") or ""
    if method not in methods:
        method = methods[0] if methods else "cash"
    try:
        part = int(params["part"]) if params.get("part") not in (None, "") else _first_open_part(view)
    except (TypeError, ValueError):
        part = _first_open_part(view)
    amount_q = _part_due(view, part)
    tip_percent = params.get("tip_percent") or ""
    tip_percent = forms.PercentField(required=False).clean(tip_percent) if _valid_percent(tip_percent) else ""
    tip_q = tip_for(amount_q, tip_percent) if tip_percent else 0
    config = _payments_config(channel)
    notes_q = [n for n in config.get("quick_tender") or [] if isinstance(n, int) and not isinstance(n, bool) and n > 0]
    if not notes_q:
        notes_q = [note * 10 ** _minor(channel.currency) for note in DEFAULT_NOTES]
    panel = TenderPanel(
        method=method,
        methods=methods,
        part=part,
        amount_q=amount_q,
        tip_q=tip_q,
        tip_percent=tip_percent or "",
        quick=quick_tenders(amount_q + tip_q, notes_q),
        brands=list(config.get("card_brands") or DEFAULT_BRANDS),
        idempotency_key=uuid.uuid4().hex,
    )
    if method == "pix" and panel.charge_q > 0:
        panel.pix_txid = _pix_txid(view, part)
        panel.pix_payload, panel.pix_svg = _pix(view, panel.charge_q, panel.pix_txid)
    return panel


def _pix_txid(view, part: int | None) -> str:
    """The Pix transaction id: the bill's ref (and part), letters and digits only, at most 25 (BR Code field 62-05)."""
    txid = view.bill.ref.replace("-", "") + (f"P{part + 1}" if part is not None else "")
    return txid[-25:]


def _valid_percent(text: str) -> bool:
    try:
        forms.PercentField(required=False).clean(text)
    except Exception:  # noqa: BLE001 - a bad tip % in a URL just shows no tip
        return False
    return True


def _minor(currency: str) -> int:
    from omniman.monetary import minor_units

    return minor_units(currency)


def _pix(view, amount_q: int, txid: str) -> tuple[str, str]:
    """The Pix "copia e cola" payload for ``amount_q`` and its QR (inline SVG), from the channel's Pix key;
    empty when the channel has none (the panel says so)."""
    try:
        payload = pix.brcode_for(view.bill.channel.config, amount_q=amount_q, txid=txid)
    except ValidationError:
        return "", ""
    return payload, pix.qr_svg(payload, title=_("Pix QR code"))


def _context(request, view, *, params=None, **extra) -> dict[str, Any]:
    channel = view.bill.channel
    bill = view.bill
    params = params if params is not None else request.GET
    split_editor = params.get("split") == "items" or (extra.get("editor") == "split" and request.POST.get("mode") == "items")
    tab = selectors.table_tab(channel, bill.handle_type, bill.handle_ref) if bill.handle_ref else None
    context = {
        "view": view,
        "bill": bill,
        "channel": channel,
        "rounds": _rounds(view, _typed_guests(request.POST) if extra.get("editor") == "split" else None),
        "split_editor": split_editor,
        "guest_numbers": range(1, max(4, min(20, len(view.lines))) + 1),
        "places": _minor(bill.currency),
        "receipt_url": _url_or_empty("pos:receipt", channel.code, bill.ref),
        "preview_url": _url_or_empty("pos:receipt", channel.code, bill.ref) + "?preview=1" if bill.status == Bill.Status.OPEN else "",
        "tab_url": reverse("pos:session", args=[channel.code, tab.session_key]) if tab and tab.state == "open" else "",
        "panel": _panel(view, params),
        "base": _bill_url(channel.code, view.bill.ref),
        "rev_fields": _rev_fields(request, view),
        "is_manager": has_role(request.user, MANAGER),
        "tip_percents": TIP_PERCENTS,
        "settled": view.bill.status != Bill.Status.OPEN,
        "is_table": bool(view.bill.handle_ref) and view.bill.handle_type == "table",
        **extra,
    }
    context["breakdown"] = _breakdown(view)
    labels = {part.get("index"): part.get("label", "") for part in view.splits or []}
    refunded: dict[int, int] = {}
    for item in view.refunds:
        refunded[item.payment_id] = refunded.get(item.payment_id, 0) + item.amount_q
    for payment in view.payments:
        payment.refunded_q = refunded.get(payment.pk, 0)
        payment.refundable_q = max(payment.amount_q - payment.refunded_q, 0)
    context["payment_rows"] = [(payment, labels.get(payment.part, "")) for payment in view.payments]
    context["refund_key"] = uuid.uuid4().hex
    paid = params.get("paid") or extra.get("paid_id")
    if paid:
        context["result"] = next((p for p in view.payments if str(p.pk) == str(paid)), None)
    return context


def _breakdown(view) -> dict[str, Any]:
    """How the total is made: the rounds' items, their service charge and discounts (as each round charged
    them), and the bill's own adjustments (discounts, voids, write-off) — the receipt's subtotal and lines."""
    totals = [order.totals for order in view.orders]
    percents = {str(t.get("service_percent")) for t in totals if int(t.get("service_q") or 0)}
    return {
        "items_q": sum(int(t.get("items_q") or 0) for t in totals),
        "service_q": sum(int(t.get("service_q") or 0) for t in totals),
        "service_percent": percents.pop() if len(percents) == 1 else "",
        "order_discount_q": sum(int(t.get("discount_q") or 0) for t in totals),
        "bill_adjustments_q": sum(int(a.get("amount_q") or 0) for a in view.adjustments),
    }


def _page(request, view, *, status: int = 200, **extra) -> HttpResponse:
    return render(request, "pos/bill.html", _context(request, view, **extra), status=status)


def _region(request, view, *, status: int = 200, **extra) -> HttpResponse:
    return render(request, "pos/bill.html#bill", _context(request, view, **extra), status=status)


def _answer(request, view, *, status: int = 200, **extra) -> HttpResponse:
    if request.htmx:
        return _region(request, view, status=status, **extra)
    return _page(request, view, status=status, **extra)


def _done(request, channel_code: str, bill_ref: str, *, query: dict | None = None, **extra) -> HttpResponse:
    """After a successful change: the fresh bill (HTMX) or a redirect to it."""
    if not request.htmx:
        url = _bill_url(channel_code, bill_ref)
        return redirect(f"{url}?{urlencode(query)}" if query else url)
    return _region(request, _load(channel_code, bill_ref), params=query or {}, **extra)


BILL_MESSAGES = {
    "stale_bill": gettext_lazy("This bill changed on another screen. Nothing was recorded — here is the current bill."),
    "already_paid": gettext_lazy("This bill is already paid. Nothing was recorded — here is the current bill."),
    "overpayment": gettext_lazy("That is more than what is due."),
    "insufficient_tender": gettext_lazy("The cash received is less than the amount and the tip."),
    "reference_required": gettext_lazy("Type the card terminal's authorization code."),
    "approval_required": gettext_lazy("This needs a manager: the manager types their username and PIN below."),
    "approval_failed": gettext_lazy("The manager's username or PIN is not right (or the PIN is locked for a few minutes)."),
}


# A manager's approval is asked for (or was refused): the form comes back with the approval box.
APPROVAL_CODES = ("approval_required", "approval_failed")


def _banner(error: OmnimanError) -> str:
    template = BILL_MESSAGES.get(error.code)
    return str(template) if template else banner_for(error, session_word=_("bill"))


def _failure(request, channel_code: str, bill_ref: str, error: OmnimanError, *, form=None, editor: str = "") -> HttpResponse:
    """A refused change: nothing was recorded. The fresh bill, the banner, and the form as it was typed."""
    status = status_for(error, htmx_form=True)
    if error.code in APPROVAL_CODES:
        status = 422  # the form comes back asking for a manager's PIN: input still needed, not a dead end
    view = _load(channel_code, bill_ref)
    fld = (error.context or {}).get("field")
    if form is not None and form.is_bound and fld in form.fields and not form.has_error(fld) and status != 409:
        form.add_error(fld, error.message)
    extra = {
        "banner": _banner(error),
        "banner_kind": "conflict" if status == 409 or error.code in APPROVAL_CODES else "error",
        "form": form,
        "editor": editor,
        "approval": error.code in APPROVAL_CODES,
    }
    params = request.POST if editor == "tender" else request.GET
    return _answer(request, view, status=status, params=params, **extra)


def _refused(request, view, form, *, editor: str) -> HttpResponse:
    """An invalid form: 422 with its errors in place — or, from a screen that is out of date, 409."""
    rev = form.cleaned_data.get("rev")
    if rev is not None and rev != view.rev:
        return _failure(request, view.bill.channel.code, view.bill.ref, _StaleBill(view), form=form, editor=editor)
    error = ValidationError("invalid_form", form.refusal(), {"fields": sorted(form.errors)})
    return _failure(request, view.bill.channel.code, view.bill.ref, error, form=form, editor=editor)


class _StaleBill(BillError):
    """The screen's rev is not the bill's: the same answer the services give (409 ``stale_bill``)."""

    def __init__(self, view):
        super().__init__("stale_bill", _("This bill changed on another screen."), {"bill_ref": view.bill.ref, "rev": view.rev})


def _approval(form) -> dict[str, Any]:
    """A manager's username and PIN typed on the screen → ``approved_by``/``approver_roles`` for the service."""
    username, pin = form.cleaned_data.get("approver"), form.cleaned_data.get("pin")
    if not username:
        return {}
    from omniman import approvals  # h-money's PIN check (lands with the merge of h-money)

    approver = approvals.verify_pin(username, pin)  # approval_failed: one code whatever was wrong
    return {"approved_by": approver.username, "approver_roles": approver.roles}


# -- opening a bill ------------------------------------------------------------------------


@require_POST
@pos_required
def open_for_session(request, channel_code, session_key):
    """The table's (or handle's) bill: every unpaid round of the handle; get-or-open (the tab itself is not
    changed, so its rev is not checked)."""
    session = _session_on_screen(channel_code, session_key)
    if not session.handle_ref:
        raise Http404("A basket is paid with Pay")
    try:
        bill = BillService.open(
            channel_code, handle_type=session.handle_type, handle_ref=session.handle_ref, actor=actor(request)
        )
    except OmnimanError as exc:
        messages.error(request, exc.message)
        url = reverse("pos:session", args=[channel_code, session_key])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    url = _bill_url(channel_code, bill.ref)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@pos_required
def pay(request, channel_code, session_key):
    """A basket's "Pay": place the order (the same idempotent commit as "Place order") and open its bill."""
    from omniman.web import pos

    session = _session_on_screen(channel_code, session_key)
    channel = session.channel
    form = forms.CommitForm(request.POST)
    if not form.is_valid():
        return pos._refused(request, session, form)
    who = actor(request)
    try:
        result = CommitService.commit(
            session_key,
            channel.code,
            idempotency_key=form.cleaned_data["idempotency_key"],
            ctx={"actor": who},
            actor=who,
            expected_rev=form.cleaned_data["rev"],
        )
        bill = BillService.open(channel.code, order_ref=result["order_ref"], actor=who)
    except OmnimanError as exc:
        return pos._failure(request, channel, session_key, exc)
    ticket = registry.tickets_for([result["order_ref"]]).get(result["order_ref"])
    text = _("%(order)s %(ref)s placed.") % {"order": channel.term("order", "Order"), "ref": result["order_ref"]}
    if ticket:
        text = _("%(order)s %(ref)s · pickup #%(ticket)s.") % {
            "order": channel.term("order", "Order"),
            "ref": result["order_ref"],
            "ticket": ticket,
        }
    messages.success(request, text)
    url = _bill_url(channel.code, bill.ref)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# -- the bill screen -----------------------------------------------------------------------


@require_GET
@pos_required
@vary_on_headers("HX-Request", "HX-Target")
def bill_view(request, channel_code, bill_ref):
    """The bill; ``?method=&part=&tip_percent=`` choose the tender panel (an HTMX GET redraws just it)."""
    _channel(channel_code)
    view = _load(channel_code, bill_ref)
    if request.htmx and request.htmx.target == "tender":
        return render(request, "pos/bill.html#tender", _context(request, view))
    if request.htmx and request.htmx.target == "bill":
        return _region(request, view)
    return _page(request, view)


@require_POST
@pos_required
def tender(request, channel_code, bill_ref):
    """Record one payment (cash, card, Pix, gateway) on the bill or one part of its split."""
    view = _load(channel_code, bill_ref)
    form = forms.TenderForm(request.POST, currency=view.bill.currency)
    if not form.is_valid():
        return _refused(request, view, form, editor="tender")
    data = form.cleaned_data
    amount_q = data["amount"] if data["amount"] is not None else _part_due(view, data["part"])
    tip_q = data["tip"] if data["tip"] is not None else (tip_for(amount_q, data["tip_percent"]) if data["tip_percent"] else 0)
    tendered_q = data["tendered"]
    if data["method"] == "cash" and tendered_q is None:
        tendered_q = amount_q + tip_q  # no amount typed: the exact amount
    try:
        result = PaymentService.tender(
            bill_ref,
            method=data["method"],
            amount_q=data["amount"],
            tendered_q=tendered_q,
            tip_q=tip_q,
            reference=data["reference"],
            brand=data["brand"],
            part=data["part"],
            expected_rev=data["rev"],
            idempotency_key=data["idempotency_key"],
            actor=actor(request),
            roles=roles_of(request.user),
            register=request.session.get(REGISTER_SESSION_KEY, ""),
        )
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="tender")
    return _done(request, channel_code, bill_ref, query={"paid": result.payment.pk}, paid_id=result.payment.pk)


def _groups(request, view) -> tuple[list[list[dict[str, str]]], str]:
    """Split by items: each line's ``guest-<order_ref>:<line_id>`` (1..n; empty or 0 = the rest) → the groups."""
    known = {f"{line['order_ref']}:{line['line_id']}" for line in view.lines}
    guests: dict[int, list[dict[str, str]]] = {}
    for key, value in request.POST.items():
        if not key.startswith("guest-") or not value or value == "0":
            continue
        target = key[len("guest-") :]
        if target not in known:
            return [], _("A line of this split is no longer on the bill.")
        try:
            guest = int(value)
        except ValueError:
            return [], _("Choose a guest for each line, or leave it for the rest.")
        if not 1 <= guest <= 20:
            return [], _("Choose a guest for each line, or leave it for the rest.")
        order_ref, _sep, line_id = target.partition(":")
        guests.setdefault(guest, []).append({"order_ref": order_ref, "line_id": line_id})
    return [guests[g] for g in sorted(guests)], ""


@require_POST
@pos_required
def split(request, channel_code, bill_ref):
    view = _load(channel_code, bill_ref)
    form = forms.SplitForm(request.POST)
    if not form.is_valid():
        return _refused(request, view, form, editor="split")
    data = form.cleaned_data
    kwargs: dict[str, Any] = {"mode": data["mode"]}
    if data["mode"] == "equal":
        kwargs["parts"] = data["parts"]
    elif data["mode"] == "items":
        groups, problem = _groups(request, view)
        if not groups and not problem:
            problem = _("Choose the guest of at least one line.")
        if problem:
            form.add_error(None, problem)
            return _refused(request, view, form, editor="split")
        kwargs["groups"] = groups
        if data["rest_parts"]:
            kwargs["rest_parts"] = data["rest_parts"]
    try:
        BillService.split(bill_ref, expected_rev=data["rev"], actor=actor(request), **kwargs)
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="split")
    return _done(request, channel_code, bill_ref)


@require_POST
@pos_required
def discount(request, channel_code, bill_ref):
    """A discount on the bill or a line, % or amount, with a reason; over the channel's threshold a manager's PIN."""
    view = _load(channel_code, bill_ref)
    form = forms.BillDiscountForm(request.POST, currency=view.bill.currency)
    if not form.is_valid():
        return _refused(request, view, form, editor="discount")
    data = form.cleaned_data
    try:
        BillService.discount(
            bill_ref,
            expected_rev=data["rev"],
            percent=data["percent"],
            amount_q=data["amount"],
            order_ref=data["order_ref"],
            line_id=data["line_id"],
            reason=data["reason"],
            actor=actor(request),
            roles=roles_of(request.user),
            **_approval(form),
        )
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="discount")
    return _done(request, channel_code, bill_ref)


@require_POST
@pos_required
def remove_adjustment(request, channel_code, bill_ref, adjustment_id):
    view = _load(channel_code, bill_ref)
    form = forms.RemoveAdjustmentForm(request.POST)
    if not form.is_valid():
        return _refused(request, view, form, editor="adjustment")
    try:
        BillService.remove_adjustment(
            bill_ref,
            adjustment_id,
            expected_rev=form.cleaned_data["rev"],
            actor=actor(request),
            roles=roles_of(request.user),
            **_approval(form),
        )
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="adjustment")
    return _done(request, channel_code, bill_ref)


@require_POST
@role_required(MANAGER)
def void(request, channel_code, bill_ref):
    """Managers: void a sent line; the kitchen board shows VOID on its ticket."""
    view = _load(channel_code, bill_ref)
    form = forms.VoidForm(request.POST)
    if not form.is_valid():
        return _refused(request, view, form, editor="void")
    data = form.cleaned_data
    if not any(l["order_ref"] == data["order_ref"] and l["line_id"] == data["line_id"] for l in view.lines):  # noqa: E741
        raise Http404("No such line on this bill")
    if data["rev"] != view.rev:
        return _failure(request, channel_code, bill_ref, _StaleBill(view), form=form, editor="void")
    try:
        BillService.void_item(
            data["order_ref"], data["line_id"], reason=data["reason"], actor=actor(request), roles=roles_of(request.user)
        )
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="void")
    return _done(request, channel_code, bill_ref)


@require_POST
@role_required(MANAGER)
def refund(request, channel_code, bill_ref):
    """Managers: give back (part of) a payment of this bill — a gateway payment through its gateway; audited,
    idempotent by the form's key, and counted in the day's totals."""
    view = _load(channel_code, bill_ref)
    form = forms.RefundForm(request.POST, currency=view.bill.currency)
    if not form.is_valid():
        return _refused(request, view, form, editor="refund")
    data = form.cleaned_data
    if not any(payment.pk == data["payment"] for payment in view.payments):
        raise Http404("No such payment on this bill")
    try:
        PaymentService.refund(
            data["payment"], amount_q=data["amount"], reason=data["reason"], idempotency_key=data["idempotency_key"],
            actor=actor(request), roles=roles_of(request.user), register=request.session.get(REGISTER_SESSION_KEY, ""),
        )
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="refund")
    return _done(request, channel_code, bill_ref)


@require_POST
@role_required(MANAGER)
def write_off(request, channel_code, bill_ref):
    view = _load(channel_code, bill_ref)
    form = forms.WriteOffForm(request.POST)
    if not form.is_valid():
        return _refused(request, view, form, editor="write_off")
    try:
        BillService.write_off(
            bill_ref, expected_rev=form.cleaned_data["rev"], reason=form.cleaned_data["reason"],
            actor=actor(request), roles=roles_of(request.user),
        )
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="write_off")
    return _done(request, channel_code, bill_ref)


@require_POST
@pos_required
def close_table(request, channel_code, bill_ref):
    """Close the bill's table (its bill settled or written off); the kitchen's tickets are left as they are."""
    view = _load(channel_code, bill_ref)
    bill = view.bill
    form = forms.BillForm(request.POST)
    if not form.is_valid():
        return _refused(request, view, form, editor="close")
    tab = selectors.table_tab(bill.channel, bill.handle_type, bill.handle_ref)
    if tab is None:
        raise Http404("No tab for this table")
    try:
        TableService.close(tab.session_key, channel_code, actor=actor(request), roles=roles_of(request.user))
    except OmnimanError as exc:
        return _failure(request, channel_code, bill_ref, exc, form=form, editor="close")
    messages.success(request, _("Table %(table)s closed.") % {"table": bill.handle_ref})
    url = reverse("pos:channel", args=[channel_code])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


__all__ = ["channel_methods", "quick_tenders", "tip_for"]
