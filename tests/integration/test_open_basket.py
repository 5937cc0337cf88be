"""Issue 19's open slice: a new basket in one statement, and the 86 list read with the modify's lock.

A new basket (no handle, no key, no items) is one autocommitted statement on
PostgreSQL that reads the channel and inserts the session; its row is the
row ``save()`` writes. A modification that adds a SKU reads the kitchen's
sold-out list in the statement that locks the session: no statement of its
own, and never kept from one request to the next.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman import conf
from omniman.exceptions import OmnimanError
from omniman.models import Channel, Session, SoldOut
from omniman.services import KitchenService, ModifyService, SessionService
from omniman.services import pipeline
from tests.factories import DbState, make_channel

pytestmark = pytest.mark.django_db(transaction=True)

SOLD_OUT_READ = re.compile(r'^\s*SELECT\s+"sku"\s+FROM\s+"omniman_soldout"', re.IGNORECASE)


def _code(call) -> str:
    with pytest.raises(OmnimanError) as err:
        call()
    return err.value.code


def _row(session: Session) -> dict:
    return {field.attname: getattr(session, field.attname) for field in Session._meta.concrete_fields}


# -- open ------------------------------------------------------------------------


def test_a_new_basket_is_one_autocommitted_statement_on_postgresql():
    channel = make_channel()
    SessionService.open_session(channel.code)  # per-connection statements built
    with CaptureQueriesContext(connection) as ctx:
        session = SessionService.open_session(channel.code, data={"customer": "Bia"})
    sql = [q["sql"].strip().upper() for q in ctx.captured_queries]
    assert not any(s in ("BEGIN", "COMMIT") or s.startswith(("SAVEPOINT", "RELEASE")) for s in sql)
    assert len(sql) == (1 if connection.vendor == "postgresql" else 2)  # elsewhere: the channel, then the insert
    assert session.created and Session.objects.filter(pk=session.pk, state="open").exists()
    with CaptureQueriesContext(connection) as later:
        assert session.channel.code == channel.code  # read by that statement
    assert len(later.captured_queries) == 0


def test_a_new_basket_is_the_row_save_writes():
    channel = make_channel(pricing_policy="external", edit_policy="locked", config={"currency": "BRL"})
    before = timezone.now()
    session = SessionService.open_session(channel.code, handle_type="counter", data={"customer": {"name": "Ana"}})
    # The same open through save() (a given key takes the transactional path): the same row but for key and times.
    saved = SessionService.open_session(channel.code, handle_type="counter", session_key="reference-basket", data={"customer": {"name": "Ana"}})
    fresh, reference = Session.objects.get(pk=session.pk), Session.objects.get(pk=saved.pk)
    assert _row(session) == _row(fresh)  # the returned object is the stored row
    different = {"id", "session_key", "opened_at", "updated_at"}
    assert {k: v for k, v in _row(fresh).items() if k not in different} == {
        k: v for k, v in _row(reference).items() if k not in different
    }
    assert fresh.channel_id == channel.pk and fresh.pricing_policy == "external" and fresh.edit_policy == "locked"
    assert fresh.rev == 0 and fresh.lines == [] and fresh.total_q == 0 and fresh.state == "open"
    assert fresh.handle_type == "counter" and fresh.handle_ref == "" and fresh.data == {"customer": {"name": "Ana"}}
    assert re.fullmatch(re.escape(conf.get("SESSION_KEY_PREFIX")) + r"[0-9A-F]{20}", fresh.session_key)
    assert before <= fresh.opened_at <= fresh.updated_at <= timezone.now() + timedelta(seconds=1)
    assert fresh.committed_at is None and fresh.commit_token == ""
    assert session.channel.pk == channel.pk and session.channel.config == channel.config


@pytest.mark.parametrize("active", [False, None])
def test_an_unknown_or_inactive_channel_writes_nothing(active):
    code = "no-such-channel"
    if active is False:
        code = make_channel(is_active=False).code
    before = DbState()
    assert _code(lambda: SessionService.open_session(code)) == "channel_not_found"
    assert _code(lambda: SessionService.open_session(code, data={"checks": {}})) == "channel_not_found"  # told first
    before.assert_unchanged()


def test_a_bad_argument_on_a_known_channel_writes_nothing():
    channel = make_channel()
    before = DbState()
    assert _code(lambda: SessionService.open_session(channel.code, data=["not", "an", "object"])) == "invalid_field"
    assert _code(lambda: SessionService.open_session(channel.code, handle_type="x" * 33)) == "invalid_field"
    before.assert_unchanged()


def test_the_api_opens_a_basket_with_201(settings):
    from tests.integration.api.conftest import make_user, token_client

    channel = make_channel(config={"currency": "BRL"})
    client = token_client(make_user("opener", "manager"))
    response = client.post("/api/sessions/", {"channel_code": channel.code}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["rev"] == 0 and body["state"] == "open" and body["channel_code"] == channel.code
    assert Session.objects.filter(session_key=body["session_key"], channel=channel).exists()
    missing = client.post("/api/sessions/", {"channel_code": "nope"}, format="json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "channel_not_found"


# -- the 86 list in a modify -----------------------------------------------------


def _add(session: Session, sku: str, **kwargs):
    op = {"op": "add_line", "sku": sku, "qty": "1", "unit_price_q": 500}
    return ModifyService.modify_session(session.session_key, session.channel.code, [op], **kwargs)


def test_a_modify_that_adds_reads_the_86_list_with_its_lock():
    channel = make_channel()
    session = SessionService.open_session(channel.code)
    SoldOut.objects.create(sku="GONE", sold_out=True)
    _add(session, "WARM")  # per-connection statements built
    with CaptureQueriesContext(connection) as ctx:
        _add(session, "TEA")
    sql = [q["sql"] for q in ctx.captured_queries]
    assert not any(SOLD_OUT_READ.match(s) for s in sql)  # no statement of its own
    assert any("omniman_soldout" in s and "omniman_session" in s for s in sql)  # in the lock's
    assert _code(lambda: _add(session, "GONE")) == "sold_out"


def test_an_86_is_refused_on_the_very_next_modify_and_lifted_on_the_next():
    channel = make_channel()
    session = SessionService.open_session(channel.code)
    _add(session, "CRO")
    KitchenService.set_sold_out("CRO", True)
    before = DbState(session)
    assert _code(lambda: _add(session, "CRO")) == "sold_out"
    replace = [{"op": "replace_sku", "line_id": Session.objects.get(pk=session.pk).lines[0]["line_id"], "sku": "CRO"}]
    assert _code(lambda: ModifyService.modify_session(session.session_key, channel.code, replace)) == "sold_out"
    before.assert_unchanged()
    KitchenService.set_sold_out("CRO", False)
    assert _add(session, "CRO").rev == 2


def test_a_callers_ctx_cannot_stand_in_for_the_86_list():
    channel = make_channel()
    session = SessionService.open_session(channel.code)
    KitchenService.set_sold_out("GONE", True)
    before = DbState(session)
    for ctx in ({pipeline.SOLD_OUT_READ: []}, {pipeline.SOLD_OUT_READ: frozenset()}):
        assert _code(lambda: _add(session, "GONE", ctx=ctx)) == "sold_out"
    before.assert_unchanged()


def test_the_lock_read_tells_a_missing_session_or_channel_as_before():
    channel = make_channel()
    assert _code(lambda: _add(Session(session_key="nope", channel=channel), "TEA")) == "not_found"
    ghost = Session(session_key="nope", channel=Channel(code="no-channel"))
    assert _code(lambda: _add(ghost, "TEA")) == "channel_not_found"
