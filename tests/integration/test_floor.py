"""The floor (``omniman.services.floor``): transfer lines, move and merge tabs, the plan's layout, the map's read.

Every error test asserts the code and that nothing was written (``DbState`` on both sides, orders, moves).
"""

from __future__ import annotations

import pytest

from omniman.exceptions import OmnimanError, http_status
from omniman.models import FloorArea, FloorTable, Order, OrderEvent, Session, TableMove
from omniman.services import (
    BillService, FloorPlanService, FloorService, ModifyService, OrderService, PaymentService, SessionService, TableService,
    floor_tables,
    floor_version, orders_of_handle_today,
)
from tests.factories import DbState, commit, make_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def tables():
    return make_channel("tables", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})


def tab(channel, table, *prices):
    session = SessionService.open_session(channel.code, handle_type="table", handle_ref=table)
    if prices:
        ops = [{"op": "add_line", "sku": f"S{i}", "name": f"Item {i}", "qty": 1, "unit_price_q": p} for i, p in enumerate(prices)]
        session = ModifyService.modify_session(session.session_key, channel.code, ops)
    return session


def send(channel, table, *prices) -> tuple[Order, Session]:
    session = tab(channel, table, *(prices or (100,)))
    order = Order.objects.get(ref=commit(session)["order_ref"])
    return order, SessionService.open_next(session.session_key, channel.code)


def fresh(session) -> Session:
    return Session.objects.get(pk=session.pk)


def snapshot():
    return (
        list(Session.objects.order_by("pk").values_list("pk", "rev", "state", "lines", "handle_ref")),
        list(Order.objects.order_by("pk").values_list("pk", "current_handle_ref", "status")),
        OrderEvent.objects.count(),
        TableMove.objects.count(),
    )


# -- transfer_lines ----------------------------------------------------------------------------------


def test_transfer_lines_moves_the_chosen_lines_to_the_other_tables_round(tables):
    four = tab(tables, "4", 1000, 250, 600)
    five = tab(tables, "5", 300)
    moving = [four.lines[0]["line_id"], four.lines[2]["line_id"]]
    ModifyService.modify_session(four.session_key, "tables", [{"op": "set_line_meta", "line_id": moving[0], "path": "seat", "value": 2}])
    four = fresh(four)
    result = FloorService.transfer_lines(
        four.session_key, "tables", line_ids=moving, to_table="5", expected_rev=four.rev, to_expected_rev=five.rev, actor="user:ana"
    )
    source, target = fresh(four), fresh(five)
    assert [line["sku"] for line in source.lines] == ["S1"] and source.total_q == 250
    assert [line["sku"] for line in target.lines] == ["S0", "S0", "S2"] and target.total_q == 300 + 1000 + 600
    assert [line["line_id"] for line in target.lines][1:] == moving  # ids kept where free
    assert target.lines[1]["meta"] == {"seat": 2}
    assert (source.rev, target.rev) == (four.rev + 1, five.rev + 1)
    assert result.source.rev == source.rev and result.target.session_key == five.session_key
    move = TableMove.objects.get()
    assert (move.kind, move.from_table, move.to_table, move.line_ids, move.actor) == ("lines", "4", "5", moving, "user:ana")


def test_transfer_lines_to_a_free_table_opens_its_tab_and_renames_clashing_ids(tables):
    four = tab(tables, "4", 1000)
    result = FloorService.transfer_lines(four.session_key, "tables", line_ids=[four.lines[0]["line_id"]], to_table="9")
    nine = Session.objects.get(handle_ref="9", state="open")
    assert nine.pk == result.target.pk and nine.total_q == 1000 and fresh(four).lines == []
    # Back again: the id is free on 4 now, kept.
    back = FloorService.transfer_lines(nine.session_key, "tables", line_ids=[nine.lines[0]["line_id"]], to_table="4")
    assert fresh(four).lines[0]["line_id"] == four.lines[0]["line_id"] and back.target.pk == four.pk


