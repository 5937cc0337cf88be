"""Money is one truth (issue #15): the POS, the order and the lists show one total.

The three bugs reproduced: a sent round reopened by its URL counted twice, a
stale Send counted twice, the tables list showing the current round's empty
total instead of what the table owes; and the service charge that the POS
charged but the order did not carry.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from omniman.models import Order, Session
from omniman.services import ModifyService
from tests.integration.web.helpers import CAFE, act, assert_cart, assert_page, fresh, ready, settle, url

pytestmark = [pytest.mark.django_db, CAFE]


def table_total(body: str) -> str:
    found = re.search(r'Table total</dt><dd class="table-total"><strong>([^<]+)</strong>', body)
    assert found, "no table total on the screen"
    return found.group(1)


def send(client, session):
    response = act(client, "commit", session, {"idempotency_key": uuid.uuid4().hex}, htmx=False)
    assert response.status_code == 302, response.status_code
    return response


def test_the_order_carries_the_service_charge_the_pos_charged(pos):
    tab = ready(("BURG", 1), ("SODA", 1), table="3", channel="tables")
    shown = assert_page(pos.get(url("session", tab)))
    send(pos, tab)
    order = Order.objects.get(session_key=tab.session_key)
    items_q = sum(item.line_total_q for item in order.items.all())
    service_q = (items_q + 5) // 10  # 10 %, half up
    assert order.total_q == items_q + service_q == order.charged_q
    assert order.totals["service_q"] == service_q and order.totals["items_q"] == items_q
    [service] = order.adjustments
    assert (service["kind"], service["percent"], service["auto"], service["amount_q"]) == ("service_charge", "10", True, service_q)
    assert order.events.filter(type="adjustment.applied").count() == 1
    assert f'<dd class="grand">R${(items_q + service_q) / 100:.2f}</dd>' in shown


def test_a_sent_round_opened_again_by_its_url_is_not_counted_twice(pos):
    tab = ready(("ESP", 1), table="7", channel="tables")  # 6.00 + 10 % = 6.60
    send(pos, tab)
    # Reloading the sent round's URL goes to the table's open round: one round, counted once.
    response = pos.get(url("session", tab))
    current = Session.objects.get(channel__code="tables", handle_ref="7", state="open")
    assert response.status_code == 302 and response["Location"] == url("session", current)
    page = assert_page(pos.get(response["Location"]))
    assert table_total(page) == "R$6.60"
    # With no open round any more (another screen closed it), the sent round shows no cart and counts once.
    Session.objects.filter(pk=current.pk).update(state="abandoned")
    page = assert_page(pos.get(url("session", tab)))
    assert table_total(page) == "R$6.60"
    assert 'id="lines"' not in page and "1 × Espresso" in page  # listed under the rounds sent, not as unsent lines


def test_a_stale_send_does_not_count_the_round_twice(pos):
    tab = ready(("ESP", 1), table="8", channel="tables")  # 6.60 with service
    send(pos, tab)
    again = act(pos, "commit", tab, {"idempotency_key": uuid.uuid4().hex})  # the same tab, sent again from a stale screen
    body = assert_cart(again, status=409)
    assert table_total(body) == "R$6.60"
    page = assert_page(pos.get(url("session", Session.objects.get(channel__code="tables", handle_ref="8", state="open"))))
    assert table_total(page) == "R$6.60"


def test_the_tables_list_shows_what_each_table_owes(pos):
    first = ready(("ESP", 1), table="1", channel="tables")  # 6.60
    send(pos, first)
    second = ready(("BURG", 1), table="2", channel="tables")
    send(pos, second)
    nxt = Session.objects.get(channel__code="tables", handle_ref="2", state="open")
    ModifyService.modify_session(nxt.session_key, "tables", [{"op": "add_line", "sku": "ESP", "qty": 1}])
    settle()
    burger = Order.objects.get(session_key=second.session_key).total_q
    response = pos.get(reverse("pos:channel", args=["tables"]))
    assert response.status_code == 200
    body = response.content.decode()
    rows = dict(re.findall(r'Table (\d+).*?<td class="num owed">([^<]+)</td>', body, re.S))
    assert rows["1"] == "R$6.60"
    assert rows["2"] == f"R${(burger + 660) / 100:.2f}"


def _list_queries(pos, tables: int) -> int:
    for n in range(tables):
        tab = ready(("ESP", 1), table=f"q{tables}-{n}", channel="tables")
        send(pos, tab)
    with CaptureQueriesContext(connection) as queries:
        assert pos.get(reverse("pos:channel", args=["tables"])).status_code == 200
    return len(queries.captured_queries)


def test_the_tables_list_query_count_does_not_grow_with_tables(pos):
    assert _list_queries(pos, 1) == _list_queries(pos, 4)
