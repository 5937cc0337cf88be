"""Issue #17, 2: empty sessions do not pile up — the lists skip them and housekeeping abandons empty baskets
after ``EMPTY_SESSION_TTL_MINUTES`` (the rest after ``SESSION_TTL_HOURS``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from omniman.models import Session, empty_sessions
from omniman.services import MaintenanceService, ModifyService, SessionService
from tests.factories import create_session_at, make_channel

pytestmark = pytest.mark.django_db


def aged(session: Session, **delta) -> Session:
    # Housekeeping reads updated_at: set it in the past (a test-only write, as a clock would).
    Session.objects.filter(pk=session.pk).update(updated_at=timezone.now() - timedelta(**delta))
    return Session.objects.get(pk=session.pk)


def test_empty_baskets_are_abandoned_after_the_short_ttl_and_nothing_else_is():
    channel = make_channel("shop")
    empty = aged(SessionService.open_session("shop"), minutes=31)
    recent = aged(SessionService.open_session("shop"), minutes=5)
    full = aged(create_session_at(channel, lines=1), minutes=31)
    parked = SessionService.open_session("shop")
    parked = aged(SessionService.park(parked.session_key, "shop"), minutes=31)
    named = aged(SessionService.open_session("shop", data={"customer": {"name": "Ana"}}), minutes=31)
    emptied = create_session_at(channel, lines=1)
    emptied = aged(ModifyService.modify_session(emptied.session_key, "shop", [{"op": "remove_line", "line_id": emptied.lines[0]["line_id"]}]), minutes=31)
    table = aged(SessionService.open_session("shop", handle_type="table", handle_ref="4"), minutes=31)
    old_full = aged(create_session_at(channel, lines=1), hours=25)
    assert sorted(MaintenanceService.abandon_stale_sessions(dry_run=True)) == sorted(
        [empty.session_key, emptied.session_key, old_full.session_key])
    call_command("abandon_stale_sessions", stdout=open("/dev/null", "w"))
    states = dict(Session.objects.values_list("session_key", "state"))
    assert {key for key, state in states.items() if state == "abandoned"} == {empty.session_key, emptied.session_key, old_full.session_key}
    for kept in (recent, full, parked, named, table):
        assert states[kept.session_key] == "open"


@override_settings(OMNIMAN={"EMPTY_SESSION_TTL_MINUTES": 1})
def test_the_short_ttl_is_a_setting():
    make_channel("shop")
    empty = aged(SessionService.open_session("shop"), minutes=2)
    assert MaintenanceService.abandon_stale_sessions() == [empty.session_key]


def test_empty_sessions_q_matches_what_the_lists_skip():
    channel = make_channel("shop")
    empty = SessionService.open_session("shop")
    full = create_session_at(channel, lines=1)
    assert list(Session.objects.filter(empty_sessions()).values_list("pk", flat=True)) == [empty.pk]
    assert list(Session.objects.exclude(empty_sessions()).values_list("pk", flat=True)) == [full.pk]
