"""POS screens: tabs, baskets and drafts on one set of views.

Each view parses input, makes one service (or selector) call and renders. A
mutating form carries the session's ``rev``; it is passed as ``expected_rev``
so a stale screen never overwrites newer work (409 with the fresh cart). A
non-HTMX POST redirects (post/redirect/get); an HTMX POST re-renders the cart.
"""

from __future__ import annotations

from django.contrib import messages
from django.middleware.csrf import get_token
from django.utils.html import format_html
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget, trigger_client_event

from omniman import engine, registry
from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog.services import CatalogOrderingService
from omniman.exceptions import OmnimanError, SessionError, ValidationError
from omniman.models import Channel, Session
from omniman.approvals import has_pin, set_pin, verify_pin
from omniman.services import (
    AdjustmentService,
    CommitService,
    KitchenService,
    ModifyService,
    ResolveService,
    SessionService,
    TableService,
    sold_out_skus,
)
from omniman.web import forms, selectors
from omniman.web.errors import banner_for, status_for
from omniman.roles import MANAGER, POS, has_role, roles_of
from omniman.web.roles import actor, role_required

pos_required = role_required(POS, MANAGER)


def _channel(code: str) -> Channel:
    channel = selectors.channel_or_none(code)
    if channel is None:
        raise Http404("No such channel")
    return channel


def _session(channel: Channel, session_key: str) -> Session:
    """The session read again (after a change, a refusal), its channel already known."""
    return _session_on_screen(channel.code, session_key)


def _session_on_screen(channel_code: str, session_key: str) -> Session:
    """The session and its channel in one query (404 for an unknown or inactive channel, or another channel's key)."""
    session = selectors.session_on_screen(channel_code, session_key)
    if session is None:
        raise Http404("No such session")
    return session


def _session_url(session: Session) -> str:
    if session.pk is None:  # a basket before its first item (omniman.web.basket): its forms post there
        return reverse("pos:new", args=[session.channel.code])
    return reverse("pos:session", args=[session.channel.code, session.session_key])


def _word(channel: Channel) -> str:
    return channel.term("session", "Basket" if not channel.pricing_policy == "external" else "Draft")


# -- lists -------------------------------------------------------------------------


@require_GET
@pos_required
def index(request):
    channels = selectors.active_channels()
    if len(channels) == 1:
        return redirect("pos:channel", channels[0].code)
    return render(request, "pos/index.html", {"channels": channels})


@require_GET
@pos_required
@vary_on_headers("HX-Request", "HX-Target")
def channel_view(request, channel_code):
    channel = _channel(channel_code)
    query = request.GET.get("q", "")[:100]
    context = {"channel": channel, "sessions": selectors.open_sessions(channel, query), "query": query}
    if request.htmx and request.htmx.target == "sessions":
        return render(request, "pos/channel.html#sessions", context)
    return render(request, "pos/channel.html", context)


@require_POST
@pos_required
def open_session(request, channel_code):
    """Get-or-open: ``table`` opens (or goes to) that table's tab; without it, a new basket."""
    channel = _channel(channel_code)
    form = forms.OpenForm(request.POST)
    if not form.is_valid():
        context = {"channel": channel, "sessions": selectors.open_sessions(channel), "query": "", "open_form": form}
        return render(request, "pos/channel.html", context, status=422)
    table = form.cleaned_data["table"]
    if not table:  # a basket is opened by its first item (omniman.web.basket), never empty
        url = reverse("pos:new", args=[channel.code])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    try:
        session = SessionService.open_session(channel.code, handle_type="table", handle_ref=table, actor=actor(request))
    except OmnimanError as exc:
        messages.error(request, exc.message)
        return redirect("pos:channel", channel.code)
    url = _session_url(session)
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# -- the session screen --------------------------------------------------------------


def _context(request, session: Session, **extra):
    screen = selectors.session_screen(session)
    context = {
        "screen": screen,
        "session": session,
        "base": _session_url(session),  # the actions' URLs hang off it: no reverse() per line
        "rev_fields": _rev_fields(request, session),
        "channel": session.channel,
        "word": _word(session.channel),
        "is_manager": has_role(request.user, MANAGER),
        "can_pay": session.channel.pricing_policy != "external",
        **extra,
    }
    return context


