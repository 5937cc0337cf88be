"""The POS's shift screen (issue #18): open the device's register with a float, cash in/out, close with a count,
the Z-report (print, PDF).

The device's register is remembered in the browser session (``REGISTER_SESSION_KEY``) when a shift is opened on
it (or chosen with ``?register=``); the bill screen's payments go to it. Each view parses a form, calls one
``ShiftService`` use case or selector, and redirects (or re-renders the screen with the errors: 422, or the
kernel's status for a refusal).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from omniman.approvals import verify_pin
from omniman.conf import get as omniman_setting
from omniman.exceptions import GONE_CODES, OmnimanError
from omniman.formatting import format_datetime
from omniman.receipts import PAPERS, method_label, z_report_pdf
from omniman.roles import MANAGER, POS, roles_of
from omniman.services import ShiftService, current_shift, register_code_for, shift_screen, z_report
from omniman.web import forms, selectors
from omniman.web.errors import status_for
from omniman.web.roles import actor, role_required

pos_required = role_required(POS, MANAGER)

REGISTER_SESSION_KEY = "omniman_register"


def device_register(request) -> str:
    """The register this browser works on: the one its last shift was opened on, else ``"main"``."""
    code = request.session.get(REGISTER_SESSION_KEY, "")
    return code if isinstance(code, str) and code else register_code_for(None)


def _screen(request, code: str) -> dict[str, Any]:
    try:
        return shift_screen(code)
    except OmnimanError as error:
        if error.code in GONE_CODES and code != register_code_for(None):
            request.session.pop(REGISTER_SESSION_KEY, None)
            return shift_screen(register_code_for(None))
        raise


def _render(request, screen: dict[str, Any], *, status: int = 200, open_form=None, move_form=None, close_form=None,
            review: dict[str, Any] | None = None, banner: str = ""):
    currency = screen["shift"].currency if screen["shift"] else omniman_setting("DEFAULT_CURRENCY")
    denominations = screen["denominations"]
    context = {
        **screen,
        "currency": currency,
        "open_form": open_form or forms.ShiftOpenForm(currency=currency, denominations=denominations,
                                                      initial={"register": screen["register"].code}),
        "move_form": move_form or forms.CashMoveForm(currency=currency, initial={"idempotency_key": uuid.uuid4().hex}),
        "close_form": close_form or forms.ShiftCloseForm(currency=currency, denominations=denominations,
                                                         initial={"rev": screen["shift"].rev if screen["shift"] else 0}),
        "move_key": uuid.uuid4().hex,
        "review": review,
        "banner": banner,
        "methods": [(method, method_label(method), figures) for method, figures in
                    ((screen["report"] or {}).get("by_method") or {}).items()],
    }
    return render(request, "pos/shift.html", context, status=status)


@require_GET
@pos_required
def shift_view(request):
    """The device's register: its open shift (X-report, cash in/out, close) or the form to open one."""
    asked = request.GET.get("register", "")[:64]
    if asked:
        request.session[REGISTER_SESSION_KEY] = asked
    return _render(request, _screen(request, asked or device_register(request)))


@require_GET
@pos_required
def shift_banner(request):
    """The POS's "no open shift" banner for a channel's page (loaded after the page, so the page's own queries stay
    as they were): the banner when the register this device's payments go to has no open shift, else nothing."""
    channel = selectors.channel_or_none(request.GET.get("channel", "")[:64])
    code = register_code_for(channel, request.session.get(REGISTER_SESSION_KEY, "") or "")
    try:
        missing = current_shift(code) is None
    except OmnimanError:
        missing = True
    if not missing:
        return HttpResponse(status=204)
    return render(request, "pos/shift_banner.html", {"register_code": code})


@require_POST
@pos_required
def open_shift(request):
    code = str(request.POST.get("register", ""))[:64] or device_register(request)
    screen = _screen(request, code)
    form = forms.ShiftOpenForm(request.POST, currency=omniman_setting("DEFAULT_CURRENCY"), denominations=screen["denominations"])
    if not form.is_valid():
        return _render(request, screen, status=422, open_form=form)
    data = form.cleaned_data
    try:
        ShiftService.open(
            data["register"], opening_float_q=None if data["count"] is not None else data["total"],
            opening_count=data["count"], actor=actor(request),
        )
    except OmnimanError as error:
        if error.code in ("invalid_count", "invalid_amount", "missing_field"):
            form.add_error("total", error.message)
        return _render(request, _screen(request, data["register"]), status=status_for(error), open_form=form, banner=error.message)
    request.session[REGISTER_SESSION_KEY] = data["register"]
    messages.success(request, _("Shift opened."))
    return redirect("pos:shift")


