"""The manager's audit view: sensitive actions of a period, searchable and filterable, with a CSV export.

Parse the filter form → one selector (``omniman.services.audit_entries``) → render the page or the CSV.
Managers only (the admin site's door); a bad filter re-renders the form with its errors (400).
"""

from __future__ import annotations

import csv
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from omniman.exceptions import OmnimanError
from omniman.monetary import format_money
from omniman.services import AUDIT_KINDS, audit_entries

DEFAULT_DAYS = 7
MAX_ROWS_SHOWN = 500


class AuditFilterForm(forms.Form):
    start = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    kind = forms.MultipleChoiceField(
        label=_("Kinds"), required=False, choices=list(AUDIT_KINDS.items()), widget=forms.CheckboxSelectMultiple
    )
    actor = forms.CharField(label=_("Staff member"), required=False, max_length=150)
    q = forms.CharField(label=_("Search"), required=False, max_length=100)

    def period(self):
        today = timezone.localdate()
        end = self.cleaned_data.get("end") or today
        start = self.cleaned_data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        return start, end


def _money(entry) -> str:
    return format_money(entry.amount_q, entry.currency) if entry.amount_q else "—"


def _links(entry) -> dict[str, str]:
    links = {}
    if entry.order_ref:
        links["order"] = f"{reverse('admin:omniman_order_changelist')}?{urlencode({'q': entry.order_ref})}"
    if entry.bill_ref:
        links["bill"] = f"{reverse('admin:omniman_bill_changelist')}?{urlencode({'q': entry.bill_ref})}"
    if entry.shift_id:
        links["shift"] = reverse("admin:omniman_shift_change", args=[entry.shift_id])
    return links


@require_GET
def audit_view(request, *, site):
    form = AuditFilterForm(request.GET or None)
    entries, period = [], None
    if not request.GET or form.is_valid():
        if not request.GET:
            form = AuditFilterForm(initial={})
            form.cleaned_data = {}
        period = form.period()
        try:
            entries = audit_entries(
                period,
                kinds=form.cleaned_data.get("kind") or None,
                actor=form.cleaned_data.get("actor") or "",
                query=form.cleaned_data.get("q") or "",
            )
        except OmnimanError as exc:
            form.add_error(None, exc.message)
            period = None
    if period is not None and request.GET.get("format") == "csv":
        return _csv(entries, period)
    status = 200 if period is not None else 400
    query = request.GET.copy()
    query["format"] = "csv"
    context = {
        **site.each_context(request),
        "title": _("Audit"),
        "form": form,
        "period": period,
        "rows": [
            {"entry": entry, "amount": _money(entry), "links": _links(entry)} for entry in entries[:MAX_ROWS_SHOWN]
        ],
        "count": len(entries),
        "shown": min(len(entries), MAX_ROWS_SHOWN),
        "csv_link": f"{request.path}?{query.urlencode()}",
    }
    return TemplateResponse(request, "admin/omniman/audit.html", context, status=status)


CSV_COLUMNS = ("time", "kind", "actor", "approver", "over_threshold", "reason", "amount", "currency", "order", "bill", "channel", "detail", "shift")


def _csv(entries, period) -> HttpResponse:
    start, end = period
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{start.isoformat()}-{end.isoformat()}.csv"'
    writer = csv.writer(response)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        writer.writerow([_cell(value) for value in (
            timezone.localtime(e.at).isoformat(timespec="seconds"), e.kind, e.actor, e.approver, "yes" if e.over_threshold else "",
            e.reason, f"{Decimal(e.amount_q) / 100:.2f}", e.currency, e.order_ref, e.bill_ref, e.channel, e.detail,
            e.shift_id or "",
        )])
    return response


def _cell(value: str) -> str:
    """Text a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@`` first) is quoted with ``'``."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