def _rev_fields(request, session: Session):
    """Every mutating form's hidden fields, built once: the CSRF token and the rev it was rendered at."""
    return format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}"><input type="hidden" name="rev" value="{}">',
        get_token(request),
        session.rev,
    )


def _grid(request) -> dict:
    """The product grid: the categories and the products of the one shown (the first by default)."""
    catalog = get_catalog()
    categories = catalog.list_categories()
    category = request.GET.get("category") or (categories[0].code if categories else "")
    products = catalog.search("", category=category or None, limit=selectors.GRID_SIZE)
    return {
        "categories": categories,
        "category": category,
        "products": products,
        # Out of stock (the stock app, for the tiles shown) or 86'd by the kitchen (one query).
        "sold_out": selectors.sold_out([item.sku for item in products]) | sold_out_skus(),
    }


def _page(request, session: Session, *, status: int = 200, **extra):
    context = _context(request, session, **_grid(request), **extra)
    return render(request, "pos/session.html", context, status=status)


# The rev a cart answer shows: app.js drops an answer older than what the screen
# already shows (a check that raced a change), so the screen only moves forward.
REV_HEADER = "X-Omniman-Rev"


def _cart(request, session: Session, *, status: int = 200, **extra) -> HttpResponse:
    response = render(request, "pos/session.html#cart", _context(request, session, **extra), status=status)
    response[REV_HEADER] = str(session.rev)
    return response


@require_GET
@pos_required
@vary_on_headers("HX-Request", "HX-Target")
def session_view(request, channel_code, session_key):
    session = _session_on_screen(channel_code, session_key)
    if not session.is_open and session.handle_ref:
        # A round already sent, opened again by its URL (a reload, a stale tab): the table goes on in its open round.
        current = selectors.open_session_of_handle(session.channel, session.handle_type, session.handle_ref)
        if current is not None:
            url = reverse("pos:session", args=[session.channel.code, current.session_key])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    if request.htmx and request.htmx.target == "cart":
        return _cart(request, session)
    if request.htmx and request.htmx.target == "grid":
        return _page_partial_grid(request, session)
    return _page(request, session, follow_checks=True)  # checks still pending run as the screen opens


def _page_partial_grid(request, session):
    context = {"session": session, "channel": session.channel, "base": _session_url(session), **_grid(request)}
    return render(request, "pos/session.html#grid", context)


@require_GET
@pos_required
def edit_line(request, channel_code, session_key, line_id):
    """A line's note (and, for managers, price) forms: in place with HTMX, else the page with them open."""
    session = _session_on_screen(channel_code, session_key)
    item = next((i for i in session.items if i["line_id"] == line_id), None)
    if item is None:
        raise Http404("No such line")
    if not request.htmx:
        return _page(request, session, editing=line_id)
    context = {
        "item": item,
        "session": session,
        "base": _session_url(session),
        "rev_fields": _rev_fields(request, session),
        "is_manager": has_role(request.user, MANAGER),
    }
    return render(request, "pos/session.html#line_editor", context)


@require_GET
@pos_required
def sold_out(request, channel_code):
    """The SKUs shown sold out (86 or no stock), polled by the POS every 2 s: its tiles follow within a poll."""
    skus = sorted(selectors.unavailable_skus())
    response = render(request, "pos/session.html#sold_out", {"sold_out_list": skus, "sold_out": set(), "channel_code": channel_code})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@pos_required
def search(request, channel_code, session_key):
    session = _session_on_screen(channel_code, session_key)
    channel = session.channel
    query = request.GET.get("q", "").strip()[:64]
    results = get_catalog().search(query, limit=selectors.SEARCH_SIZE) if query else []
    context = {"session": session, "channel": channel, "base": _session_url(session), "results": results, "query": query}
    return render(request, "pos/session.html#results", context)


