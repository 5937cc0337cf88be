"""The floor plan in the admin: managers add areas with their tables (inline) and tables; moves are read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test.utils import CaptureQueriesContext
from django.db import connection

from omniman.models import FloorArea, FloorTable, TableMove
from omniman.services import FloorService, ModifyService, SessionService
from tests.factories import make_channel

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(client):
    user = get_user_model().objects.create_user(username="manager", is_staff=True)
    user.groups.add(Group.objects.get_or_create(name="manager")[0])
    client.force_login(user)
    return client


def test_a_manager_adds_an_area_with_its_tables(manager):
    channel = make_channel("salao", config={"tables": True})
    response = manager.post("/admin/omniman/floorarea/add/", {
        "channel": channel.pk, "name": "Varanda", "position": 1,
        "tables-TOTAL_FORMS": 2, "tables-INITIAL_FORMS": 0, "tables-MIN_NUM_FORMS": 0, "tables-MAX_NUM_FORMS": 1000,
        "tables-0-label": "11", "tables-0-seats": 4, "tables-0-x": 0, "tables-0-y": 0, "tables-0-w": 2, "tables-0-h": 2, "tables-0-is_active": "on",
        "tables-1-label": "12", "tables-1-seats": 2, "tables-1-x": 3, "tables-1-y": 0, "tables-1-w": 2, "tables-1-h": 2, "tables-1-is_active": "on",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    area = FloorArea.objects.get(name="Varanda")
    assert sorted(area.tables.values_list("label", "channel_id")) == [("11", channel.pk), ("12", channel.pk)]
    refused = manager.post("/admin/omniman/floortable/add/", {
        "channel": channel.pk, "area": area.pk, "label": "13", "seats": 2, "x": 23, "y": 0, "w": 2, "h": 2})
    assert refused.status_code == 200 and not FloorTable.objects.filter(label="13").exists()  # off the grid


def test_the_lists_render_with_bounded_queries_and_moves_are_read_only(manager):
    channel = make_channel("salao", config={"tables": True})
    area = FloorArea.objects.create(channel=channel, name="Salão")
    for i in range(1, 4):
        FloorTable.objects.create(channel=channel, area=area, label=str(i), x=i * 3)
    tab = SessionService.open_session("salao", handle_type="table", handle_ref="1")
    tab = ModifyService.modify_session(tab.session_key, "salao", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1}])
    FloorService.merge_tabs(tab.session_key, "salao", to_table="2")
    for url in ("/admin/omniman/floorarea/", "/admin/omniman/floortable/", "/admin/omniman/tablemove/",
                f"/admin/omniman/floorarea/{area.pk}/change/"):
        with CaptureQueriesContext(connection) as queries:
            assert manager.get(url).status_code == 200, url
        assert len(queries) < 30, (url, len(queries))
    move = TableMove.objects.get()
    assert manager.post(f"/admin/omniman/tablemove/{move.pk}/delete/", {"post": "yes"}).status_code == 403
    assert TableMove.objects.count() == 1
