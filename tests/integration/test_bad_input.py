"""Every malformed op gets its exact code and leaves the database untouched."""

from __future__ import annotations

import pytest

from omniman.exceptions import CommitError, IssueResolveError, OmnimanError, SessionError, ValidationError
from omniman.models import IdempotencyKey
from omniman.services import (
    CommitService,
    ModifyService,
    OrderService,
    ResolveService,
    SessionService,
    SessionWriteService,
)
from tests.factories import DbState, commit, create_order_at, create_session_at, make_channel

pytestmark = pytest.mark.django_db

L0, L1 = "<line0>", "<line1>"

CASES = [
    # (id, ops, error class, code, context subset)
    ("ops-not-a-list", {"op": "add_line"}, ValidationError, "missing_field", {"field": "ops"}),
    ("ops-empty", [], ValidationError, "missing_field", {"field": "ops"}),
    ("op-not-an-object", ["add_line"], ValidationError, "unsupported_op", {"op_index": 0}),
    ("op-without-name", [{"sku": "A"}], ValidationError, "missing_field", {"field": "op"}),
    ("unknown-op", [{"op": "explode"}], ValidationError, "unsupported_op", {"op": "explode"}),
    ("add-no-sku", [{"op": "add_line", "qty": 1}], ValidationError, "missing_field", {"field": "sku"}),
    ("add-blank-sku", [{"op": "add_line", "sku": "  ", "qty": 1}], ValidationError, "missing_field", {"field": "sku"}),
    ("add-sku-not-text", [{"op": "add_line", "sku": 12, "qty": 1}], ValidationError, "invalid_field", {"field": "sku"}),
    ("add-sku-too-long", [{"op": "add_line", "sku": "X" * 65, "qty": 1}], ValidationError, "invalid_field", {"field": "sku"}),
    ("add-no-qty", [{"op": "add_line", "sku": "A"}], ValidationError, "missing_field", {"field": "qty"}),
    ("add-zero-qty", [{"op": "add_line", "sku": "A", "qty": 0}], ValidationError, "invalid_qty", {}),
    ("add-negative-qty", [{"op": "add_line", "sku": "A", "qty": "-1"}], ValidationError, "invalid_qty", {}),
    ("add-4-decimals", [{"op": "add_line", "sku": "A", "qty": "1.2345"}], ValidationError, "invalid_qty", {}),
    ("add-qty-text", [{"op": "add_line", "sku": "A", "qty": "two"}], ValidationError, "invalid_qty", {}),
    ("add-qty-nan", [{"op": "add_line", "sku": "A", "qty": "NaN"}], ValidationError, "invalid_qty", {}),
    ("add-qty-inf", [{"op": "add_line", "sku": "A", "qty": float("inf")}], ValidationError, "invalid_qty", {}),
    ("add-qty-bool", [{"op": "add_line", "sku": "A", "qty": True}], ValidationError, "invalid_qty", {}),
    ("add-qty-huge", [{"op": "add_line", "sku": "A", "qty": 10**9}], ValidationError, "invalid_qty", {}),
    ("add-negative-price", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": -5}], ValidationError, "invalid_price", {}),
    ("add-float-price", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 9.99}], ValidationError, "invalid_price", {}),
    ("add-text-price", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": "cheap"}], ValidationError, "invalid_price", {}),
    ("add-bool-price", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": False}], ValidationError, "invalid_price", {}),
    ("add-huge-price", [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 10**15}], ValidationError, "invalid_price", {}),
    ("add-meta-not-object", [{"op": "add_line", "sku": "A", "qty": 1, "meta": "x"}], ValidationError, "invalid_field", {"field": "meta"}),
    ("add-name-not-text", [{"op": "add_line", "sku": "A", "qty": 1, "name": ["x"]}], ValidationError, "invalid_field", {"field": "name"}),
    ("remove-unknown", [{"op": "remove_line", "line_id": "nope"}], ValidationError, "unknown_line_id", {"line_id": "nope"}),
    ("remove-no-id", [{"op": "remove_line"}], ValidationError, "missing_field", {"field": "line_id"}),
    ("set-qty-unknown", [{"op": "set_qty", "line_id": "nope", "qty": 1}], ValidationError, "unknown_line_id", {}),
    ("set-qty-zero", [{"op": "set_qty", "line_id": L0, "qty": 0}], ValidationError, "invalid_qty", {}),
    ("set-qty-missing", [{"op": "set_qty", "line_id": L0}], ValidationError, "missing_field", {"field": "qty"}),
    ("replace-unknown", [{"op": "replace_sku", "line_id": "nope", "sku": "B"}], ValidationError, "unknown_line_id", {}),
    ("replace-no-sku", [{"op": "replace_sku", "line_id": L0}], ValidationError, "missing_field", {"field": "sku"}),
    ("replace-bad-price", [{"op": "replace_sku", "line_id": L0, "sku": "B", "unit_price_q": -1}], ValidationError, "invalid_price", {}),
    ("set-data-checks", [{"op": "set_data", "path": "checks", "value": {}}], ValidationError, "reserved_path", {}),
    ("set-data-issues-nested", [{"op": "set_data", "path": "issues.0", "value": {}}], ValidationError, "reserved_path", {}),
    ("set-data-empty-segment", [{"op": "set_data", "path": "a..b", "value": 1}], ValidationError, "invalid_path", {}),
    ("set-data-bad-chars", [{"op": "set_data", "path": "a b", "value": 1}], ValidationError, "invalid_path", {}),
    ("set-data-path-not-text", [{"op": "set_data", "path": 5, "value": 1}], ValidationError, "invalid_path", {}),
    ("set-data-no-path", [{"op": "set_data", "value": 1}], ValidationError, "missing_field", {"field": "path"}),
    ("set-data-no-value", [{"op": "set_data", "path": "a"}], ValidationError, "missing_field", {"field": "value"}),
    ("set-data-through-scalar", [{"op": "set_data", "path": "scalar.x", "value": 1}], ValidationError, "invalid_path", {}),
    ("set-data-not-json", [{"op": "set_data", "path": "a", "value": {1, 2}}], ValidationError, "invalid_field", {"field": "value"}),
    ("merge-same-line", [{"op": "merge_lines", "from_line_id": L0, "into_line_id": L0}], ValidationError, "invalid_merge", {}),
    ("merge-different-skus", [{"op": "merge_lines", "from_line_id": L0, "into_line_id": L1}], ValidationError, "invalid_merge", {}),
    ("merge-unknown", [{"op": "merge_lines", "from_line_id": "nope", "into_line_id": L0}], ValidationError, "unknown_line_id", {}),
    ("merge-missing", [{"op": "merge_lines", "from_line_id": L0}], ValidationError, "missing_field", {"field": "into_line_id"}),
    ("meta-unknown-line", [{"op": "set_line_meta", "line_id": "nope", "path": "note", "value": "x"}], ValidationError, "unknown_line_id", {}),
    ("meta-bad-path", [{"op": "set_line_meta", "line_id": L0, "path": "", "value": "x"}], ValidationError, "missing_field", {"field": "path"}),
    ("meta-reserved", [{"op": "set_line_meta", "line_id": L0, "path": "price_override.to", "value": 1}], ValidationError, "reserved_path", {}),
    ("override-no-price", [{"op": "override_price", "line_id": L0, "reason": "r"}], ValidationError, "missing_field", {"field": "unit_price_q"}),
    ("override-bad-price", [{"op": "override_price", "line_id": L0, "unit_price_q": "x", "reason": "r"}], ValidationError, "invalid_price", {}),
    ("override-unknown-line", [{"op": "override_price", "line_id": "nope", "unit_price_q": 1, "reason": "r"}], ValidationError, "unknown_line_id", {}),
    # A valid op followed by a bad one: nothing of the batch is applied.
    ("second-op-bad", [{"op": "add_line", "sku": "OK", "qty": 1}, {"op": "set_qty", "line_id": "nope", "qty": 1}], ValidationError, "unknown_line_id", {"op_index": 1}),
]