def _respond(
    request, session: Session, *, event: str | None = None, event_detail: dict | None = None, before: Session | None = None, **extra
) -> HttpResponse:
    """After a successful change: what changed on the screen (HTMX) or a redirect to the page.

    Given the session as the screen showed it (``before``, the rev the form
    carried), only the regions that changed are sent (:func:`_delta`);
    otherwise the whole cart.
    """
    if not request.htmx:
        return redirect(_session_url(session))
    session = _checked(session)
    response = (before is not None and _delta(request, before, session, **extra)) or _cart(request, session, **extra)
    if event:
        trigger_client_event(response, event, event_detail or {})
    return response


def _checked(session: Session) -> Session:
    """The session as its checks left it (``SessionService.as_checked``), read again as the screen reads it.

    The item and its stock answer in one round trip; a check that runs
    elsewhere (a worker's topic) is still pending: the answer's footer asks
    for it (``follow_checks``: ``check_now`` with ``auto=1``).
    """
    return SessionService.as_checked(
        session, reread=lambda stale: selectors.session_on_screen(stale.channel.code, stale.session_key)
    )


# Above this many changed lines the whole cart is the smaller answer.
DELTA_MAX_LINES = 10
# Session data the cart shows outside the regions a delta swaps.
_DELTA_DATA = ("checks", "issues", "totals")


def _line_states(session: Session) -> dict[str, tuple]:
    """Each line as the cart draws it: the stored line and whether an issue points at it."""
    flagged = {issue.get("line_id") for issue in (session.data or {}).get("issues") or []}
    return {line["line_id"]: (line, line["line_id"] in flagged) for line in session.lines}


def _delta(request, before: Session, after: Session, **extra) -> HttpResponse | None:
    """The regions a change touched, as out-of-band swaps; ``None`` when only the whole cart shows it right.

    ``before`` is the session at the rev the screen showed (the service refused
    any other), so the screen plus these swaps is exactly the cart at
    ``after.rev``: the head (rev), issues, footer (totals, checks, commit) and
    banner always, and the lines that changed, went or came. Untouched lines keep
    their forms; ``static/js/app.js`` sends the head's rev with every cart form.
    A change of line order, an empty cart on either side, or session data shown
    elsewhere (customer, notes) takes the whole cart.
    """
    old, new = _line_states(before), _line_states(after)
    if not old or not new:
        return None
    other = lambda s: {k: v for k, v in (s.data or {}).items() if k not in _DELTA_DATA}  # noqa: E731
    if other(before) != other(after):
        return None
    kept = [line_id for line_id in new if line_id in old]
    if kept != [line_id for line_id in old if line_id in new]:
        return None
    appended = [line_id for line_id in new if line_id not in old]
    if list(new) != kept + appended:  # new lines only at the end
        return None
    # A line with an issue mark on either side is sent again: a check answered in
    # between (a follow-up racing this change) may have marked it on the screen.
    changed = [line_id for line_id in kept if new[line_id] != old[line_id] or old[line_id][1] or new[line_id][1]]
    removed = [line_id for line_id in old if line_id not in new]
    if len(changed) + len(appended) + len(removed) > DELTA_MAX_LINES:
        return None
    context = _context(request, after, oob=True, removed=removed, **extra)
    items = {item["line_id"]: item for item in context["screen"].items}
    context["changed"] = [items[line_id] for line_id in changed]
    context["appended"] = [items[line_id] for line_id in appended]
    response = render(request, "pos/session.html#cart_delta", context)
    response[REV_HEADER] = str(after.rev)
    return reswap(response, "none")  # everything in it is out of band


def _failure(
    request, channel: Channel, session_key: str, error: OmnimanError, *, line_id: str = "", form=None, editor: str = ""
) -> HttpResponse:
    """A refused change: nothing was applied; show the current session and say why.

    The form comes back as the person filled it (``editor`` names the one to
    reopen: ``note``/``price`` on ``line_id``, or ``customer``), with the
    error next to its field when the kernel named one.
    """
    status = status_for(error, htmx_form=True)
    session = _session(channel, session_key)
    banner = banner_for(error, session_word=_word(channel))
    kind = "conflict" if status == 409 else "error"
    field = (error.context or {}).get("field")
    if form is not None and form.is_bound and field in form.fields and not form.has_error(field) and status != 409:
        form.add_error(field, error.message or banner)
    extra = {"banner": banner, "banner_kind": kind, "error_line_id": line_id, "form": form, "editor": editor}
    if editor in ("note", "price", "seat"):
        extra["editing"] = line_id
    if editor == "discount" and status != 409:
        # The discount form comes back open, as typed; a manager's approval asked for opens its PIN fields.
        extra["discount_open"] = line_id or "whole"
        extra["approval_asked"] = error.code in ("approval_required", "approval_failed")
    if request.htmx:
        return _cart(request, session, status=status, **extra)
    return _page(request, session, status=status, **extra)


