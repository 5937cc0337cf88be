"""The floor: the table map (live), the manager's plan editor, moving and merging tabs, seats.

Each view parses input, makes one service or selector call and renders. The
map polls ``floor/poll/`` every 2 s with the version it shows: an unchanged
floor answers an empty ``204`` from three aggregate queries.
"""

from __future__ import annotations

from django import forms as django_forms
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from omniman.exceptions import OmnimanError
from omniman.models import GRID_COLUMNS, GRID_ROWS, Channel, FloorArea, FloorTable, Session
from omniman.roles import MANAGER, POS, has_role
from omniman.services import FloorPlanService, FloorService, floor_tables, floor_version
from omniman.web import forms, pos, selectors
from omniman.web.errors import banner_for, status_for
from omniman.web.roles import actor, role_required

pos_required = role_required(POS, MANAGER)
manager_required = role_required(MANAGER)

MAX_SEAT = 99


def _table_channel(code: str) -> Channel:
    channel = selectors.channel_or_none(code)
    if channel is None or not channel.serves_tables or not channel.order_flow.table_handle_type:
        raise Http404("No such table channel")
    return channel


def _map_version(channel: Channel) -> str:
    """The floor's version plus the minute: the minutes-open figures refresh once a minute at least."""
    return f"{floor_version(channel)}-{timezone.now():%H%M}"


# -- the map -----------------------------------------------------------------------------------------


def _floor_context(request, channel: Channel) -> dict:
    return {
        "channel": channel,
        "floor": floor_tables(channel),
        "version": _map_version(channel),
        "now": timezone.now(),
        "is_manager": has_role(request.user, MANAGER),
        "open_url": reverse("pos:open", args=[channel.code]),
    }


@require_GET
@pos_required
def floor_view(request, channel_code):
    channel = _table_channel(channel_code)
    return render(request, "pos/floor.html", _floor_context(request, channel))


@require_GET
@pos_required
@vary_on_headers("HX-Request")
def floor_poll(request, channel_code):
    """The map region, or ``204`` when the version the screen shows is current."""
    channel = _table_channel(channel_code)
    if request.GET.get("v") == _map_version(channel):
        response = HttpResponse(status=204)
        response["Cache-Control"] = "no-store"
        return response
    return render(request, "pos/floor.html#floor", _floor_context(request, channel))


# -- the plan editor (managers) -----------------------------------------------------------------------


def _placements(post, tables) -> list[dict]:
    """The editor's fields (``t-<id>-area``, ``-x``, ``-y``, ``-w``, ``-h``) as placements; unreadable numbers go to the service as they are."""
    placements = []
    for table in tables:
        prefix = f"t-{table.pk}-"
        if not any(key.startswith(prefix) for key in post):
            continue
        placement = {"id": table.pk}
        for name, key in (("area_id", "area"), ("x", "x"), ("y", "y"), ("w", "w"), ("h", "h")):
            value = post.get(prefix + key)
            if value not in (None, ""):
                placement[name] = value.strip()
        # The form shows columns and rows from 1; the plan stores them from 0.
        for name in ("x", "y"):
            if name in placement and placement[name].isdigit():
                placement[name] = int(placement[name]) - 1
        placements.append(placement)
    return placements


@require_http_methods(["GET", "POST"])
@manager_required
def floor_edit(request, channel_code):
    channel = _table_channel(channel_code)
    areas = list(FloorArea.objects.filter(channel=channel).order_by("position", "id"))
    tables = list(FloorTable.objects.filter(channel=channel).select_related("area").order_by("area__position", "y", "x", "id"))
    banner, status, typed = "", 200, {}
    if request.method == "POST":
        try:
            FloorPlanService.place_tables(channel.code, _placements(request.POST, tables), actor=actor(request))
        except OmnimanError as exc:
            banner, status, typed = exc.message, status_for(exc), request.POST
        else:
            messages.success(request, _("Floor plan saved."))
            return redirect("pos:floor_edit", channel.code)
    if typed:  # refused: the form shows what was typed, the grid what is saved
        for table in tables:
            for axis in ("area", "x", "y", "w", "h"):
                setattr(table, f"typed_{axis}", typed.get(f"t-{table.pk}-{axis}", ""))
    context = {
        "channel": channel,
        "areas": areas,
        "tables": tables,
        "typed": bool(typed),
        "banner": banner,
        "columns": range(GRID_COLUMNS),
        "grid_columns": GRID_COLUMNS,
        "grid_rows": GRID_ROWS,
    }
    return render(request, "pos/floor_edit.html", context, status=status)


