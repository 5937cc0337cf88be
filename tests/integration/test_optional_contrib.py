"""Contrib apps are optional: the POS and the kitchen ask the kernel's registry or an empty catalog.

These run in every pass: with the contrib apps (tests.settings) and without any
(tests.settings_nocontrib, scripts/test.py's "nocontrib" pass).
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from omniman import registry
from omniman.contrib.catalog import EmptyCatalog, get_catalog
from omniman.models import Session
from omniman.protocols import TicketSource
from omniman.web.kitchen import build_board
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db


def signed_in(client, role):
    user = get_user_model().objects.create_user(role, password="pw")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    client.force_login(user)
    return client


class FixedTickets:
    def __init__(self, tickets):
        self.tickets, self.asked = tickets, []

    def tickets_for(self, order_refs):
        self.asked.append(list(order_refs))
        return {ref: number for ref, number in self.tickets.items() if ref in order_refs}


def without_ticket_source():
    """The registry as if omniman.contrib.refs were not installed (conftest restores it after the test)."""
    kept = [dict(saved) for saved in registry.snapshot()]
    kept[-1].clear()  # the ticket source slot
    registry.restore(tuple(kept))


def test_the_ticket_source_is_the_refs_app_when_installed():
    source = registry.get_ticket_source()
    assert (source is not None) == apps.is_installed("omniman.contrib.refs")
    assert source is None or isinstance(source, TicketSource)


def test_only_one_ticket_source_and_it_must_have_tickets_for():
    without_ticket_source()
    registry.register_ticket_source(FixedTickets({}))
    with pytest.raises(ValueError):
        registry.register_ticket_source(FixedTickets({}))
    without_ticket_source()
    with pytest.raises(TypeError):
        registry.register_ticket_source(object())


def test_the_kitchen_shows_the_registered_sources_ticket_and_none_without_a_source():
    order_ref = commit(create_session_at(make_channel("counter"), lines=1))["order_ref"]
    without_ticket_source()
    [card] = [card for _status, _label, cards in build_board().columns for card in cards]
    assert card.label == order_ref[-6:] and registry.tickets_for([order_ref]) == {}

    source = registry.register_ticket_source(FixedTickets({order_ref: 7}))
    [card] = [card for _status, _label, cards in build_board().columns for card in cards]
    assert card.label == "#7" and source.asked == [[order_ref]]  # one call for the whole board


def test_the_kitchen_board_renders_without_a_ticket_source(client):
    commit(create_session_at(make_channel("counter"), lines=1))
    without_ticket_source()
    assert signed_in(client, "kitchen").get("/kitchen/").status_code == 200


def test_without_the_catalog_app_the_catalog_is_empty():
    catalog = get_catalog()
    assert isinstance(catalog, EmptyCatalog) == (not apps.is_installed("omniman.contrib.catalog"))
    empty = EmptyCatalog()
    assert (empty.search("x"), empty.get("X"), empty.get_many(["X"]), empty.list_categories()) == ([], None, {}, [])
    assert (empty.alternatives("X"), empty.alternatives_many(["X"])) == ([], {"X": []})


def test_the_pos_screen_renders_and_an_unknown_product_is_refused_with_any_catalog(client):
    channel = make_channel("counter")
    session = create_session_at(channel, lines=0)
    pos = signed_in(client, "pos")
    url = f"/pos/{channel.code}/s/{session.session_key}/"
    assert pos.get(url).status_code == 200
    response = pos.post(url + "add/", {"sku": "NO-SUCH-SKU", "rev": session.rev}, HTTP_HX_REQUEST="true")
    assert response.status_code == 422 and "NO-SUCH-SKU" in response.content.decode()
    assert Session.objects.get(pk=session.pk).items == [] and Session.objects.get(pk=session.pk).rev == session.rev