def _refused(request, session: Session, form: forms.SessionForm, **kwargs) -> HttpResponse:
    """An invalid form: 422 with its errors in place — or, from a screen that is out of date, 409."""
    rev = form.cleaned_data.get("rev")
    if rev is not None and rev != session.rev:
        error: OmnimanError = SessionError(
            "stale_rev", context={"session_key": session.session_key, "expected_rev": rev, "current_rev": session.rev}
        )
    else:
        error = ValidationError("invalid_form", form.refusal(), {"fields": sorted(form.errors)})
    return _failure(request, session.channel, session.session_key, error, form=form, **kwargs)


def _change(
    request, channel_code, session_key, form, change, *, event=None, event_detail=None, line_id="", editor="", refusal=None
):
    """Parse ``form`` (or ``form(session)``), run ``change(data, actor)`` (one service call) and answer what changed.

    ``refusal(error, data)`` may answer a refused change its own way (else ``None``: the cart with the banner).
    """
    session = _session_on_screen(channel_code, session_key)
    if callable(form):
        form = form(session)
    if not form.is_valid():
        return _refused(request, session, form, line_id=line_id, editor=editor)
    data = form.cleaned_data
    try:
        changed = change(data, actor(request))
    except OmnimanError as exc:
        answer = refusal(exc, data) if refusal is not None else None
        if answer is not None:
            return answer
        return _failure(request, session.channel, session_key, exc, line_id=line_id, form=form, editor=editor)
    before = session if session.rev == data["rev"] else None  # the screen the form came from
    return _respond(request, changed, event=event, event_detail=event_detail, before=before, follow_checks=True)


def _modify(request, channel_code, session_key, form, build_ops, **kwargs):
    """``_change`` with the ops ``build_ops(data)`` returns, through ``ModifyService``."""

    def change(data, who):
        return ModifyService.modify_session(
            session_key, channel_code, build_ops(data), ctx={"actor": who}, expected_rev=data["rev"]
        )

    return _change(request, channel_code, session_key, form, change, **kwargs)


@require_POST
@pos_required
def add_item(request, channel_code, session_key):
    """Add a product: the grid's button (``sku``) or the search box (``q``: a scanned SKU/barcode or a name)."""

    def change(data, who):
        return CatalogOrderingService.add_product(
            session_key,
            channel_code,
            sku=data["sku"],
            query=data["q"],
            qty=data["qty"],
            modifiers=data["modifier"],
            expected_rev=data["rev"],
            ctx={"actor": who},
        )

    # The search box is cleared only if it still holds what was added (a scanner may already type the next code).
    detail = {"q": request.POST.get("q", "")}
    form = forms.AddForm(request.POST)

    def ask_options(error, data):
        if error.code in OPTION_CODES:
            return _options_step(request, channel_code, session_key, data, error)
        return None

    return _change(
        request, channel_code, session_key, form, change, event="pos:added", event_detail=detail, refusal=ask_options
    )


# The catalog's refusals of a product's choices: the POS answers with the options step instead.
OPTION_CODES = frozenset({"options_required", "unknown_option", "too_many_options"})


def _picker(request, session: Session, data: dict, error: OmnimanError | None) -> dict:
    """The options step's context: the product, its groups and what was chosen (and why it was refused)."""
    item = CatalogOrderingService.find_product(sku=data["sku"], query=data["q"])
    chosen = set(data.get("modifier") or [])
    groups = [
        {
            "group": group,
            "options": [(option, f"{group.code}:{option.code}" in chosen) for option in group.options],
            "multiple": group.max_choices > 1,
        }
        for group in CatalogOrderingService.option_groups(item)
    ]
    # The first tap on a product with a forced choice is a question, not a mistake.
    asking = error is not None and error.code == "options_required" and not data.get("options")
    return {
        "picker": {
            "item": item,
            "groups": groups,
            "qty": data.get("qty") or "1",
            "q": data.get("q") or "",
            "error": "" if asking or error is None else (error.message or banner_for(error)),
        },
    }