# -- moving lines and tabs --------------------------------------------------------------------------


class MoveForm(forms.SessionForm):
    to_table = django_forms.CharField(max_length=32, strip=True, label=gettext_lazy("Table"))
    line_ids = django_forms.MultipleChoiceField(required=False, choices=())
    action = django_forms.ChoiceField(choices=(("lines", "lines"), ("tab", "tab"), ("merge", "merge")))

    def __init__(self, *args, session: Session, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["line_ids"].choices = [(line["line_id"], line["line_id"]) for line in session.lines]


def _move_page(request, session: Session, *, form=None, banner="", banner_kind="error", status=200):
    channel = session.channel
    floor = floor_tables(channel)
    context = {
        "session": session,
        "channel": channel,
        "screen": selectors.session_screen(session),
        "targets": [t for t in floor.tables if t.label != session.handle_ref],
        "form": form,
        "chosen": set(form.data.getlist("line_ids")) if form is not None and form.is_bound else set(),
        "banner": banner,
        "banner_kind": banner_kind,
        "base": reverse("pos:session", args=[channel.code, session.session_key]),
    }
    return render(request, "pos/move.html", context, status=status)


def _tab_session(channel_code: str, session_key: str) -> Session:
    session = selectors.session_on_screen(channel_code, session_key)
    if session is None or not session.channel.order_flow.is_table(session.handle_type) or not session.handle_ref:
        raise Http404("No such tab")
    return session


@require_http_methods(["GET", "POST"])
@pos_required
def move(request, channel_code, session_key):
    """Transfer chosen lines to another table, move the whole tab to a free table, or merge it into another's."""
    session = _tab_session(channel_code, session_key)
    if request.method == "GET":
        return _move_page(request, session)
    form = MoveForm(request.POST, session=session)
    if not form.is_valid():
        rev = form.cleaned_data.get("rev")
        if rev is not None and rev != session.rev:
            banner = banner_for(OmnimanError("stale_rev"), session_word=_("Tab"))
            return _move_page(request, session, form=form, banner=banner, banner_kind="conflict", status=409)
        return _move_page(request, session, form=form, banner=_("Check the table and the lines chosen."), status=422)
    data = form.cleaned_data
    kind, who = data["action"], actor(request)
    try:
        if kind == "lines":
            done = FloorService.transfer_lines(session_key, channel_code, line_ids=data["line_ids"], to_table=data["to_table"],
                                               expected_rev=data["rev"], actor=who)
        elif kind == "tab":
            done = FloorService.move_tab(session_key, channel_code, to_table=data["to_table"], expected_rev=data["rev"], actor=who)
        else:
            done = FloorService.merge_tabs(session_key, channel_code, to_table=data["to_table"], expected_rev=data["rev"], actor=who)
    except OmnimanError as exc:
        status = status_for(exc)
        fresh = _tab_session(channel_code, session_key) if exc.code != "not_found" else session
        banner = banner_for(exc, session_word=_("Tab"))
        if fresh.state != Session.State.OPEN:
            messages.error(request, banner)
            url = reverse("pos:floor", args=[channel_code])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
        return _move_page(request, fresh, form=form, banner=banner, banner_kind="conflict" if status == 409 else "error", status=status)
    texts = {
        "lines": _("%(count)s line(s) moved from table %(from)s to table %(to)s."),
        "tab": _("Table %(from)s moved to table %(to)s."),
        "merge": _("Table %(from)s merged into table %(to)s."),
    }
    messages.success(request, texts[kind] % {"count": len(done.move.line_ids), "from": done.move.from_table, "to": done.move.to_table})
    # Lines moved: back to the tab they left; a whole tab: on to where it went.
    landing = done.source if kind == "lines" else done.target
    url = reverse("pos:session", args=[channel_code, landing.session_key])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


# -- seats ---------------------------------------------------------------------------------------------


class SeatForm(forms.SessionForm):
    seat = django_forms.IntegerField(required=False, min_value=1, max_value=MAX_SEAT, label=gettext_lazy("Seat"))


@require_POST
@pos_required
def line_seat(request, channel_code, session_key, line_id):
    """A line's seat (``meta.seat``, 1–99; empty clears it): the split by seat reads it."""

    def ops(data):
        return [{"op": "set_line_meta", "line_id": line_id, "path": "seat", "value": data["seat"]}]

    return pos._modify(request, channel_code, session_key, SeatForm(request.POST), ops, line_id=line_id, editor="seat")


__all__ = ["floor_view", "floor_poll", "floor_edit", "move", "line_seat", "MoveForm", "SeatForm"]