def test_a_line_id_taken_on_the_target_gets_a_new_one(tables):
    four = tab(tables, "4", 1000)
    five = tab(tables, "5")
    line = four.lines[0]
    # Plant the same id on 5 through the service itself (a previous move), then move again.
    FloorService.transfer_lines(four.session_key, "tables", line_ids=[line["line_id"]], to_table="5")
    four = ModifyService.modify_session(four.session_key, "tables", [{"op": "add_line", "sku": "S9", "qty": 1, "unit_price_q": 5}])
    clash = fresh(five).lines[0]["line_id"]
    four_lines = four.lines
    four.lines  # noqa: B018
    FloorService.transfer_lines(four.session_key, "tables", line_ids=[four_lines[0]["line_id"]], to_table="5")
    ids = [l["line_id"] for l in fresh(five).lines]
    assert len(set(ids)) == 2 and clash in ids


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"line_ids": ["L-nope"], "to_table": "5"}, "line_not_found", 400),
        ({"line_ids": [], "to_table": "5"}, "missing_field", 400),
        ({"line_ids": "x", "to_table": "5"}, "missing_field", 400),
        ({"to_table": "4"}, "same_table", 400),
        ({"to_table": " "}, "missing_field", 400),
        ({"to_table": "5", "expected_rev": 0}, "stale_rev", 409),
        ({"to_table": "5", "to_expected_rev": 7}, "stale_rev", 409),
    ],
)
def test_transfer_lines_refusals_write_nothing(tables, kwargs, code, status):
    four = tab(tables, "4", 1000, 200)
    tab(tables, "5", 300)
    kwargs = {"line_ids": [four.lines[0]["line_id"]], **kwargs}
    before = snapshot()
    with pytest.raises(OmnimanError) as caught:
        FloorService.transfer_lines(four.session_key, "tables", **kwargs)
    assert caught.value.code == code and http_status(caught.value) == status
    assert snapshot() == before
    if code == "stale_rev":
        assert caught.value.context["side"] == ("source" if "expected_rev" in kwargs else "target")


def test_moves_refuse_what_is_not_a_table(tables):
    basket = SessionService.open_session("tables")
    basket = ModifyService.modify_session(basket.session_key, "tables", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1}])
    state = DbState(basket)
    for call in (
        lambda: FloorService.transfer_lines(basket.session_key, "tables", line_ids=[basket.lines[0]["line_id"]], to_table="5"),
        lambda: FloorService.move_tab(basket.session_key, "tables", to_table="5"),
        lambda: FloorService.merge_tabs(basket.session_key, "tables", to_table="5"),
    ):
        with pytest.raises(OmnimanError) as caught:
            call()
        assert caught.value.code == "not_a_table"
    state.assert_unchanged()
    with pytest.raises(OmnimanError) as caught:
        FloorService.move_tab("SESS-NOPE", "tables", to_table="5")
    assert caught.value.code == "not_found" and http_status(caught.value) == 404


def test_a_floor_plan_refuses_a_table_it_does_not_have(tables):
    area = FloorArea.objects.create(channel=tables, name="Salão")
    FloorTable.objects.create(channel=tables, area=area, label="4")
    FloorTable.objects.create(channel=tables, area=area, label="5", x=3)
    four = tab(tables, "4", 100)
    before = snapshot()
    with pytest.raises(OmnimanError) as caught:
        FloorService.merge_tabs(four.session_key, "tables", to_table="77")
    assert caught.value.code == "table_not_found" and snapshot() == before
    FloorService.merge_tabs(four.session_key, "tables", to_table="5")


# -- move_tab / merge_tabs ---------------------------------------------------------------------------