def _options_step(request, channel_code, session_key, data: dict, error: OmnimanError | None) -> HttpResponse:
    """The one step that asks for a product's options: a panel over the grid (HTMX) or the page with it open."""
    return options_step_for(request, _session_on_screen(channel_code, session_key), data, error)


def options_step_for(request, session: Session, data: dict, error: OmnimanError | None) -> HttpResponse:
    """``_options_step`` for a session in hand (a new basket's screen has one not saved yet)."""
    session_key = session.session_key
    try:
        extra = _picker(request, session, data, error)
    except OmnimanError as exc:  # the product went meanwhile
        return _failure(request, session.channel, session_key, exc)
    status = 200 if not extra["picker"]["error"] else 422
    if not request.htmx:
        return _page(request, session, status=status, **extra)
    context = _context(request, session, **extra)
    response = render(request, "pos/session.html#picker", context, status=status)
    return reswap(retarget(response, "#picker"), "outerHTML")


@require_GET
@pos_required
def options(request, channel_code, session_key):
    """The options step of a product (``sku``), asked for directly (a tile's "options" button)."""
    form = forms.AddForm({"sku": request.GET.get("sku", ""), "rev": 0})
    if not form.is_valid() or not form.cleaned_data["sku"]:
        raise Http404("No such product")
    return _options_step(request, channel_code, session_key, form.cleaned_data, None)


@require_POST
@pos_required
def change_qty(request, channel_code, session_key, line_id):
    """``delta`` (+1 / −1: at zero the line goes) or an exact ``qty``."""

    def ops(data):
        if data["delta"]:
            return [{"op": "adjust_qty", "line_id": line_id, "delta": data["delta"]}]
        return [{"op": "set_qty", "line_id": line_id, "qty": data["qty"]}]

    return _modify(request, channel_code, session_key, forms.QtyForm(request.POST), ops, line_id=line_id)


@require_POST
@pos_required
def remove_line(request, channel_code, session_key, line_id):
    form = forms.SessionForm(request.POST)
    return _modify(request, channel_code, session_key, form, lambda data: [{"op": "remove_line", "line_id": line_id}], line_id=line_id)


@require_POST
@pos_required
def line_note(request, channel_code, session_key, line_id):
    def ops(data):
        return [{"op": "set_line_meta", "line_id": line_id, "path": "note", "value": data["note"]}]

    form = forms.NoteForm(request.POST)
    return _modify(request, channel_code, session_key, form, ops, line_id=line_id, editor="note")


@require_POST
@pos_required
def hold_line(request, channel_code, session_key, line_id):
    """Hold the line for a later course (``hold=true``) or release it (``hold=false``)."""

    def ops(data):
        return [{"op": "set_line_meta", "line_id": line_id, "path": "hold", "value": bool(data["hold"])}]

    return _modify(request, channel_code, session_key, forms.HoldForm(request.POST), ops, line_id=line_id)


@require_POST
@pos_required
def fire(request, channel_code, session_key):
    """Fire a sent round's held lines (the next course): the kitchen gets them (``KitchenService.fire``)."""
    session = _session_on_screen(channel_code, session_key)
    form = forms.FireForm(request.POST)
    if not form.is_valid():
        return _refused(request, session, form)
    order_ref = form.cleaned_data["order_ref"]
    if not any(order.ref == order_ref for order in selectors.rounds_today(session.channel, session.handle_type, session.handle_ref)):
        raise Http404("No such round")
    try:
        KitchenService.fire(order_ref, actor=actor(request))
    except OmnimanError as exc:
        return _failure(request, session.channel, session_key, exc)
    if not request.htmx:
        return redirect(_session_url(session))
    return _cart(request, session, banner=_("Course fired: the kitchen has it."), banner_kind="ok")


