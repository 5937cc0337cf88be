"""The invariants, one test (or a few) per invariant, named after it.

I6 (directives at least once, idempotent handlers) is proven with the
directive engine.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from omniman import checks, registry
from omniman.exceptions import CommitError, InvalidTransition, OmnimanError, SessionError, ValidationError
from omniman.models import Directive, IdempotencyKey, Order, OrderEvent, OrderItem, Session
from omniman.services import CommitService, ModifyService, OrderService, SessionService, SessionWriteService
from tests.factories import DbState, commit, create_order_at, create_session_at, make_channel

pytestmark = pytest.mark.django_db


# -- I1 idempotent commit --------------------------------------------------------


def test_i1_commit_replay_returns_the_same_order():
    session = create_session_at(lines=2)
    first = commit(session, "key-1")
    second = commit(session, "key-1")
    assert first["idempotent"] is False
    assert second["idempotent"] is True
    assert {k: v for k, v in second.items() if k != "idempotent"} == {
        k: v for k, v in first.items() if k != "idempotent"
    }
    assert Order.objects.count() == 1
    assert OrderItem.objects.count() == 2
    key = IdempotencyKey.objects.get(scope=f"commit:{session.channel.code}", key="key-1")
    assert key.status == "done" and key.response_body["order_ref"] == first["order_ref"]


def test_i1_second_key_on_committed_session_is_refused():
    session = create_session_at()
    commit(session, "a")
    with pytest.raises(CommitError) as err:
        commit(session, "b")
    assert err.value.code == "already_committed"
    assert Order.objects.count() == 1


def test_i1_same_key_for_another_session_is_a_conflict():
    channel = make_channel()
    one = create_session_at(channel)
    two = create_session_at(channel)
    commit(one, "shared")
    state = DbState(two)
    with pytest.raises(OmnimanError) as err:
        commit(two, "shared")
    assert err.value.code == "conflict"
    state.assert_unchanged()


def test_i1_failed_commit_can_be_retried_with_the_same_key():
    channel = make_channel(config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(channel)
    with pytest.raises(CommitError) as err:
        commit(session, "retry-me")
    assert err.value.code == "missing_check"
    assert IdempotencyKey.objects.get(key="retry-me").status == "failed"
    SessionWriteService.write_check(
        session.session_key, channel.code, check_code="stock", expected_rev=session.rev, result={}
    )
    result = commit(session, "retry-me")
    assert result["idempotent"] is False
    assert Order.objects.filter(ref=result["order_ref"]).exists()


def test_i1_in_progress_key_is_refused_until_its_lease_expires():
    session = create_session_at()
    scope = f"commit:{session.channel.code}"
    row = IdempotencyKey.objects.create(
        scope=scope, key="busy", fingerprint=session.session_key, expires_at=timezone.now() + timedelta(hours=1)
    )
    with pytest.raises(CommitError) as err:
        commit(session, "busy")
    assert err.value.code == "in_progress"
    assert Order.objects.count() == 0
    # The request that held it died: after the lease a retry takes the key over.
    IdempotencyKey.objects.filter(pk=row.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert commit(session, "busy")["idempotent"] is False
    assert Order.objects.count() == 1


@pytest.mark.parametrize("key", ["", "   ", None])
def test_i1_missing_idempotency_key(key):
    session = create_session_at()
    state = DbState(session)
    with pytest.raises(ValidationError) as err:
        CommitService.commit(session.session_key, session.channel.code, idempotency_key=key)
    assert err.value.code == "missing_idempotency_key"
    state.assert_unchanged()
    assert IdempotencyKey.objects.count() == 0


# -- I2 validators don't mutate, modifiers do no IO -------------------------------


class MutatingValidator:
    code = "mutating"
    stage = "draft"

    def validate(self, *, channel, session, ctx):
        session.data["sneaky"] = True


class QueryingModifier:
    code = "querying"
    order = 10

    def apply(self, *, channel, session, ctx):
        Session.objects.count()


class QueryingValidator:
    code = "querying-validator"
    stage = "commit"

    def validate(self, *, channel, session, ctx):
        list(Order.objects.all())


class UpperNameModifier:
    code = "upper-name"
    order = 5

    def apply(self, *, channel, session, ctx):
        for line in session.lines:
            line["name"] = line["name"].upper()


def test_i2_validator_that_mutates_is_rejected():
    session = create_session_at()
    registry.register_validator(MutatingValidator())
    state = DbState(session)
    with pytest.raises(OmnimanError) as err:
        ModifyService.modify_session(session.session_key, session.channel.code, [{"op": "set_data", "path": "a", "value": 1}])
    assert err.value.code == "pipeline_violation"
    assert err.value.context["validator"] == "mutating"
    state.assert_unchanged()


def test_i2_modifier_that_queries_the_database_is_rejected():
    session = create_session_at()
    registry.register_modifier(QueryingModifier())
    state = DbState(session)
    with pytest.raises(OmnimanError) as err:
        ModifyService.modify_session(session.session_key, session.channel.code, [{"op": "set_data", "path": "a", "value": 1}])
    assert err.value.code == "pipeline_violation"
    state.assert_unchanged()


def test_i2_commit_validator_that_queries_is_rejected():
    session = create_session_at()
    registry.register_validator(QueryingValidator())
    with pytest.raises(OmnimanError) as err:
        commit(session)
    assert err.value.code == "pipeline_violation"
    assert Order.objects.count() == 0
    assert Session.objects.get(pk=session.pk).state == "open"


def test_i2_modifiers_are_deterministic():
    from omniman.services import pipeline

    registry.register_modifier(UpperNameModifier())
    session = create_session_at(lines=3)
    once = Session.objects.get(pk=session.pk)
    twice = Session.objects.get(pk=session.pk)
    pipeline.run_modifiers(once, {})
    pipeline.recompute_line_totals(once)
    pipeline.run_modifiers(twice, {})
    pipeline.recompute_line_totals(twice)
    pipeline.run_modifiers(twice, {})
    pipeline.recompute_line_totals(twice)
    assert once.lines == twice.lines
    assert once.total_q == sum(line["line_total_q"] for line in once.lines)
    assert [line["name"] for line in session.lines] == ["ITEM 0", "ITEM 1", "ITEM 2"]


# -- I3 edit policy locked ------------------------------------------------------


@pytest.mark.parametrize(
    "op",
    [
        {"op": "add_line", "sku": "X", "qty": 1, "unit_price_q": 100},
        {"op": "remove_line", "line_id": "L"},
        {"op": "set_qty", "line_id": "L", "qty": 2},
        {"op": "replace_sku", "line_id": "L", "sku": "Y", "unit_price_q": 1},
        {"op": "merge_lines", "from_line_id": "L", "into_line_id": "M"},
        {"op": "set_line_meta", "line_id": "L", "path": "note", "value": "x"},
        {"op": "override_price", "line_id": "L", "unit_price_q": 1, "reason": "r"},
    ],
    ids=lambda op: op["op"],
)
def test_i3_locked_session_refuses_item_ops(op):
    channel = make_channel(edit_policy="locked", pricing_policy="external")
    session = SessionService.open_session(
        channel.code, items=[{"sku": "A", "qty": 1, "unit_price_q": 500}, {"sku": "A", "qty": 2, "unit_price_q": 500}]
    )
    assert session.rev == 1 and len(session.items) == 2
    lines = session.items
    op = {**op}
    for field, value in (("line_id", "L"), ("from_line_id", "L"), ("into_line_id", "M")):
        if op.get(field) == value:
            op[field] = lines[0 if value == "L" else 1]["line_id"]
    state = DbState(session)
    with pytest.raises(SessionError) as err:
        ModifyService.modify_session(session.session_key, channel.code, [op])
    assert err.value.code == "locked"
    state.assert_unchanged()


def test_i3_locked_session_allows_set_data():
    channel = make_channel(edit_policy="locked", pricing_policy="external")
    session = SessionService.open_session(channel.code, items=[{"sku": "A", "qty": 1, "unit_price_q": 500}])
    session = ModifyService.modify_session(
        session.session_key, channel.code, [{"op": "set_data", "path": "customer.phone", "value": "+55 11 5555"}]
    )
    assert session.rev == 2
    assert session.data["customer"] == {"phone": "+55 11 5555"}


# -- I4 external pricing never repriced ------------------------------------------


class RepricingModifier:
    code = "reprice-everything"
    order = 10

    def apply(self, *, channel, session, ctx):
        for line in session.lines:
            line["unit_price_q"] = 1


class PolitePricingModifier:
    """Reprices internal sessions only, as every pricing modifier must."""

    code = "polite-pricing"
    order = 10

    def apply(self, *, channel, session, ctx):
        if session.pricing_policy == "external":
            return
        for line in session.lines:
            if "price_override" not in line["meta"]:
                line["unit_price_q"] = 777


def test_i4_external_prices_are_kept():
    registry.register_modifier(PolitePricingModifier())
    channel = make_channel(pricing_policy="external")
    session = SessionService.open_session(channel.code, items=[{"sku": "A", "qty": 2, "unit_price_q": 1250}])
    assert session.items[0]["unit_price_q"] == 1250
    assert session.total_q == 2500
    internal = create_session_at(make_channel(), price=1250)
    assert internal.items[0]["unit_price_q"] == 777


def test_i4_modifier_that_reprices_an_external_session_is_rejected():
    channel = make_channel(pricing_policy="external")
    session = SessionService.open_session(channel.code, items=[{"sku": "A", "qty": 1, "unit_price_q": 1250}])
    registry.register_modifier(RepricingModifier())
    state = DbState(session)
    with pytest.raises(OmnimanError) as err:
        ModifyService.modify_session(
            session.session_key, channel.code, [{"op": "add_line", "sku": "B", "qty": 1, "unit_price_q": 300}]
        )
    assert err.value.code == "pipeline_violation"
    state.assert_unchanged()


def test_i4_external_add_line_requires_a_price():
    channel = make_channel(pricing_policy="external")
    session = SessionService.open_session(channel.code)
    state = DbState(session)
    with pytest.raises(ValidationError) as err:
        ModifyService.modify_session(session.session_key, channel.code, [{"op": "add_line", "sku": "A", "qty": 1}])
    assert err.value.code == "missing_unit_price_q"
    state.assert_unchanged()


# -- I5 audited price override ----------------------------------------------------


def test_i5_price_override_is_recorded_and_audited_at_commit():
    session = create_session_at(lines=2, price=1000)
    line = session.items[0]
    session = ModifyService.modify_session(
        session.session_key,
        session.channel.code,
        [{"op": "override_price", "line_id": line["line_id"], "unit_price_q": 800, "reason": "regular", "actor": "maria"}],
    )
    overridden = session.items[0]
    assert overridden["meta"]["price_override"] == {"from": 1000, "to": 800, "reason": "regular", "actor": "maria"}
    assert overridden["line_total_q"] == 800
    assert session.total_q == 1800
    result = commit(session, actor="joao")
    events = OrderEvent.objects.filter(order__ref=result["order_ref"], type="price.overridden")
    assert [(e.actor, e.payload) for e in events] == [
        ("maria", {"line_id": line["line_id"], "sku": line["sku"], "from": 1000, "to": 800, "reason": "regular"})
    ]


def test_i5_override_meta_cannot_be_forged():
    session = create_session_at()
    line_id = session.items[0]["line_id"]
    state = DbState(session)
    for op in (
        {"op": "set_line_meta", "line_id": line_id, "path": "price_override", "value": {"to": 1}},
        {"op": "add_line", "sku": "Z", "qty": 1, "meta": {"price_override": {"to": 1}}},
    ):
        with pytest.raises(ValidationError) as err:
            ModifyService.modify_session(session.session_key, session.channel.code, [op])
        assert err.value.code == "reserved_path"
    state.assert_unchanged()


def test_i5_override_requires_a_reason():
    session = create_session_at()
    line_id = session.items[0]["line_id"]
    state = DbState(session)
    with pytest.raises(ValidationError) as err:
        ModifyService.modify_session(
            session.session_key, session.channel.code, [{"op": "override_price", "line_id": line_id, "unit_price_q": 1}]
        )
    assert err.value.code == "missing_field" and err.value.context["field"] == "reason"
    state.assert_unchanged()


# -- I7 versioned snapshot ---------------------------------------------------------


def test_i7_snapshot_is_versioned_and_complete():
    session = create_session_at(lines=2, data={"customer": {"name": "Ana"}})
    order = Order.objects.get(ref=commit(session)["order_ref"])
    snapshot = order.get_snapshot()
    assert snapshot["_v"] == 1
    for key in ("items", "data", "rev", "channel_code", "pricing_policy", "total_q", "currency"):
        assert key in snapshot
    assert snapshot["total_q"] == order.total_q == 2000
    assert snapshot["data"]["customer"] == {"name": "Ana"}
    assert [i["sku"] for i in snapshot["items"]] == list(order.items.values_list("sku", flat=True))


def test_i7_unknown_snapshot_version_is_refused_on_read():
    order = create_order_at()
    with pytest.raises(OmnimanError) as err:
        Order.objects.filter(pk=order.pk).update(snapshot={"_v": 99})
    assert err.value.code == "immutable"
    # A row written by a future version of the code (raw SQL, a restore…):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Order._meta.db_table} SET snapshot = %s WHERE id = %s", ['{"_v": 99, "items": []}', order.pk]
        )
    stored = Order.objects.get(pk=order.pk)
    with pytest.raises(OmnimanError) as err:
        stored.get_snapshot()
    assert err.value.code == "unsupported_snapshot_version"
    assert err.value.context["version"] == 99


def test_i7_order_rows_are_immutable():
    order = create_order_at(lines=2)
    item = order.items.first()
    event = order.events.first()
    for change in (
        lambda: setattr(order, "total_q", 1) or order.save(),
        lambda: order.delete(),
        lambda: setattr(item, "qty", Decimal("9")) or item.save(),
        lambda: item.delete(),
        lambda: setattr(event, "actor", "someone") or event.save(),
        lambda: event.delete(),
        lambda: OrderItem.objects.filter(order=order).update(unit_price_q=1),
        lambda: OrderEvent.objects.filter(order=order).delete(),
        lambda: Order.objects.filter(pk=order.pk).delete(),
    ):
        with pytest.raises(OmnimanError) as err:
            change()
        assert err.value.code == "immutable"
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.total_q == 2000 and fresh.items.count() == 2


def test_i7_status_moves_only_through_the_service():
    order = create_order_at()
    order.status = "completed"
    with pytest.raises(OmnimanError) as err:
        order.save()
    assert err.value.code == "immutable"
    assert Order.objects.get(pk=order.pk).status == "new"


# -- I8 first transition wins, history in OrderEvent ---------------------------------


def test_i8_expected_status_makes_the_late_bump_stale():
    order = create_order_at("confirmed")
    OrderService.transition(order.ref, "processing", actor="screen-1", expected_status="confirmed")
    with pytest.raises(InvalidTransition) as err:
        OrderService.transition(order.ref, "processing", actor="screen-2", expected_status="confirmed")
    assert err.value.code == "stale_status"
    changes = OrderEvent.objects.filter(order=order, type="status_changed")
    assert [(e.actor, e.payload["from"], e.payload["to"]) for e in changes] == [
        ("test", "new", "confirmed"),
        ("screen-1", "confirmed", "processing"),
    ]


def test_i8_first_timestamp_wins():
    channel = make_channel(
        config={
            "order_flow": {
                "transitions": {"new": ["ready"], "ready": ["processing", "completed"], "processing": ["ready"]},
            }
        }
    )
    order = create_order_at("ready", channel)
    first_ready = order.ready_at
    assert first_ready is not None
    order.transition_status("processing")
    order.transition_status("ready", reason="back to the pass")
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == "ready"
    assert fresh.ready_at == first_ready
    assert list(fresh.events.filter(type="status_changed").values_list("payload__to", flat=True)) == [
        "ready",
        "processing",
        "ready",
    ]


def test_i8_terminal_and_unknown_transitions_are_refused():
    order = create_order_at("completed")
    for status in ("new", "cancelled", "no-such-status"):
        with pytest.raises(InvalidTransition) as err:
            OrderService.transition(order.ref, status)
        assert err.value.code == "invalid_transition"
    assert Order.objects.get(pk=order.pk).status == "completed"
    assert order.is_terminal and order.get_allowed_transitions() == []


# -- I9 / I10 the database can keep the promises -------------------------------------


@override_settings(DEBUG=False, OMNIMAN={"ALLOW_SQLITE_IN_PRODUCTION": False})
def test_i9_sqlite_refused_when_debug_is_off(monkeypatch):
    from django.db import connections

    monkeypatch.setattr(type(connections["default"]), "vendor", "sqlite", raising=False)
    errors = checks.check_database()
    assert [e.id for e in errors] == ["omniman.E001"]
    assert "ALLOW_SQLITE_IN_PRODUCTION" in errors[0].hint
    with pytest.raises(ImproperlyConfigured) as err:
        checks.enforce_startup_checks()
    assert "DATABASE_URL" in str(err.value)


@pytest.mark.parametrize(
    "debug,allowed", [(True, False), (False, True)], ids=["debug", "explicitly-allowed"]
)
def test_i9_sqlite_allowed_in_development_or_when_accepted(monkeypatch, debug, allowed):
    from django.db import connections

    monkeypatch.setattr(type(connections["default"]), "vendor", "sqlite", raising=False)
    with override_settings(DEBUG=debug, OMNIMAN={"ALLOW_SQLITE_IN_PRODUCTION": allowed}):
        assert checks.check_database() == []
        checks.enforce_startup_checks()


@override_settings(DEBUG=False)
def test_i10_database_without_row_locks_fails_fast(monkeypatch):
    from django.db import connections

    connection = connections["default"]
    monkeypatch.setattr(type(connection), "vendor", "exotic", raising=False)
    monkeypatch.setattr(type(connection.features), "has_select_for_update_skip_locked", False, raising=False)
    monkeypatch.setattr(type(connection.features), "supports_json_field", False, raising=False)
    errors = checks.check_database()
    assert [e.id for e in errors] == ["omniman.E002"]
    assert "SKIP LOCKED" in errors[0].msg and "JSON" in errors[0].msg
    with pytest.raises(ImproperlyConfigured) as err:
        checks.enforce_startup_checks()
    assert "PostgreSQL" in str(err.value)


@pytest.mark.postgres
@override_settings(DEBUG=False)
def test_i10_postgresql_passes_the_startup_check():
    assert checks.check_database() == []


# -- I11 rev +1 per modification -------------------------------------------------------


def test_i11_each_modification_adds_one_to_rev():
    session = SessionService.open_session(make_channel().code)
    assert session.rev == 0
    for expected in (1, 2, 3):
        session = ModifyService.modify_session(
            session.session_key,
            session.channel.code,
            [{"op": "add_line", "sku": f"S{expected}", "qty": 1}, {"op": "set_data", "path": "n", "value": expected}],
        )
        assert session.rev == expected
        assert Session.objects.get(pk=session.pk).rev == expected


def test_i11_stale_rev_applies_nothing():
    session = create_session_at(rev=3)
    state = DbState(session)
    with pytest.raises(SessionError) as err:
        ModifyService.modify_session(
            session.session_key, session.channel.code, [{"op": "add_line", "sku": "X", "qty": 1}], expected_rev=2
        )
    assert err.value.code == "stale_rev"
    assert err.value.context["current_rev"] == 3
    state.assert_unchanged()


def test_i11_open_with_items_is_one_modification():
    channel = make_channel()
    session = SessionService.open_session(channel.code, items=[{"sku": "A", "qty": 1}, {"sku": "B", "qty": "2.5", "unit_price_q": 200}])
    assert session.rev == 1
    assert [i["qty"] for i in session.items] == [Decimal("1"), Decimal("2.5")]
    assert session.total_q == 500


# -- I12 a modification clears checks and issues -----------------------------------------


def test_i12_modification_clears_checks_and_issues():
    channel = make_channel(config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(channel)
    issue = {"code": "low", "message": "Low stock", "severity": "warning", "actions": []}
    assert SessionWriteService.write_check(
        session.session_key, channel.code, check_code="stock", expected_rev=session.rev, result={"ok": True}, issues=[issue]
    )
    stored = Session.objects.get(pk=session.pk)
    assert stored.data["checks"]["stock"]["rev"] == session.rev
    assert len(stored.data["issues"]) == 1
    after = ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_data", "path": "x", "value": 1}])
    assert after.data["checks"] == {} and after.data["issues"] == []
    check_directives = Directive.objects.filter(topic="check.stock").order_by("id")
    assert [d.payload["rev"] for d in check_directives] == [1, 2]
    assert check_directives.last().payload == {
        "session_key": session.session_key,
        "channel_code": channel.code,
        "rev": 2,
        "check_code": "stock",
    }
    assert check_directives.last().dedupe_key == f"{session.session_key}:stock:2"


def test_i12_check_directive_topic_comes_from_the_channel():
    channel = make_channel(
        config={"required_checks_on_commit": ["stock"], "checks": {"stock": {"directive_topic": "stock.hold"}}}
    )
    create_session_at(channel)
    assert list(Directive.objects.values_list("topic", flat=True)) == ["stock.hold"]


# -- I13 stale-safe check write -------------------------------------------------------------


def test_i13_check_for_an_old_rev_writes_nothing():
    channel = make_channel(config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(channel, rev=2)
    state = DbState(session)
    written = SessionWriteService.write_check(
        session.session_key, channel.code, check_code="stock", expected_rev=1, result={"held": True}
    )
    assert written is False
    state.assert_unchanged()


def test_i13_check_write_never_changes_rev_and_replaces_its_own_issues():
    channel = make_channel()
    session = create_session_at(channel)
    rev = session.rev
    warn = {"code": "w", "message": "w", "severity": "warning"}
    SessionWriteService.write_check(session.session_key, channel.code, check_code="a", expected_rev=rev, result={}, issues=[warn])
    SessionWriteService.write_check(session.session_key, channel.code, check_code="b", expected_rev=rev, result={}, issues=[warn])
    SessionWriteService.write_check(
        session.session_key, channel.code, check_code="a", expected_rev=rev, result={}, issues=[{**warn, "code": "w2"}]
    )
    stored = Session.objects.get(pk=session.pk)
    assert stored.rev == rev
    assert sorted((i["source"], i["code"]) for i in stored.data["issues"]) == [("a", "w2"), ("b", "w")]


# -- I14 only required checks must be fresh ---------------------------------------------------


def _check(session, code, rev=None, **result):
    return SessionWriteService.write_check(
        session.session_key,
        session.channel.code,
        check_code=code,
        expected_rev=session.rev if rev is None else rev,
        result=result,
    )


def test_i14_required_check_must_exist_and_be_fresh():
    channel = make_channel(config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(channel)
    with pytest.raises(CommitError) as err:
        commit(session)
    assert err.value.code == "missing_check"
    _check(session, "stock")
    # A check written at this rev, then the session moves on: the check is stale.
    session.refresh_from_db()
    data = session.data
    data["checks"]["stock"]["rev"] = session.rev - 1
    Session.objects.filter(pk=session.pk).update(data=data)
    with pytest.raises(CommitError) as err:
        commit(session)
    assert err.value.code == "stale_check"
    assert Order.objects.count() == 0


def test_i14_optional_checks_do_not_block_commit():
    channel = make_channel(config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(channel)
    _check(session, "stock")
    # An optional "fraud" check from an older rev is ignored.
    session.refresh_from_db()
    data = session.data
    data["checks"]["fraud"] = {"rev": 0, "status": "ok", "result": {}, "checked_at": timezone.now().isoformat()}
    Session.objects.filter(pk=session.pk).update(data=data)
    assert commit(session)["idempotent"] is False


def test_i14_expired_hold_is_refused():
    channel = make_channel(config={"required_checks_on_commit": ["stock"]})
    session = create_session_at(channel)
    _check(session, "stock", expires_at=(timezone.now() - timedelta(seconds=1)).isoformat())
    with pytest.raises(CommitError) as err:
        commit(session)
    assert err.value.code == "hold_expired"
    _check(session, "stock", expires_at=(timezone.now() + timedelta(minutes=5)).isoformat())
    assert commit(session)["idempotent"] is False


def test_i14_blocking_issues_block_and_warnings_do_not():
    channel = make_channel()
    session = create_session_at(channel)
    blocking = {"code": "out", "message": "Out of stock", "severity": "blocking", "actions": []}
    SessionWriteService.write_check(
        session.session_key, channel.code, check_code="stock", expected_rev=session.rev, result={}, issues=[blocking]
    )
    with pytest.raises(CommitError) as err:
        commit(session)
    assert err.value.code == "blocking_issues"
    assert [i["code"] for i in err.value.context["issues"]] == ["out"]
    SessionWriteService.write_check(
        session.session_key,
        channel.code,
        check_code="stock",
        expected_rev=session.rev,
        result={},
        issues=[{**blocking, "severity": "warning"}],
    )
    assert commit(session)["idempotent"] is False


class FeeModifier:
    """Adds a service-fee line of its own to external sessions: allowed, nothing is repriced."""

    code = "service-fee"
    order = 90

    def apply(self, *, channel, session, ctx):
        if not any(line["sku"] == "FEE" for line in session.lines):
            session.lines.append(
                {"line_id": "L-fee", "sku": "FEE", "name": "Service fee", "qty": "1", "unit_price_q": 200, "line_total_q": 0, "meta": {}}
            )


def test_i4_modifier_may_add_its_own_line_to_an_external_session():
    registry.register_modifier(FeeModifier())
    channel = make_channel(pricing_policy="external")
    session = SessionService.open_session(channel.code, items=[{"sku": "A", "qty": 1, "unit_price_q": 1250}])
    assert [(i["sku"], i["unit_price_q"]) for i in session.items] == [("A", 1250), ("FEE", 200)]
    assert session.total_q == 1450


def test_i8_status_timestamps_cannot_be_bulk_rewritten():
    order = create_order_at("confirmed")
    with pytest.raises(OmnimanError) as err:
        Order.objects.filter(pk=order.pk).update(confirmed_at=timezone.now() + timedelta(days=1))
    assert err.value.code == "immutable"
    assert Order.objects.get(pk=order.pk).confirmed_at == order.confirmed_at


def test_i8_reentering_a_status_enqueues_its_on_enter_topics_again():
    channel = make_channel(
        config={
            "order_flow": {
                "transitions": {"new": ["ready"], "ready": ["processing"], "processing": ["ready"]},
                "on_enter": {"ready": ["kitchen.print"]},
            }
        }
    )
    order = create_order_at("ready", channel)
    order.transition_status("processing")
    order.transition_status("ready")
    assert Directive.objects.filter(topic="kitchen.print").count() == 2


# -- I6 directives at least once, handlers idempotent -------------------------------------


class FlakyIdempotentNote:
    """Writes a note on the order at most once (looks for its evidence first); fails its first run."""

    topic = "test.flaky-note"
    runs = 0

    def handle(self, *, message, ctx):
        type(self).runs += 1
        order = Order.objects.get(ref=message.payload["order_ref"])
        if not order.events.filter(type="note", payload__directive=message.pk).exists():
            order.emit_event("note", actor=ctx["actor"], payload={"directive": message.pk, "text": "thanks!"})
        if ctx["attempt"] == 1:
            raise TimeoutError("the provider timed out after the note was written")


@pytest.mark.django_db(transaction=True)
def test_i6_directive_runs_again_after_a_failure_and_the_effect_exists_once():
    from omniman import engine

    FlakyIdempotentNote.runs = 0
    registry.register_directive_handler(FlakyIdempotentNote())
    order = create_order_at()
    directive = Directive.objects.enqueue("test.flaky-note", {"order_ref": order.ref})
    assert engine.process().outcomes == [(directive.pk, "retried")]
    Directive.objects.filter(pk=directive.pk).update(available_at=timezone.now())
    assert engine.process().outcomes == [(directive.pk, "done")]
    # Run it once more by hand, as a duplicate delivery would: still one note.
    Directive.objects.filter(pk=directive.pk).update(status="queued", available_at=timezone.now())
    assert engine.process().outcomes == [(directive.pk, "done")]
    assert FlakyIdempotentNote.runs == 3
    assert order.events.filter(type="note").count() == 1