def test_move_tab_takes_the_open_round_and_the_sent_rounds_to_a_free_table(tables):
    sent, four = send(tables, "4", 1200)
    four = ModifyService.modify_session(four.session_key, "tables", [{"op": "add_line", "sku": "W", "qty": 2, "unit_price_q": 500}])
    result = FloorService.move_tab(four.session_key, "tables", to_table="7", expected_rev=four.rev, actor="user:bia")
    assert fresh(four).state == "abandoned"
    seven = fresh(result.target)
    assert seven.handle_ref == "7" and seven.total_q == 1000 and seven.state == "open"
    sent.refresh_from_db()
    assert (sent.handle_ref, sent.current_handle_ref) == ("4", "7")  # sent from 4, served at 7
    event = OrderEvent.objects.get(order=sent, type="table_moved")
    assert event.payload["from"] == "4" and event.payload["to"] == "7" and event.payload["kind"] == "tab" and event.actor == "user:bia"
    assert list(orders_of_handle_today(tables, "table", "7")) == [sent]
    assert not orders_of_handle_today(tables, "table", "4").exists()
    assert TableMove.objects.get().order_refs == [sent.ref]


def test_move_tab_refuses_an_occupied_table_and_merge_joins_it(tables):
    _, four = send(tables, "4", 1000)
    six_order, six = send(tables, "6", 700)
    before = snapshot()
    with pytest.raises(OmnimanError) as caught:
        FloorService.move_tab(six.session_key, "tables", to_table="4", expected_rev=six.rev)
    assert caught.value.code == "table_occupied" and http_status(caught.value) == 409 and snapshot() == before
    four = ModifyService.modify_session(four.session_key, "tables", [{"op": "add_line", "sku": "X", "qty": 1, "unit_price_q": 50}])
    six = ModifyService.modify_session(six.session_key, "tables", [{"op": "add_line", "sku": "Y", "qty": 1, "unit_price_q": 70}])
    result = FloorService.merge_tabs(six.session_key, "tables", to_table="4", expected_rev=six.rev, to_expected_rev=four.rev)
    assert result.target.pk == four.pk
    assert [l["sku"] for l in fresh(four).lines] == ["X", "Y"]
    assert fresh(six).state == "abandoned"
    six_order.refresh_from_db()
    assert six_order.current_handle_ref == "4"
    floor = {t.label: t for t in floor_tables(tables).tables}
    assert floor["4"].owed_q == 1000 + 700 + 50 + 70 and floor["4"].rounds == 2
    assert "6" not in floor  # free and not on a plan: not shown


def test_a_closed_table_moves_only_its_active_rounds(tables):
    done, four = send(tables, "4", 100)
    bill = BillService.open("tables", handle_type="table", handle_ref="4")
    PaymentService.tender(bill.ref, method="cash", idempotency_key="pay-4")
    TableService.close(four.session_key, "tables")  # paid: the round still cooking stays on table 4
    later, four = send(tables, "4", 200)
    FloorService.move_tab(four.session_key, "tables", to_table="8")
    done.refresh_from_db(), later.refresh_from_db()
    assert (done.current_handle_ref, later.current_handle_ref) == ("4", "8")


def test_nothing_to_move(tables):
    four = tab(tables, "4")
    before = snapshot()
    with pytest.raises(OmnimanError) as caught:
        FloorService.merge_tabs(four.session_key, "tables", to_table="5")
    assert caught.value.code == "nothing_to_move" and snapshot() == before


def test_a_committed_or_abandoned_tab_cannot_move(tables):
    sent, _ = send(tables, "4", 100)
    with pytest.raises(OmnimanError) as caught:
        FloorService.merge_tabs(sent.session_key, "tables", to_table="5")
    assert caught.value.code == "already_committed" and http_status(caught.value) == 409


def test_kitchen_label_follows_the_table(tables):
    from omniman.web.kitchen import card_label

    sent, four = send(tables, "4", 100)
    FloorService.move_tab(four.session_key, "tables", to_table="5")
    sent.refresh_from_db()
    assert card_label(sent) == "Table 5"


def test_orders_moved_stay_immutable_where_it_matters(tables):
    sent, four = send(tables, "4", 100)
    sent.handle_ref = "9"
    with pytest.raises(OmnimanError) as caught:
        sent.save(update_fields=["handle_ref"])
    assert caught.value.code == "immutable"


# -- the map -----------------------------------------------------------------------------------------