@require_POST
@role_required(MANAGER)
def override_price(request, channel_code, session_key, line_id):
    """Managers only: a new unit price (in currency units, ``12.50`` or ``12,50``) with a reason."""
    who = actor(request)

    def ops(data):
        return [
            {"op": "override_price", "line_id": line_id, "unit_price_q": data["price"], "reason": data["reason"], "actor": who}
        ]

    form = lambda session: forms.PriceForm(request.POST, currency=session.channel.currency)  # noqa: E731
    return _modify(request, channel_code, session_key, form, ops, line_id=line_id, editor="price")


@require_POST
@pos_required
def discount(request, channel_code, session_key):
    """A discount on a line (``line_id``) or the whole cart, % or amount, with a reason.

    Over the channel's threshold a manager approves on this screen: the answer
    (``approval_required``, 422 here: a form to complete) reopens the form with
    the manager's username and PIN fields; the PIN is checked here (``omniman.approvals``) and the
    approver's roles go to the service. A manager signed in needs no PIN.
    """
    session = _session_on_screen(channel_code, session_key)
    channel = session.channel
    line_id = request.POST.get("line_id", "")[:64]
    form = forms.DiscountForm(request.POST, currency=channel.currency)
    if not form.is_valid():
        return _refused(request, session, form, line_id=line_id, editor="discount")
    data = form.cleaned_data
    try:
        approval = {}
        if data["approved_by"] or data["pin"]:
            approver = verify_pin(data["approved_by"], data["pin"])
            approval = {"approved_by": approver.username, "approver_roles": approver.roles}
        changed = AdjustmentService.discount(
            session_key,
            channel.code,
            expected_rev=data["rev"],
            line_id=data["line_id"],
            percent=data["percent"],
            amount_q=data["amount_q"],
            reason=data["reason"],
            actor=actor(request),
            roles=roles_of(request.user),
            **approval,
        )
    except OmnimanError as exc:
        return _failure(request, channel, session_key, exc, line_id=line_id, form=form, editor="discount")
    return _respond(request, changed, follow_checks=True)


@require_POST
@pos_required
def remove_adjustment(request, channel_code, session_key, adjustment_id):
    """Take a discount off (what is owed goes up: no approval needed)."""
    session = _session_on_screen(channel_code, session_key)
    form = forms.SessionForm(request.POST)
    if not form.is_valid():
        return _refused(request, session, form)
    try:
        changed = AdjustmentService.remove(
            session_key,
            session.channel.code,
            adjustment_id,
            expected_rev=form.cleaned_data["rev"],
            actor=actor(request),
            roles=roles_of(request.user),
        )
    except OmnimanError as exc:
        return _failure(request, session.channel, session_key, exc)
    return _respond(request, changed, follow_checks=True)


@require_http_methods(["GET", "POST"])
@pos_required
def my_pin(request):
    """Set one's own approval PIN (a manager types it on a cashier's screen to approve a discount)."""
    form = forms.PinForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            set_pin(request.user, form.cleaned_data["pin"])
        except OmnimanError as exc:
            form.add_error("pin", exc.message)
        else:
            messages.success(request, _("Your PIN is set."))
            return redirect("pos:my_pin")
    status = 422 if request.method == "POST" else 200
    context = {"form": form, "has_pin": has_pin(request.user), "is_manager": has_role(request.user, MANAGER)}
    return render(request, "pos/pin.html", context, status=status)


@require_POST
@pos_required
def customer(request, channel_code, session_key):
    def ops(data):
        return [
            {"op": "set_data", "path": "customer.name", "value": data["name"]},
            {"op": "set_data", "path": "customer.phone", "value": data["phone"]},
            {"op": "set_data", "path": "notes", "value": data["notes"]},
        ]

    return _modify(request, channel_code, session_key, forms.CustomerForm(request.POST), ops, editor="customer")


@require_POST
@pos_required
def resolve(request, channel_code, session_key):
    def change(data, who):
        return ResolveService.resolve(
            session_key,
            channel_code,
            issue_id=data["issue_id"],
            action_id=data["action_id"],
            ctx={"actor": who},
            expected_rev=data["rev"],
        )

    form = forms.ResolveForm(request.POST)
    session = _session_on_screen(channel_code, session_key)
    if not form.is_valid():
        return _refused(request, session, form)
    try:
        changed = change(form.cleaned_data, actor(request))
    except OmnimanError as exc:
        return _failure(request, session.channel, session_key, exc, form=form)
    return _respond(request, changed, follow_checks=True)


