"""A new basket is a screen before it is a session: the session is opened by its first item.

``/pos/<channel>/new/`` shows the session screen of a basket that does not exist
yet; the first product added (a tile, a search result, a scan) opens it with
that line in one transaction (``CatalogOrderingService.open_basket``) and the
screen moves to it. Tapping *New basket* and walking away leaves nothing behind.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog.services import CatalogOrderingService
from omniman.exceptions import OmnimanError
from omniman.models import Session
from omniman.web import forms, pos, selectors
from omniman.web.errors import banner_for, status_for
from omniman.web.roles import actor


def _unsaved(channel_code: str) -> Session:
    channel = selectors.channel_or_none(channel_code)
    if channel is None:
        raise Http404("No such channel")
    return Session(
        channel=channel, session_key="", pricing_policy=channel.pricing_policy, edit_policy=channel.edit_policy, data={}
    )


def _page(request, session: Session, *, status: int = 200, **extra):
    base = reverse("pos:new", args=[session.channel.code])
    context = pos._context(request, session, **pos._grid(request), **extra)
    context["base"] = base
    return render(request, "pos/session.html", context, status=status)


@require_GET
@pos.pos_required
def new_basket(request, channel_code):
    session = _unsaved(channel_code)
    if request.htmx and request.htmx.target == "grid":
        context = {"session": session, "channel": session.channel, "base": reverse("pos:new", args=[channel_code]), **pos._grid(request)}
        return render(request, "pos/session.html#grid", context)
    return _page(request, session)


@require_GET
@pos.pos_required
def new_search(request, channel_code):
    session = _unsaved(channel_code)
    query = request.GET.get("q", "").strip()[:64]
    results = get_catalog().search(query, limit=selectors.SEARCH_SIZE) if query else []
    context = {"session": session, "channel": session.channel, "base": reverse("pos:new", args=[channel_code]),
               "results": results, "query": query}
    return render(request, "pos/session.html#results", context)


@require_POST
@pos.pos_required
def new_add(request, channel_code):
    """The first item: open the basket with it, then go on on its screen."""
    session = _unsaved(channel_code)
    form = forms.AddForm(request.POST)
    if not form.is_valid():
        return _page(request, session, status=422, banner=form.refusal(), banner_kind="error", form=form)
    data = form.cleaned_data
    try:
        opened = CatalogOrderingService.open_basket(
            session.channel.code, sku=data["sku"], query=data["q"], qty=data["qty"], actor=actor(request)
        )
    except OmnimanError as exc:
        banner = banner_for(exc, session_word=pos._word(session.channel))
        if request.htmx:
            response = render(request, "pos/session.html#cart",
                                  {**pos._context(request, session, banner=banner, banner_kind="error"),
                                   "base": reverse("pos:new", args=[channel_code])}, status=status_for(exc))
            response[pos.REV_HEADER] = "0"
            return response
        return _page(request, session, status=status_for(exc), banner=banner, banner_kind="error")
    url = reverse("pos:session", args=[channel_code, opened.session_key])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
