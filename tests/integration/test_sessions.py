"""Sessions: open (get-or-open), the eight ops, checks, resolve, abandon."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from omniman import registry
from omniman.exceptions import IssueResolveError, OmnimanError, SessionError, ValidationError
from omniman.models import Session
from omniman.services import ModifyService, ResolveService, SessionService, SessionWriteService
from tests.factories import DbState, commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db


def modify(session, *ops, **kwargs):
    return ModifyService.modify_session(session.session_key, session.channel.code, list(ops), **kwargs)


# -- open / abandon ---------------------------------------------------------------


def test_open_copies_channel_policies_and_starts_at_rev_zero():
    channel = make_channel(pricing_policy="external", edit_policy="locked")
    session = SessionService.open_session(channel.code, data={"customer": {"name": "Ana"}})
    assert session.state == "open" and session.rev == 0
    assert session.pricing_policy == "external" and session.edit_policy == "locked"
    assert session.session_key.startswith("SESS-")
    assert session.data == {"customer": {"name": "Ana"}}
    assert session.items == [] and session.total_q == 0


def test_open_with_a_handle_is_get_or_open():
    channel = make_channel()
    first = SessionService.open_session(channel.code, handle_type="table", handle_ref="5")
    again = SessionService.open_session(channel.code, handle_type="table", handle_ref=5)
    other = SessionService.open_session(channel.code, handle_type="table", handle_ref="6")
    assert again.pk == first.pk and other.pk != first.pk
    modify(first, {"op": "add_line", "sku": "A", "qty": 1})
    commit(Session.objects.get(pk=first.pk))
    # Once the round is committed, the table opens a fresh session.
    fresh = SessionService.open_session(channel.code, handle_type="table", handle_ref="5")
    assert fresh.pk != first.pk and fresh.rev == 0


def test_same_handle_in_another_channel_is_another_session():
    a, b = make_channel(), make_channel()
    one = SessionService.open_session(a.code, handle_type="table", handle_ref="1")
    two = SessionService.open_session(b.code, handle_type="table", handle_ref="1")
    assert one.pk != two.pk


def test_open_with_an_explicit_key():
    channel = make_channel()
    session = SessionService.open_session(channel.code, session_key="web-basket-42")
    assert session.session_key == "web-basket-42"
    assert SessionService.open_session(channel.code, session_key="web-basket-42").pk == session.pk
    with pytest.raises(SessionError) as err:
        SessionService.open_session(make_channel().code, session_key="web-basket-42")
    assert err.value.code == "session_key_conflict"


def _savepoints(ctx) -> int:
    return sum("SAVEPOINT" in q["sql"].upper() for q in ctx.captured_queries)


def test_open_pays_a_savepoint_only_when_there_is_a_handle_or_key_to_race_on():
    channel = make_channel()
    with CaptureQueriesContext(connection) as plain:
        session = SessionService.open_session(channel.code)
    with CaptureQueriesContext(connection) as handled:
        SessionService.open_session(channel.code, handle_type="table", handle_ref="9")
    with CaptureQueriesContext(connection) as keyed:
        SessionService.open_session(channel.code, session_key="web-basket-43")
    assert session.created and Session.objects.filter(pk=session.pk, state="open").exists()
    # A new basket is one autocommitted insert: no transaction of its own, so no savepoint even inside the
    # test's transaction. A handle (or a given key) opens its transaction (a savepoint here) and puts
    # SAVEPOINT + RELEASE around the insert: the race guard.
    assert _savepoints(plain) == 0
    assert _savepoints(handled) == 4
    assert _savepoints(keyed) == 4


def test_a_generated_key_that_clashes_is_an_error_that_writes_nothing(monkeypatch):
    channel = make_channel()
    taken = SessionService.open_session(channel.code)
    monkeypatch.setattr("omniman.services.sessions.new_session_key", lambda: taken.session_key)
    before = DbState()
    with pytest.raises(IntegrityError), transaction.atomic():
        SessionService.open_session(channel.code, data={"customer": "Bia"})
    before.assert_unchanged()
    assert Session.objects.get(session_key=taken.session_key).data == taken.data


def test_open_with_items_on_a_locked_external_channel():
    channel = make_channel(pricing_policy="external", edit_policy="locked", config={"required_checks_on_commit": ["stock"]})
    session = SessionService.open_session(
        channel.code,
        handle_type="marketplace",
        handle_ref="IFD-991",
        items=[{"sku": "BURGER", "qty": 2, "unit_price_q": 2590, "name": "X-Burger", "meta": {"note": "no onions"}}],
    )
    assert session.rev == 1
    item = session.items[0]
    assert (item["name"], item["qty"], item["line_total_q"], item["meta"]) == ("X-Burger", Decimal("2"), 5180, {"note": "no onions"})
    assert session.channel.required_checks == ["stock"]
    from omniman.models import Directive

    assert Directive.objects.get().payload["rev"] == 1


def test_abandon_is_final_and_idempotent():
    session = create_session_at()
    abandoned = SessionService.abandon_session(session.session_key, session.channel.code, actor="ana")
    assert abandoned.state == "abandoned"
    assert SessionService.abandon_session(session.session_key, session.channel.code).state == "abandoned"
    committed = create_session_at(session.channel)
    commit(committed)
    with pytest.raises(SessionError) as err:
        SessionService.abandon_session(committed.session_key, committed.channel.code)
    assert err.value.code == "already_committed"


# -- the ops ----------------------------------------------------------------------


def test_add_line_defaults_and_totals():
    session = create_session_at(lines=0)
    session = modify(session, {"op": "add_line", "sku": " CAF ", "qty": "1.5", "unit_price_q": 333})
    item = session.items[0]
    assert item["sku"] == "CAF" and item["name"] == "CAF" and item["meta"] == {}
    assert item["qty"] == Decimal("1.5")
    assert item["line_total_q"] == 500  # 499.5 rounds half up
    assert item["line_id"]
    assert session.total_q == 500


def test_quantities_keep_three_decimals_exactly():
    session = create_session_at(lines=0)
    session = modify(
        session,
        {"op": "add_line", "sku": "CHEESE", "qty": "0.125", "unit_price_q": 4990},
        {"op": "add_line", "sku": "HAM", "qty": 0.1, "unit_price_q": 3},
        {"op": "add_line", "sku": "BOX", "qty": Decimal("2.000"), "unit_price_q": 1},
    )
    assert [i["qty"] for i in session.items] == [Decimal("0.125"), Decimal("0.1"), Decimal("2")]
    assert [i["line_total_q"] for i in session.items] == [624, 0, 2]  # 623.75 → 624; 0.3 → 0
    assert session.lines[1]["qty"] == "0.1"


def test_items_is_a_copy():
    session = create_session_at()
    items = session.items
    items[0]["qty"] = Decimal("99")
    items.append({"sku": "hack"})
    assert len(session.items) == 1 and session.items[0]["qty"] == Decimal("1")
    with pytest.raises(AttributeError):
        session.items = []


def test_set_qty_remove_and_totals_follow():
    session = create_session_at(lines=2, price=250)
    first, second = session.items
    session = modify(session, {"op": "set_qty", "line_id": first["line_id"], "qty": 4})
    assert session.items[0]["line_total_q"] == 1000 and session.total_q == 1250
    session = modify(session, {"op": "remove_line", "line_id": second["line_id"]})
    assert [i["line_id"] for i in session.items] == [first["line_id"]]
    assert session.total_q == 1000


def test_replace_sku_reprices_and_drops_the_override():
    session = create_session_at(price=1000)
    line_id = session.items[0]["line_id"]
    session = modify(
        session,
        {"op": "set_line_meta", "line_id": line_id, "path": "note", "value": "well done"},
        {"op": "override_price", "line_id": line_id, "unit_price_q": 900, "reason": "damaged"},
    )
    session = modify(session, {"op": "replace_sku", "line_id": line_id, "sku": "BIG", "unit_price_q": 1500, "name": "Big"})
    item = session.items[0]
    assert (item["sku"], item["name"], item["unit_price_q"], item["line_total_q"]) == ("BIG", "Big", 1500, 1500)
    assert item["meta"] == {"note": "well done"}
    assert item["line_id"] == line_id


def test_replace_sku_on_external_requires_price():
    channel = make_channel(pricing_policy="external")
    session = SessionService.open_session(channel.code, items=[{"sku": "A", "qty": 1, "unit_price_q": 1}])
    with pytest.raises(ValidationError) as err:
        modify(session, {"op": "replace_sku", "line_id": session.items[0]["line_id"], "sku": "B"})
    assert err.value.code == "missing_unit_price_q"


def test_set_data_nested_paths():
    session = create_session_at()
    session = modify(
        session,
        {"op": "set_data", "path": "customer.name", "value": "Ana"},
        {"op": "set_data", "path": "customer.phone", "value": "+55 11 99999-0000"},
        {"op": "set_data", "path": "notes", "value": "<b>allergic</b>"},
    )
    assert session.data["customer"] == {"name": "Ana", "phone": "+55 11 99999-0000"}
    assert session.data["notes"] == "<b>allergic</b>"


def test_merge_lines_adds_quantities():
    session = create_session_at(lines=0)
    session = modify(
        session,
        {"op": "add_line", "sku": "A", "qty": "1.5", "unit_price_q": 100},
        {"op": "add_line", "sku": "A", "qty": 2, "unit_price_q": 100},
    )
    source, target = session.items
    session = modify(session, {"op": "merge_lines", "from_line_id": source["line_id"], "into_line_id": target["line_id"]})
    assert [(i["line_id"], i["qty"], i["line_total_q"]) for i in session.items] == [(target["line_id"], Decimal("3.5"), 350)]


def test_set_line_meta_and_repeat_override_keeps_the_original_price():
    session = create_session_at(price=1000)
    line_id = session.items[0]["line_id"]
    session = modify(
        session,
        {"op": "set_line_meta", "line_id": line_id, "path": "modifiers.extra", "value": ["bacon"]},
        {"op": "override_price", "line_id": line_id, "unit_price_q": 900, "reason": "a", "actor": "m1"},
        {"op": "override_price", "line_id": line_id, "unit_price_q": 800, "reason": "b", "actor": "m2"},
    )
    meta = session.items[0]["meta"]
    assert meta["modifiers"] == {"extra": ["bacon"]}
    assert meta["price_override"] == {"from": 1000, "to": 800, "reason": "b", "actor": "m2"}


def test_override_actor_defaults_to_ctx():
    session = create_session_at()
    line_id = session.items[0]["line_id"]
    session = modify(session, {"op": "override_price", "line_id": line_id, "unit_price_q": 5, "reason": "r"}, ctx={"actor": "bob"})
    assert session.items[0]["meta"]["price_override"]["actor"] == "bob"


# -- checks and resolution -----------------------------------------------------------


def test_write_check_records_result_and_expiry():
    session = create_session_at()
    assert SessionWriteService.write_check(
        session.session_key,
        session.channel.code,
        check_code="stock",
        expected_rev=session.rev,
        result={"holds": ["H1"], "expires_at": "2030-01-01T12:00:00"},
        status="issues",
        issues=[{"code": "short", "message": "Only 1 left", "sku": "SKU-0", "actions": [{"id": "reduce", "label": "Reduce to 1", "ops": []}]}],
    )
    stored = Session.objects.get(pk=session.pk)
    check = stored.data["checks"]["stock"]
    assert check["rev"] == session.rev and check["status"] == "issues"
    assert check["result"]["holds"] == ["H1"]
    assert check["expires_at"] == "2030-01-01T12:00:00+00:00"
    issue = stored.data["issues"][0]
    assert issue["id"] == "stock:short:SKU-0" and issue["source"] == "stock" and issue["severity"] == "blocking"
    assert stored.rev == session.rev


def _with_issue(session, actions, source="stock"):
    SessionWriteService.write_check(
        session.session_key,
        session.channel.code,
        check_code=source,
        expected_rev=session.rev,
        result={},
        issues=[{"id": "i1", "code": "short", "message": "Short", "actions": actions}],
    )


def test_resolve_applies_the_action_ops():
    session = create_session_at(lines=2)
    line_id = session.items[0]["line_id"]
    _with_issue(session, [{"id": "reduce", "label": "Reduce to 1", "ops": [{"op": "set_qty", "line_id": line_id, "qty": "0.5"}]}])
    resolved = ResolveService.resolve(session.session_key, session.channel.code, issue_id="i1", action_id="reduce")
    assert resolved.rev == session.rev + 1
    assert resolved.items[0]["qty"] == Decimal("0.5")
    assert resolved.data["issues"] == [] and resolved.data["checks"] == {}


def test_resolve_with_a_stale_rev_applies_nothing():
    session = create_session_at()
    _with_issue(session, [{"id": "remove", "label": "Remove", "ops": [{"op": "remove_line", "line_id": session.items[0]["line_id"]}]}])
    state = DbState(session)
    with pytest.raises(SessionError) as err:
        ResolveService.resolve(session.session_key, session.channel.code, issue_id="i1", action_id="remove", expected_rev=session.rev - 1)
    assert err.value.code == "stale_rev"
    state.assert_unchanged()


class SubstituteResolver:
    source = "stock"

    def __init__(self, fail=None):
        self.fail = fail
        self.calls = []

    def resolve(self, *, session, issue, action, ctx):
        self.calls.append((issue["id"], action["id"], ctx.get("actor")))
        if self.fail:
            raise self.fail
        return ModifyService.modify_session(
            session.session_key, session.channel.code, [{"op": "set_data", "path": "resolved_by", "value": "resolver"}]
        )


def test_resolve_delegates_to_the_registered_resolver():
    resolver = registry.register_issue_resolver(SubstituteResolver())
    session = create_session_at()
    _with_issue(session, [{"id": "sub", "label": "Substitute", "ops": []}])
    resolved = ResolveService.resolve(session.session_key, session.channel.code, issue_id="i1", action_id="sub", ctx={"actor": "ana"})
    assert resolver.calls == [("i1", "sub", "ana")]
    assert resolved.data["resolved_by"] == "resolver"


@pytest.mark.parametrize(
    "failure,code",
    [(RuntimeError("backend down"), "resolver_error"), (ValidationError("invalid_qty"), "invalid_qty")],
    ids=["unexpected", "omniman-error"],
)
def test_resolver_failures(failure, code):
    registry.register_issue_resolver(SubstituteResolver(fail=failure))
    session = create_session_at()
    _with_issue(session, [{"id": "sub", "label": "Substitute", "ops": []}])
    state = DbState(session)
    with pytest.raises(OmnimanError) as err:
        ResolveService.resolve(session.session_key, session.channel.code, issue_id="i1", action_id="sub")
    assert err.value.code == code
    if code == "resolver_error":
        assert isinstance(err.value, IssueResolveError)
        assert "backend down" in err.value.message
    state.assert_unchanged()


def test_database_enforces_one_open_session_per_handle():
    from django.db import IntegrityError, transaction

    channel = make_channel()
    Session.objects.create(session_key="A", channel=channel, handle_type="table", handle_ref="9")
    with pytest.raises(IntegrityError), transaction.atomic():
        Session.objects.create(session_key="B", channel=channel, handle_type="table", handle_ref="9")
    # Closed sessions and handle-less sessions do not count.
    Session.objects.filter(session_key="A").update(state="committed")
    Session.objects.create(session_key="C", channel=channel, handle_type="table", handle_ref="9")
    Session.objects.create(session_key="D", channel=channel)
    Session.objects.create(session_key="E", channel=channel)
    assert Session.objects.filter(channel=channel).count() == 4


def test_abandon_enqueues_the_channels_on_abandon_topics(django_capture_on_commit_callbacks):
    from omniman.models import Directive
    from omniman.signals import session_abandoned

    channel = make_channel(config={"on_abandon": ["stock.release_session"]})
    session = create_session_at(channel)
    seen = []
    session_abandoned.connect(receiver := lambda sender, session, actor, **kw: seen.append((session.session_key, actor)))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            SessionService.abandon_session(session.session_key, channel.code, actor="ana")
            SessionService.abandon_session(session.session_key, channel.code, actor="ana")  # twice: one directive
    finally:
        session_abandoned.disconnect(receiver)
    directive = Directive.objects.get(topic="stock.release_session")
    assert directive.payload == {"session_key": session.session_key, "channel_code": channel.code}
    assert seen == [(session.session_key, "ana")]