def _resolve_line_ids(ops, session):
    if not isinstance(ops, list):
        return ops
    ids = {L0: session.items[0]["line_id"], L1: session.items[1]["line_id"]}
    return [{k: ids.get(v, v) if isinstance(v, str) else v for k, v in op.items()} if isinstance(op, dict) else op for op in ops]


@pytest.mark.parametrize("case_id,ops,error,code,context", CASES, ids=[c[0] for c in CASES])
def test_bad_op_gets_its_code_and_writes_nothing(case_id, ops, error, code, context):
    channel = make_channel()
    session = create_session_at(channel, lines=2, data={"scalar": 5})
    state = DbState(session)
    with pytest.raises(error) as err:
        ModifyService.modify_session(session.session_key, channel.code, _resolve_line_ids(ops, session), expected_rev=session.rev)
    assert err.value.code == code
    for key, value in context.items():
        assert err.value.context[key] == value
    state.assert_unchanged()


@pytest.mark.parametrize(
    "address,code",
    [(("SESS-NOPE", "own"), "not_found"), (("<key>", "other"), "not_found"), (("<key>", "nope"), "channel_not_found")],
    ids=["unknown-key", "other-channel", "unknown-channel"],
)
def test_session_is_addressed_by_key_and_channel(address, code):
    own = make_channel("own")
    make_channel("other")
    session = create_session_at(own)
    key, channel_code = address
    key = session.session_key if key == "<key>" else key
    state = DbState(session)
    calls = [
        lambda: ModifyService.modify_session(key, channel_code, [{"op": "set_data", "path": "a", "value": 1}]),
        lambda: SessionService.abandon_session(key, channel_code),
        lambda: SessionWriteService.write_check(key, channel_code, check_code="c", expected_rev=1, result={}),
        lambda: ResolveService.resolve(key, channel_code, issue_id="i", action_id="a"),
        lambda: CommitService.commit(key, channel_code, idempotency_key="k"),
    ]
    for call in calls:
        with pytest.raises(SessionError) as err:
            call()
        assert err.value.code == code
    state.assert_unchanged()
    assert IdempotencyKey.objects.count() == 0