def _open_screen(request, shift_id: int) -> dict[str, Any]:
    screen = _screen(request, device_register(request))
    if screen["shift"] is None or screen["shift"].pk != shift_id:
        raise Http404("No such open shift on this register")
    return screen


@require_POST
@pos_required
def cash_move(request, shift_id: int):
    screen = _open_screen(request, shift_id)
    form = forms.CashMoveForm(request.POST, currency=screen["shift"].currency)
    if not form.is_valid():
        return _render(request, screen, status=422, move_form=form)
    data = form.cleaned_data
    move = ShiftService.cash_in if data["kind"] == "in" else ShiftService.cash_out
    try:
        move(shift_id, amount_q=data["amount"], reason=data["reason"], actor=actor(request),
             idempotency_key=data["idempotency_key"])
    except OmnimanError as error:
        return _render(request, _screen(request, device_register(request)), status=status_for(error), move_form=form,
                       banner=error.message)
    messages.success(request, _("Cash in recorded.") if data["kind"] == "in" else _("Cash out recorded."))
    return redirect("pos:shift")


@require_POST
@pos_required
def close_shift(request, shift_id: int):
    """Two steps: the count first shows expected vs counted and the difference (nothing written); "Close the
    shift" then closes it — with a manager's username and PIN when the difference is over the threshold."""
    screen = _open_screen(request, shift_id)
    shift = screen["shift"]
    form = forms.ShiftCloseForm(request.POST, currency=shift.currency, denominations=screen["denominations"])
    if not form.is_valid():
        return _render(request, screen, status=422, close_form=form)
    data = form.cleaned_data
    counted = data["count_total"] if data["count"] is not None else data["total"]
    expected = screen["report"]["cash"]["expected_q"]
    review = {
        "counted_q": counted, "expected_q": expected, "difference_q": counted - expected,
        "needs_approval": abs(counted - expected) > screen["threshold_q"] and MANAGER not in roles_of(request.user),
    }
    if not data["confirm"]:
        return _render(request, screen, close_form=form, review=review)
    approval: dict[str, Any] = {}
    try:
        if data["approver"]:
            approver = verify_pin(data["approver"], data["pin"] or "")
            approval = {"approved_by": approver.username, "approver_roles": approver.roles}
        ShiftService.close(
            shift_id, counted_q=None if data["count"] is not None else data["total"], closing_count=data["count"],
            expected_rev=data["rev"], actor=actor(request), roles=roles_of(request.user), reason=data["reason"], **approval,
        )
    except OmnimanError as error:
        if error.code in ("difference_needs_approval", "approval_failed"):
            form.add_error("approver", error.message)
            return _render(request, screen, status=422, close_form=form, review={**review, "needs_approval": True})
        return _render(request, _screen(request, device_register(request)), status=status_for(error), close_form=form,
                       banner=error.message)
    messages.success(request, _("Shift closed. The Z-report was sent to the managers."))
    return redirect("pos:z_report", shift_id)


def _report(shift_id: int) -> dict[str, Any]:
    try:
        return z_report(shift_id)
    except OmnimanError as error:
        if error.code in GONE_CODES:
            raise Http404("No such shift") from None
        raise


@require_GET
@pos_required
def z_report_view(request, shift_id: int):
    """The Z-report to print (the receipt's print CSS, 58 or 80 mm), with its PDF."""
    report = _report(shift_id)
    paper = int(request.GET["paper"]) if request.GET.get("paper", "").isdigit() and int(request.GET["paper"]) in PAPERS else 80
    context = {
        "report": report,
        "paper": paper,
        "paper_css": f"css/receipt-{paper}.css",
        "methods": [(method, method_label(method), figures) for method, figures in report["by_method"].items()],
        "refunds": [(method, method_label(method), figures) for method, figures in report["refunds"].items()],
        "pdf_url": reverse("pos:z_report_pdf", args=[shift_id]) + f"?paper={paper}",
        "opened": format_datetime(datetime.fromisoformat(report["opened_at"])),
        "closed": format_datetime(datetime.fromisoformat(report["closed_at"])) if report["closed_at"] else "",
    }
    return render(request, "pos/z_report.html", context)


@require_GET
@pos_required
def z_report_pdf_view(request, shift_id: int):
    report = _report(shift_id)
    paper = int(request.GET["paper"]) if request.GET.get("paper", "").isdigit() and int(request.GET["paper"]) in PAPERS else 80
    response = HttpResponse(z_report_pdf(report, paper=paper), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="z-report-{report["shift_id"]}.pdf"'
    return response
