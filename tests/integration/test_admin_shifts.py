"""Registers and shifts in the manager's admin (issue #18): registers edited with their config checked; shifts
read-only, with their movements, audit trail and Z-report link, in a bounded number of queries."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from omniman.models import Register, Shift
from omniman.services import ShiftService
from tests.integration.test_admin_review import make_user

pytestmark = pytest.mark.django_db

SHIFTS = "/admin/omniman/shift/"
REGISTERS = "/admin/omniman/register/"


@pytest.fixture
def manager(client):
    client.force_login(make_user("manager", groups=("manager",)))
    return client


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _shifts(n: int, start: int) -> Shift:
    shift = None
    for index in range(start, start + n):
        register = Register.objects.create(code=f"r{index}", name=f"Register {index}")
        shift = ShiftService.open(register.code, opening_float_q=1000, actor="user:ana")
        ShiftService.cash_out(shift.pk, amount_q=100, reason="drop", idempotency_key=f"o{index}")
        ShiftService.close(shift.pk, counted_q=900, actor="user:ana", roles={"manager"})
    return shift


def test_shift_pages_are_read_only_and_bounded(manager):
    _shifts(2, 0)
    few = _queries(manager, SHIFTS)
    last = _shifts(5, 2)
    assert _queries(manager, SHIFTS) == few
    detail = manager.get(f"{SHIFTS}{last.pk}/change/")
    body = detail.content.decode()
    assert detail.status_code == 200 and "drop" in body and f"/pos/me/shift/{last.pk}/z-report/" in body
    assert manager.get(f"{SHIFTS}add/").status_code == 403
    assert manager.post(f"{SHIFTS}{last.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Shift.objects.filter(pk=last.pk).exists()


def test_a_manager_edits_a_registers_name_and_config_and_bad_config_is_refused(manager):
    register = Register.objects.create(code="bar", name="Bar")
    url = f"{REGISTERS}{register.pk}/change/"
    refused = manager.post(url, {"name": "Bar 2", "is_active": "on", "config": '{"difference_threshold_q": -5}'})
    assert refused.status_code == 200 and "difference_threshold_q" in refused.content.decode()
    register.refresh_from_db()
    assert (register.name, register.config) == ("Bar", {})
    saved = manager.post(url, {"name": "Bar 2", "is_active": "on", "config": '{"difference_threshold_q": 1000, "denominations": [5000, 100]}'})
    assert saved.status_code == 302
    register.refresh_from_db()
    assert (register.name, register.code, register.config["difference_threshold_q"]) == ("Bar 2", "bar", 1000)