def test_closed_sessions_refuse_changes():
    channel = make_channel()
    committed = create_session_at(channel)
    commit(committed)
    abandoned = create_session_at(channel)
    SessionService.abandon_session(abandoned.session_key, channel.code)
    for session, code in ((committed, "already_committed"), (abandoned, "abandoned")):
        state = DbState(session)
        with pytest.raises(SessionError) as err:
            ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_data", "path": "a", "value": 1}])
        assert err.value.code == code
        with pytest.raises(CommitError) as err:
            commit(session)
        assert err.value.code == code
        state.assert_unchanged()
        assert SessionWriteService.write_check(
            session.session_key, channel.code, check_code="c", expected_rev=session.rev, result={}
        ) is False


def test_empty_session_cannot_commit():
    session = create_session_at(lines=0)
    state = DbState(session)
    with pytest.raises(CommitError) as err:
        commit(session)
    assert err.value.code == "empty_session"
    state.assert_unchanged()


@pytest.mark.parametrize("rev", ["abc", True, None.__class__, [1]], ids=["text", "bool", "type", "list"])
def test_bad_expected_rev_type(rev):
    session = create_session_at()
    state = DbState(session)
    with pytest.raises(ValidationError) as err:
        ModifyService.modify_session(
            session.session_key, session.channel.code, [{"op": "set_data", "path": "a", "value": 1}], expected_rev=rev
        )
    assert err.value.code == "invalid_field"
    with pytest.raises(ValidationError) as err:
        SessionWriteService.write_check(session.session_key, session.channel.code, check_code="c", expected_rev=rev, result={})
    assert err.value.code == "invalid_field"
    state.assert_unchanged()


def test_expected_rev_as_text_is_accepted():
    session = create_session_at()
    after = ModifyService.modify_session(
        session.session_key, session.channel.code, [{"op": "set_data", "path": "a", "value": 1}], expected_rev=str(session.rev)
    )
    assert after.rev == session.rev + 1
    assert SessionWriteService.write_check(
        session.session_key, session.channel.code, check_code="c", expected_rev=str(after.rev), result={}
    )


@pytest.mark.parametrize(
    "kwargs,error,code",
    [
        ({"data": {"checks": {}}}, ValidationError, "reserved_path"),
        ({"data": "x"}, ValidationError, "invalid_field"),
        ({"handle_ref": "5"}, ValidationError, "missing_field"),
        ({"items": [{"sku": "A", "qty": 0}]}, ValidationError, "invalid_qty"),
        ({"items": "A"}, ValidationError, "invalid_field"),
        ({"session_key": ""}, ValidationError, "invalid_field"),
    ],
)
def test_open_session_bad_input_creates_nothing(kwargs, error, code):
    channel = make_channel()
    state = DbState()
    with pytest.raises(error) as err:
        SessionService.open_session(channel.code, **kwargs)
    assert err.value.code == code
    state.assert_unchanged()


def test_unknown_or_inactive_channel():
    make_channel("off", is_active=False)
    state = DbState()
    for code in ("off", "missing"):
        with pytest.raises(SessionError) as err:
            SessionService.open_session(code)
        assert err.value.code == "channel_not_found"
    state.assert_unchanged()


def test_bad_issue_in_write_check_writes_nothing():
    session = create_session_at()
    state = DbState(session)
    for issues in ([{"message": "no code"}], [{"code": "x", "severity": "fatal"}], ["x"], [{"code": "x", "actions": [{}]}]):
        with pytest.raises(ValidationError) as err:
            SessionWriteService.write_check(
                session.session_key, session.channel.code, check_code="c", expected_rev=session.rev, result={}, issues=issues
            )
        assert err.value.code == "invalid_issue"
    state.assert_unchanged()


def test_resolve_unknown_issue_or_action():
    session = create_session_at()
    SessionWriteService.write_check(
        session.session_key,
        session.channel.code,
        check_code="stock",
        expected_rev=session.rev,
        result={},
        issues=[{"id": "i1", "code": "out", "actions": [{"id": "remove", "label": "Remove", "ops": []}]}],
    )
    state = DbState(session)
    with pytest.raises(IssueResolveError) as err:
        ResolveService.resolve(session.session_key, session.channel.code, issue_id="nope", action_id="remove")
    assert err.value.code == "issue_not_found"
    with pytest.raises(IssueResolveError) as err:
        ResolveService.resolve(session.session_key, session.channel.code, issue_id="i1", action_id="nope")
    assert err.value.code == "action_not_found"
    state.assert_unchanged()


def test_unknown_order_ref():
    state = DbState()
    with pytest.raises(OmnimanError) as err:
        OrderService.transition("ORD-NOPE", "confirmed")
    assert err.value.code == "not_found"
    state.assert_unchanged()


def test_invalid_transition_writes_nothing():
    order = create_order_at("new")
    state = DbState()
    with pytest.raises(OmnimanError) as err:
        OrderService.transition(order.ref, "delivered")
    assert err.value.code == "invalid_transition"
    assert err.value.context["allowed"] == ["confirmed", "cancelled"]
    state.assert_unchanged()
