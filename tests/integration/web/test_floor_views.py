"""The floor screens (``omniman.web.floor``): the live map, the plan editor, move/merge, seats."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from omniman.models import Channel, FloorArea, FloorTable, Order, Session, TableMove
from omniman.services import OrderService
from tests.factories import commit
from tests.integration.web.helpers import CAFE, HX, act, basket, fresh, logged_in, settle, text

pytestmark = [pytest.mark.django_db, CAFE]


@pytest.fixture
def plan(cafe):
    channel = Channel.objects.get(code="tables")
    salao = FloorArea.objects.create(channel=channel, name="Salão", position=0)
    varanda = FloorArea.objects.create(channel=channel, name="Varanda", position=1)
    for i in range(1, 9):
        FloorTable.objects.create(channel=channel, area=salao if i <= 4 else varanda, label=str(i), seats=4,
                                  x=((i - 1) % 4) * 3, y=0)
    return channel


def send_round(table: str, *skus: str) -> tuple[Order, Session]:
    tab = basket("tables", *(skus or ("BURG",)), table=table)
    settle()
    order = Order.objects.get(ref=commit(fresh(tab))["order_ref"])
    return order, Session.objects.get(handle_ref=table, state="open") if Session.objects.filter(handle_ref=table, state="open").exists() else None


def tile(body: str, label: str) -> str:
    match = re.search(r'<button type="submit" class="table [^"]*" data-table="%s".*?</button>' % re.escape(label), body, re.S)
    assert match, f"no table {label}"
    return match.group(0)


def test_the_map_shows_free_and_occupied_tables_owed_and_kitchen_marks(pos, plan):
    order, _ = send_round("4", "BURG")
    basket("tables", "ESP", table="4")
    body = text(pos.get(reverse("pos:floor", args=["tables"])))
    assert "Salão" in body and "Varanda" in body
    four, one = tile(body, "4"), tile(body, "1")
    assert "is-busy" in four and 'data-mark="waiting"' in four and "is-free" in one
    owed = int(re.search(r'data-owed="(\d+)"', four).group(1))
    espresso = Session.objects.get(handle_ref="4", state="open").totals["total_q"]
    assert owed == order.charged_q + espresso
    OrderService.transition(order.ref, "ready")
    four = tile(text(pos.get(reverse("pos:floor", args=["tables"]))), "4")
    assert 'data-mark="ready"' in four and 'data-mark="waiting"' not in four


def test_the_map_polls_and_answers_204_while_nothing_changed(pos, plan):
    page = text(pos.get(reverse("pos:floor", args=["tables"])))
    version = re.search(r'data-version="([^"]+)"', page).group(1)
    poll = reverse("pos:floor_poll", args=["tables"])
    with CaptureQueriesContext(connection) as queries:
        unchanged = pos.get(poll, {"v": version}, **HX)
    assert unchanged.status_code == 204 and len(queries) <= 7  # session, user, roles, channel + 3 aggregates
    basket("tables", "BURG", table="2")
    changed = pos.get(poll, {"v": version}, **HX)
    assert changed.status_code == 200 and "is-busy" in tile(text(changed), "2") and "<html" not in text(changed)


def test_the_map_query_count_does_not_grow_with_tables(pos, plan, django_assert_max_num_queries):
    send_round("1")
    with CaptureQueriesContext(connection) as few:
        pos.get(reverse("pos:floor", args=["tables"]))
    for label in ("2", "3", "5", "6"):
        send_round(label)
    with CaptureQueriesContext(connection) as many:
        pos.get(reverse("pos:floor", args=["tables"]))
    assert len(many) == len(few)


def test_one_tap_opens_the_tables_tab(pos, plan):
    response = pos.post(reverse("pos:open", args=["tables"]), {"table": "3"})
    tab = Session.objects.get(handle_ref="3", state="open")
    assert response.status_code == 302 and response["Location"].endswith(f"/s/{tab.session_key}/")


def test_only_table_channels_have_a_floor_and_an_open_table_form(pos, plan):
    assert pos.get(reverse("pos:floor", args=["counter"])).status_code == 404
    counter = text(pos.get(reverse("pos:channel", args=["counter"])))
    tables = text(pos.get(reverse("pos:channel", args=["tables"])))
    assert 'id="open-table"' not in counter and reverse("pos:floor", args=["counter"]) not in counter
    assert 'id="open-table"' in tables and reverse("pos:floor", args=["tables"]) in tables


def test_floor_needs_login_and_role(cafe, plan, anon, kitchen):
    url = reverse("pos:floor", args=["tables"])
    assert anon.get(url).status_code == 302
    assert kitchen.get(url).status_code == 403
    assert kitchen.get(reverse("pos:floor_edit", args=["tables"])).status_code == 403
    assert logged_in("waiter", "pos").get(reverse("pos:floor_edit", args=["tables"])).status_code == 403


# -- the editor ----------------------------------------------------------------------------------------


def test_the_manager_places_tables_and_a_refusal_keeps_what_was_typed(manager, plan):
    url = reverse("pos:floor_edit", args=["tables"])
    page = text(manager.get(url))
    one = FloorTable.objects.get(label="1")
    varanda = FloorArea.objects.get(name="Varanda")
    assert f'name="t-{one.pk}-x"' in page
    saved = manager.post(url, {f"t-{one.pk}-x": "20", f"t-{one.pk}-y": "9", f"t-{one.pk}-area": str(varanda.pk)})
    assert saved.status_code == 302
    one.refresh_from_db()
    assert (one.x, one.y, one.area_id) == (19, 8, varanda.pk)
    refused = manager.post(url, {f"t-{one.pk}-x": "24", f"t-{one.pk}-y": "3", f"t-{one.pk}-w": "2"})
    assert refused.status_code == 422
    body = text(refused)
    assert re.search(rf'name="t-{one.pk}-x"[^>]*value="24"', body) and 'role="alert"' in body
    one.refresh_from_db()
    assert (one.x, one.y) == (19, 8)


# -- move / merge / seats ------------------------------------------------------------------------------


def test_transfer_two_lines_then_merge_from_the_move_page(pos, plan):
    tab4 = basket("tables", "BURG", "ESP", "CAESAR", table="4")
    moving = [tab4.lines[1]["line_id"], tab4.lines[2]["line_id"]]
    page = text(pos.get(reverse("pos:move", args=["tables", tab4.session_key])))
    assert 'name="line_ids"' in page and 'value="5"' in page
    response = pos.post(reverse("pos:move", args=["tables", tab4.session_key]),
                        {"rev": tab4.rev, "to_table": "5", "line_ids": moving, "action": "lines"})
    assert response.status_code == 302 and response["Location"].endswith(f"/s/{tab4.session_key}/")
    five = Session.objects.get(handle_ref="5", state="open")
    assert [l["sku"] for l in five.lines] == ["ESP", "CAESAR"] and [l["sku"] for l in fresh(tab4).lines] == ["BURG"]
    merged = pos.post(reverse("pos:move", args=["tables", five.session_key]), {"rev": five.rev, "to_table": "4", "action": "merge"}, **HX)
    assert merged.status_code == 200 and merged["HX-Redirect"].endswith(f"/s/{tab4.session_key}/")
    assert [l["sku"] for l in fresh(tab4).lines] == ["BURG", "ESP", "CAESAR"] and fresh(five).state == "abandoned"
    assert list(TableMove.objects.order_by("id").values_list("kind", flat=True)) == ["lines", "merge"]


def test_a_stale_move_answers_409_and_keeps_the_choice(pos, plan):
    tab4 = basket("tables", "BURG", "ESP", table="4")
    line = tab4.lines[0]["line_id"]
    stale = tab4.rev
    basket("tables", table="4")  # same tab
    from tests.integration.web.helpers import other_screen_touches

    other_screen_touches(tab4)
    response = pos.post(reverse("pos:move", args=["tables", tab4.session_key]),
                        {"rev": stale, "to_table": "6", "line_ids": [line], "action": "lines"})
    body = text(response)
    assert response.status_code == 409 and "changed on another screen" in body
    assert re.search(rf'value="{line}" checked', body) and re.search(r'value="6" checked', body)
    assert not TableMove.objects.exists() and not Session.objects.filter(handle_ref="6").exists()


def test_move_refusals_with_codes(pos, plan):
    tab4 = basket("tables", "BURG", table="4")
    _, _ = send_round("7")
    url = reverse("pos:move", args=["tables", tab4.session_key])
    occupied = pos.post(url, {"rev": tab4.rev, "to_table": "7", "action": "tab"})
    assert occupied.status_code == 409 and "occupied" in text(occupied)
    unknown = pos.post(url, {"rev": tab4.rev, "to_table": "99", "action": "merge"})
    assert unknown.status_code == 422
    nothing = pos.post(url, {"rev": tab4.rev, "to_table": "5", "action": "lines"})
    assert nothing.status_code == 422
    assert not TableMove.objects.exists()
    counter = basket("counter", "BURG")
    assert pos.get(reverse("pos:move", args=["counter", counter.session_key])).status_code == 404


def test_a_seat_is_set_on_a_line_and_a_bad_seat_keeps_the_text(pos, plan):
    tab4 = basket("tables", "BURG", table="4")
    line = tab4.lines[0]["line_id"]
    response = act(pos, "seat", tab4, {"seat": "2"}, line=line)
    assert response.status_code == 200
    assert fresh(tab4).lines[0]["meta"]["seat"] == 2
    assert "seat 2" in text(response)
    tab4 = fresh(tab4)
    refused = act(pos, "seat", tab4, {"seat": "abc"}, line=line)
    assert refused.status_code == 422
    assert re.search(r'id="seat-%s"[^>]*value="abc"' % line, text(refused))
    assert fresh(tab4).rev == tab4.rev
