"""A new basket is a screen before it is a session: the session is opened by its first item.

``/pos/<channel>/new/`` shows the session screen of a basket that does not exist
yet, under a session key minted for it. Its add form posts to ``new/add/``
with that key: the first product (a tile, a search result, a scan) opens the
basket with that line in one transaction (``CatalogOrderingService.open_basket``);
the adds queued behind it find it open and add to it with the rev the screen
shows. The answer is the basket's cart, and the address bar moves to the
basket's own page. Tapping *New basket* and walking away leaves nothing behind.
"""

from __future__ import annotations

from django import forms as django_forms
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import push_url

from omniman.contrib.catalog import get_catalog
from omniman.contrib.catalog.services import CatalogOrderingService
from omniman.exceptions import OmnimanError
from omniman.models import Session
from omniman.services import new_session_key
from omniman.web import forms, pos, selectors
from omniman.web.errors import banner_for, status_for
from omniman.web.roles import actor


class NewBasketAddForm(forms.AddForm):
    session_key = django_forms.RegexField(regex=r"^[A-Za-z0-9_\-]{1,64}$")


def _unsaved(channel_code: str, session_key: str = "") -> Session:
    channel = selectors.channel_or_none(channel_code)
    if channel is None:
        raise Http404("No such channel")
    return Session(
        channel=channel,
        session_key=session_key or new_session_key(),
        pricing_policy=channel.pricing_policy,
        edit_policy=channel.edit_policy,
        data={},
    )


@require_GET
@pos.pos_required
def new_basket(request, channel_code):
    session = _unsaved(channel_code)
    if request.htmx and request.htmx.target == "grid":
        return pos._page_partial_grid(request, session)
    return pos._page(request, session)


@require_GET
@pos.pos_required
def new_search(request, channel_code):
    session = _unsaved(channel_code)
    query = request.GET.get("q", "").strip()[:64]
    results = get_catalog().search(query, limit=selectors.SEARCH_SIZE) if query else []
    context = {"session": session, "channel": session.channel, "base": pos._session_url(session), "results": results, "query": query}
    return render(request, "pos/session.html#results", context)


@require_POST
@pos.pos_required
def new_add(request, channel_code):
    """Add to the basket the screen minted: its first item opens it."""
    form = NewBasketAddForm(request.POST)
    key = request.POST.get("session_key", "") if form.is_bound else ""
    if not form.is_valid():
        session = selectors.session_on_screen(channel_code, key) or _unsaved(channel_code)
        return _refused(request, session, form.refusal(), status=422, form=form)
    data = form.cleaned_data
    try:
        opened = CatalogOrderingService.open_basket(
            channel_code, session_key=data["session_key"], sku=data["sku"], query=data["q"], qty=data["qty"],
            modifiers=data["modifier"], expected_rev=data["rev"], actor=actor(request),
        )
    except OmnimanError as exc:
        session = selectors.session_on_screen(channel_code, data["session_key"]) or _unsaved(channel_code, data["session_key"])
        if exc.code in pos.OPTION_CODES:  # a forced choice: the same options step as an open basket's
            return pos.options_step_for(request, session, data, exc)
        return _refused(request, session, banner_for(exc, session_word=pos._word(session.channel)), status=status_for(exc), form=form)
    response = pos._respond(
        request, opened, event="pos:added", event_detail={"q": request.POST.get("q", "")}, follow_checks=True
    )
    if request.htmx:
        push_url(response, reverse("pos:session", args=[channel_code, opened.session_key]))
    return response


def _refused(request, session: Session, banner: str, *, status: int, form=None):
    kind = "conflict" if status == 409 else "error"
    if request.htmx:
        return pos._cart(request, session, status=status, banner=banner, banner_kind=kind, form=form)
    return pos._page(request, session, status=status, banner=banner, banner_kind=kind, form=form)


@require_GET
@pos.pos_required
def new_options(request, channel_code):
    """The options step of a product (a tile's "+ options") on a basket not opened yet."""
    form = forms.AddForm({"sku": request.GET.get("sku", ""), "rev": 0})
    if not form.is_valid() or not form.cleaned_data["sku"]:
        raise Http404("No such product")
    return pos.options_step_for(request, _unsaved(channel_code, request.GET.get("session_key", "")[:64]), form.cleaned_data, None)
