"""The session answer (``omniman.api.serializers.session_detail``) is ``SessionDetailSerializer``'s output, byte for byte.

The API answers every session request (open, modify, resolve, park…) with
``session_detail``, built without a serializer; ``SessionDetailSerializer``
stays its schema. Both are rendered by the API's renderer and compared as
bytes: the same keys, in the same order, with the same types and values.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from omniman.api.serializers import SessionDetailSerializer, session_detail
from omniman.models import Channel, Session
from omniman.services import AdjustmentService, ModifyService, SessionService
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db


def rendered(value) -> bytes:
    return JSONRenderer().render(value)


def assert_same_answer(session: Session) -> None:
    expected = rendered(SessionDetailSerializer(session).data)
    assert rendered(session_detail(session)) == expected
    # The same object read back from the database renders the same too.
    fresh = Session.objects.select_related("channel").get(pk=session.pk)
    assert rendered(session_detail(fresh)) == rendered(SessionDetailSerializer(fresh).data)


def test_an_empty_session():
    session = SessionService.open_session(make_channel().code)
    assert_same_answer(session)
    answer = session_detail(session)
    assert list(answer) == list(SessionDetailSerializer().fields)
    assert answer["items"] == [] and answer["committed_at"] is None and answer["rev"] == 0


def test_a_session_with_lines_a_handle_and_free_data():
    session = create_session_at(lines=3, rev=4, handle_type="table", handle_ref="7", data={"customer": "Ana"})
    session = ModifyService.modify_session(
        session.session_key, session.channel.code, [{"op": "add_line", "sku": "HALF", "qty": "1.5", "unit_price_q": 333}]
    )
    assert_same_answer(session)
    answer = session_detail(session)
    assert answer["handle_ref"] == "7" and answer["data"] == {"customer": "Ana", "touch": 3}
    assert answer["items"][-1]["qty"] == "1.5" and isinstance(answer["total_q"], int)


def test_checks_and_issues_but_not_the_reserved_data():
    session = create_session_at(lines=1)
    data = {
        **session.data,
        "note": "by the window",
        "checks": {"stock": {"rev": session.rev, "status": "ok", "result": {"held": 1}}},
        "issues": [{"id": "i-1", "source": "stock", "code": "out_of_stock", "actions": [{"id": "a-1", "label": "Remove"}]}],
    }
    Session.objects.filter(pk=session.pk).update(data=data)
    session = Session.objects.select_related("channel").get(pk=session.pk)
    assert_same_answer(session)
    answer = session_detail(session)
    assert answer["checks"]["stock"]["status"] == "ok" and answer["issues"][0]["code"] == "out_of_stock"
    assert "checks" not in answer["data"] and answer["data"]["note"] == "by the window"


def test_adjustments_service_charge_and_a_discount():
    channel = make_channel(config={"service_charge_percent": 10, "currency": "BRL"})
    session = create_session_at(channel, lines=2, price=1250)
    session = AdjustmentService.discount(
        session.session_key, channel.code, percent="10", reason="regular", actor="ana", roles={"manager"}
    )
    assert_same_answer(session)
    totals = session_detail(session)["totals"]
    assert {a["kind"] for a in totals["adjustments"]} == {"discount", "service_charge"}
    assert totals["discount_q"] == 250 and totals["total_q"] == session.total_q


def test_an_external_pricing_channel():
    channel = make_channel(pricing_policy=Channel.PricingPolicy.EXTERNAL)
    session = create_session_at(channel, lines=2, price=990)
    assert_same_answer(session)
    assert session_detail(session)["pricing_policy"] == "external"


def test_a_committed_session_in_another_timezone():
    session = create_session_at(lines=1)
    commit(session)
    session = Session.objects.select_related("channel").get(pk=session.pk)
    with timezone.override("America/Sao_Paulo"):
        assert_same_answer(session)
        answer = session_detail(session)
    assert answer["state"] == "committed" and answer["committed_at"].endswith("-03:00")
    assert session_detail(session)["committed_at"].endswith("Z")  # UTC outside the override