def test_floor_tables_shows_state_owed_and_kitchen_marks(tables, django_assert_max_num_queries):
    salao = FloorArea.objects.create(channel=tables, name="Salão", position=0)
    varanda = FloorArea.objects.create(channel=tables, name="Varanda", position=1)
    for i in range(1, 9):
        FloorTable.objects.create(channel=tables, area=salao if i <= 4 else varanda, label=str(i), seats=2 + i % 3, x=(i % 4) * 3)
    first, four = send(tables, "4", 1500)
    second, four = send(tables, "4", 500)
    OrderService.transition(second.ref, "ready")
    ModifyService.modify_session(four.session_key, "tables", [{"op": "add_line", "sku": "Z", "qty": 1, "unit_price_q": 250}])
    tab(tables, "5")  # opened, empty: free
    tab(tables, "12", 90)  # not on the plan
    with django_assert_max_num_queries(8):
        state = floor_tables(tables)
    assert [a.name for a in state.areas] == ["Salão", "Varanda", ""]
    by = {t.label: t for t in state.tables}
    assert by["4"].occupied and by["4"].owed_q == 1500 + 500 + 250
    assert (by["4"].kitchen_waiting, by["4"].kitchen_ready) == (1, 1)
    assert by["4"].minutes_open(now=by["4"].opened_at) == 0
    assert not by["5"].occupied and by["5"].owed_q == 0 and by["5"].session_key
    assert by["12"].placed is False and by["12"].owed_q == 90
    assert by["1"].seats == 3 and by["1"].session_key == ""
    # More tables and rounds do not cost more queries.
    for label in ("1", "2", "3"):
        send(tables, label, 100)
    with django_assert_max_num_queries(8):
        floor_tables(tables)


def test_floor_version_changes_with_every_change_of_the_map(tables):
    v0 = floor_version(tables)
    four = tab(tables, "4", 100)
    v1 = floor_version(tables)
    assert v1 != v0
    order = Order.objects.get(ref=commit(four)["order_ref"])
    v2 = floor_version(tables)
    assert v2 != v1
    OrderService.transition(order.ref, "ready")
    assert floor_version(tables) != v2


# -- the plan's layout ---------------------------------------------------------------------------------


def test_place_tables_moves_tables_on_the_grid_all_or_nothing(tables):
    salao = FloorArea.objects.create(channel=tables, name="Salão")
    varanda = FloorArea.objects.create(channel=tables, name="Varanda")
    a = FloorTable.objects.create(channel=tables, area=salao, label="1", x=0, y=0)
    b = FloorTable.objects.create(channel=tables, area=salao, label="2", x=4, y=0)
    FloorPlanService.place_tables("tables", [{"id": a.pk, "x": 10, "y": 5}, {"id": b.pk, "area_id": varanda.pk, "x": 10, "y": 5, "w": 3}])
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.x, a.y, a.area_id) == (10, 5, salao.pk) and (b.x, b.w, b.area_id) == (10, 3, varanda.pk)
    before = list(FloorTable.objects.values_list("area_id", "x", "y", "w", "h"))
    for placements, code in (
        ([{"id": a.pk, "x": 23, "y": 0}], "off_grid"),
        ([{"id": a.pk, "x": "left"}], "invalid_field"),
        ([{"id": 999999, "x": 1}], "table_not_found"),
        ([{"id": a.pk, "area_id": 999999}], "area_not_found"),
        ([{"id": b.pk, "area_id": salao.pk}], "overlap"),
        ("nope", "invalid_field"),
    ):
        with pytest.raises(OmnimanError) as caught:
            FloorPlanService.place_tables("tables", placements)
        assert caught.value.code == code
        assert list(FloorTable.objects.values_list("area_id", "x", "y", "w", "h")) == before
    other = make_channel("other")
    with pytest.raises(OmnimanError) as caught:
        FloorPlanService.place_tables("other", [{"id": a.pk, "x": 1}])
    assert caught.value.code == "table_not_found" and other


def test_table_moves_are_append_only(tables):
    four = tab(tables, "4", 100)
    FloorService.merge_tabs(four.session_key, "tables", to_table="5")
    move = TableMove.objects.get()
    with pytest.raises(OmnimanError):
        move.save()
    with pytest.raises(OmnimanError):
        TableMove.objects.all().delete()