@require_POST
@pos_required
def check_now(request, channel_code, session_key):
    """Run the session's checks here and now: enqueue them for the current rev (if not queued) and dispatch.

    The "Check now" button, and the request a change's answer makes by itself
    (``auto=1``): that one answers 204 when the session moved on, since the
    newer change asks for its own checks, and never asks again.
    """
    before = _session_on_screen(channel_code, session_key)
    channel = before.channel
    form = forms.CheckForm(request.POST)
    if not form.is_valid():
        return _refused(request, before, form)
    rev, auto = form.cleaned_data["rev"], form.cleaned_data["auto"]
    try:
        with engine.dispatch_held():  # dispatched right below, once
            directives = SessionService.recheck(session_key, channel.code, expected_rev=rev)
    except OmnimanError as exc:
        if auto and exc.code in ("stale_rev", "already_committed", "abandoned"):
            return HttpResponse(status=204)
        return _failure(request, channel, session_key, exc)
    for directive in directives:
        engine.dispatch(directive.pk)
    after = _session(channel, session_key)
    # recheck saw ``rev`` and revs only grow: equal before and after means nothing landed in between.
    if auto and before.rev != after.rev:
        return HttpResponse(status=204)  # a change landed meanwhile: its own answer shows it
    return _respond(request, after, before=before if before.rev == after.rev else None)


@require_POST
@pos_required
def commit(request, channel_code, session_key):
    session = _session_on_screen(channel_code, session_key)
    channel = session.channel
    form = forms.CommitForm(request.POST)
    if not form.is_valid():
        return _refused(request, session, form)
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
    except OmnimanError as exc:
        return _failure(request, channel, session_key, exc)
    order_word = channel.term("order", "Order")
    text = _("%(order)s %(ref)s sent.") % {"order": order_word, "ref": result["order_ref"]}
    ticket = _ticket(result["order_ref"])
    if ticket:
        text = _("%(order)s %(ref)s · pickup #%(ticket)s.") % {"order": order_word, "ref": result["order_ref"], "ticket": ticket}
    messages.success(request, text)
    # A table goes on with its next round; a basket with a new one, opened by its first item.
    if session.handle_ref:
        nxt = SessionService.open_next(session_key, channel.code, actor=who, replay=result["idempotent"])
        url = _session_url(nxt) if nxt is not None else reverse("pos:channel", args=[channel.code])
    else:
        url = reverse("pos:new", args=[channel.code])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _ticket(order_ref: str) -> int | None:
    """The order's pickup number from the registered ticket source (omniman.contrib.refs); None without one."""
    return registry.tickets_for([order_ref]).get(order_ref)


@require_POST
@pos_required
def park(request, channel_code, session_key):
    """Leave the session open for later (a draft) and go back to the list."""
    session = _session_on_screen(channel_code, session_key)
    channel = session.channel
    form = forms.SessionForm(request.POST)
    if not form.is_valid():
        return _refused(request, session, form)
    try:
        SessionService.park(session_key, channel.code, expected_rev=form.cleaned_data["rev"], actor=actor(request))
    except OmnimanError as exc:
        return _failure(request, channel, session_key, exc)
    messages.info(request, _("%(session)s parked: resume it from the list.") % {"session": _word(channel)})
    url = reverse("pos:channel", args=[channel.code])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@require_POST
@pos_required
def close_table(request, channel_code, session_key):
    """Settle a table: its orders of today are completed and its empty round closed — all or nothing."""
    session = _session_on_screen(channel_code, session_key)
    channel = session.channel
    form = forms.SessionForm(request.POST)
    if not form.is_valid():
        return _refused(request, session, form)
    try:
        session = TableService.close(
            session_key, channel.code, expected_rev=form.cleaned_data["rev"], actor=actor(request), roles=roles_of(request.user)
        )
    except OmnimanError as exc:
        return _failure(request, channel, session_key, exc)
    messages.success(request, _("Table %(table)s closed.") % {"table": session.handle_ref})
    url = reverse("pos:channel", args=[channel.code])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
