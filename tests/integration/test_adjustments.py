"""AdjustmentService, the service charge kept by the kernel, the approval rule, the PIN, and the commit's snapshot."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User

from omniman import approvals
from omniman.exceptions import ApprovalError, SessionError, ValidationError
from omniman.models import Order, OperatorPin, Session
from omniman.services import AdjustmentService, ModifyService
from tests.factories import DbState, commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db

MANAGER = {"manager"}


def cafe(**config):
    return make_channel("cafe", config={"service_charge_percent": 10, **config})


def two_lines(channel):
    """1000 + 2600 = 3600, + 10 % service = 3960 (the demo table's R$ 39.60)."""
    session = create_session_at(channel, lines=0)
    return ModifyService.modify_session(
        session.session_key,
        channel.code,
        [
            {"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1000},
            {"op": "add_line", "sku": "B", "qty": 2, "unit_price_q": 1300},
        ],
    )


def discount(session, **kwargs):
    kwargs.setdefault("reason", "regular")
    kwargs.setdefault("expected_rev", session.rev)
    return AdjustmentService.discount(session.session_key, session.channel.code, **kwargs)


# -- the service charge -----------------------------------------------------------------------


def test_the_service_charge_is_part_of_the_total_and_of_the_order():
    session = two_lines(cafe())
    assert session.total_q == 3960
    totals = session.totals
    assert (totals["items_q"], totals["service_q"], totals["service_percent"], totals["total_q"]) == (3600, 360, "10", 3960)
    result = commit(session)
    order = Order.objects.get(ref=result["order_ref"])
    assert result["total_q"] == order.total_q == order.charged_q == 3960
    snapshot = order.get_snapshot()
    assert snapshot["total_q"] == 3960 and [a["kind"] for a in snapshot["adjustments"]] == ["service_charge"]
    assert "totals" not in snapshot["data"]
    [event] = order.events.filter(type="adjustment.applied")
    assert event.actor == "system"
    assert event.payload["kind"] == "service_charge" and event.payload["amount_q"] == 360
    assert (event.payload["before_q"], event.payload["after_q"]) == (3600, 3960)


def test_the_legacy_pricing_key_still_sets_the_service_charge():
    channel = make_channel("legacy", config={"pricing": {"service_charge_percent": "12.5"}}, pricing_policy="external")
    assert two_lines(channel).total_q == 3600 + 450


def test_the_service_charge_follows_the_channel_and_keeps_its_id():
    channel = cafe()
    session = two_lines(channel)
    [service] = session.adjustments
    session = ModifyService.modify_session(session.session_key, "cafe", [{"op": "set_qty", "line_id": session.lines[0]["line_id"], "qty": 2}])
    assert session.adjustments[0]["id"] == service["id"] and session.total_q == 4600 + 460
    channel.config = {"service_charge_percent": 0}
    channel.save()
    session = ModifyService.modify_session(session.session_key, "cafe", [{"op": "set_data", "path": "x", "value": 1}])
    assert session.adjustments == [] and session.total_q == 4600


def test_a_manager_waives_the_service_charge_and_can_take_the_waiver_back():
    session = two_lines(cafe())
    state = DbState(session)
    with pytest.raises(ApprovalError) as caught:
        discount(session, kind="service_charge", percent="0", roles={"pos"})
    assert caught.value.code == "approval_required"
    state.assert_unchanged()
    waived = discount(session, kind="service_charge", percent="0", reason="regular customer", roles=MANAGER, actor="user:max")
    assert waived.total_q == 3600 and waived.rev == session.rev + 1
    [waiver] = waived.adjustments
    assert (waiver["kind"], waiver["percent"], waiver["auto"], waiver["actor"]) == ("service_charge", "0", False, "user:max")
    back = AdjustmentService.remove(waived.session_key, "cafe", waiver["id"], expected_rev=waived.rev, actor="user:ana")
    assert back.total_q == 3960 and back.adjustments[0]["auto"] is True


def test_the_automatic_service_charge_is_waived_not_removed():
    session = two_lines(cafe())
    state = DbState(session)
    with pytest.raises(ValidationError) as caught:
        AdjustmentService.remove(session.session_key, "cafe", session.adjustments[0]["id"], actor="x")
    assert caught.value.code == "invalid_adjustment"
    state.assert_unchanged()


# -- discounts ---------------------------------------------------------------------------------


def test_a_small_discount_needs_no_manager_and_comes_before_the_service_charge():
    session = two_lines(cafe())
    after = discount(session, percent="10", actor="user:ana", roles={"pos"})
    assert after.rev == session.rev + 1
    totals = after.totals
    assert totals["discount_q"] == 360 and totals["service_q"] == 324 and after.total_q == 3600 - 360 + 324
    added = next(a for a in after.adjustments if a["kind"] == "discount")
    assert (added["actor"], added["reason"], added["approved_by"], added["percent"]) == ("user:ana", "regular", "", "10")
    assert len(added["id"]) == 12


def test_a_line_discount_by_amount():
    session = two_lines(cafe())
    line_b = session.lines[1]["line_id"]
    after = discount(session, line_id=line_b, amount_q=200, roles={"pos"})  # 200 of 2600: 7.69 %
    assert after.totals["discount_q"] == 200 and after.total_q == 3400 + 340


def test_over_the_threshold_a_manager_must_approve_and_nothing_changes_until_then():
    session = two_lines(cafe())
    state = DbState(session)
    with pytest.raises(ApprovalError) as caught:
        discount(session, percent="15", roles={"pos"})
    assert caught.value.code == "approval_required"
    assert caught.value.context == {"threshold": "10", "percent": "15.00"}
    state.assert_unchanged()
    # A manager approving on the cashier's screen:
    after = discount(session, percent="15", roles={"pos"}, actor="user:ana", approved_by="max", approver_roles=MANAGER)
    added = next(a for a in after.adjustments if a["kind"] == "discount")
    assert added["approved_by"] == "max" and added["actor"] == "user:ana"
    # A manager asking: no approver needed.
    again = discount(after, amount_q=100, roles=MANAGER, actor="user:max")
    assert next(a for a in again.adjustments if a["amount_q"] == -100)["approved_by"] == ""


def test_an_approver_who_is_not_a_manager_does_not_count():
    session = two_lines(cafe())
    state = DbState(session)
    with pytest.raises(ApprovalError):
        discount(session, percent="50", roles={"pos"}, approved_by="bob", approver_roles={"pos"})
    state.assert_unchanged()


def test_small_discounts_add_up_for_the_threshold():
    session = two_lines(cafe())
    after = discount(session, percent="6", roles={"pos"})
    state = DbState(after)
    with pytest.raises(ApprovalError) as caught:
        discount(after, percent="6", roles={"pos"})
    assert caught.value.context["percent"] == "12.00"  # each whole discount is a percent of the items: 6 + 6
    state.assert_unchanged()


def test_the_channel_sets_the_threshold():
    session = two_lines(cafe(discounts={"approval_over_percent": 50}))
    assert discount(session, percent="50", roles={"pos"}).total_q == 1800 + 180


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"percent": "101"}, "invalid_discount"),
        ({"percent": "0"}, "invalid_discount"),
        ({"amount_q": -5}, "invalid_discount"),
        ({"amount_q": 3601}, "invalid_discount"),
        ({"percent": "10", "amount_q": 10}, "invalid_discount"),
        ({}, "invalid_discount"),
        ({"percent": "5", "reason": ""}, "reason_required"),
        ({"percent": "5", "reason": "x" * 201}, "invalid_field"),
        ({"percent": "5", "line_id": "nope"}, "line_not_found"),
        ({"percent": "5", "kind": "void"}, "invalid_adjustment"),
        ({"kind": "service_charge", "percent": "abc"}, "invalid_adjustment"),
    ],
)
def test_refused_discounts_change_nothing(kwargs, code):
    session = two_lines(cafe())
    state = DbState(session)
    with pytest.raises(ValidationError) as caught:
        discount(session, roles=MANAGER, **kwargs)
    assert caught.value.code == code
    state.assert_unchanged()


def test_a_stale_or_closed_session_refuses_a_discount():
    session = two_lines(cafe())
    state = DbState(session)
    with pytest.raises(SessionError) as caught:
        discount(session, percent="5", expected_rev=session.rev - 1)
    assert caught.value.code == "stale_rev"
    with pytest.raises(SessionError) as caught:
        AdjustmentService.discount("SESS-NOPE", "cafe", percent="5", reason="r")
    assert caught.value.code == "not_found"
    with pytest.raises(SessionError) as caught:
        AdjustmentService.remove(session.session_key, "cafe", "0123456789ab", actor="x")
    assert caught.value.code == "adjustment_not_found"
    state.assert_unchanged()
    commit(session)
    with pytest.raises(SessionError) as caught:
        discount(Session.objects.get(pk=session.pk), percent="5")
    assert caught.value.code == "already_committed"


def test_a_discount_on_a_line_goes_with_the_line():
    session = two_lines(cafe())
    line_a = session.lines[0]["line_id"]
    after = discount(session, line_id=line_a, percent="10")
    assert any(a["line_id"] == line_a for a in after.adjustments)
    after = ModifyService.modify_session(after.session_key, "cafe", [{"op": "remove_line", "line_id": line_a}])
    assert [a["kind"] for a in after.adjustments] == ["service_charge"] and after.total_q == 2600 + 260


def test_a_discount_resets_the_checks_like_any_change():
    channel = cafe(required_checks_on_commit=["stock"])
    session = two_lines(channel)
    after = discount(session, percent="5")
    assert after.data["checks"] == {} and after.rev == session.rev + 1


def test_the_commit_snapshots_the_discounts_with_who_and_why():
    session = two_lines(cafe())
    session = discount(session, percent="20", reason="birthday", actor="user:ana", approved_by="max", approver_roles=MANAGER)
    order = Order.objects.get(ref=commit(session)["order_ref"])
    assert order.total_q == 2880 + 288 == order.charged_q
    totals = order.totals
    assert (totals["items_q"], totals["discount_q"], totals["service_q"]) == (3600, 720, 288)
    events = {e.payload["kind"]: e for e in order.events.filter(type="adjustment.applied")}
    assert events["discount"].actor == "user:ana"
    assert events["discount"].payload["reason"] == "birthday" and events["discount"].payload["approved_by"] == "max"
    assert events["discount"].payload["amount_q"] == -720


def test_an_old_order_without_adjustments_shows_as_before():
    channel = cafe()
    order = Order.objects.get(ref=commit(two_lines(channel))["order_ref"])
    old_snapshot = {k: v for k, v in order.snapshot.items() if k != "adjustments"}
    old_snapshot["data"] = {"totals": {"items_q": 3600, "discount_q": 0, "service_percent": "10", "service_q": 360, "total_q": 3960, "currency": "BRL"}}
    old_snapshot["total_q"] = 3600
    old = Order(ref="ORD-OLD", channel=channel, total_q=3600, currency="BRL", snapshot=old_snapshot)
    assert old.charged_q == 3960 and old.totals["service_q"] == 360 and old.adjustments == []
    assert old.get_snapshot()["_v"] == 1


# -- the PIN -------------------------------------------------------------------------------------


def manager_user(name="max"):
    user = User.objects.create_user(name, password="x")
    user.groups.add(Group.objects.get_or_create(name="manager")[0])
    return user


def test_a_pin_is_hashed_and_verifies_to_the_manager():
    user = manager_user()
    approvals.set_pin(user, "4321")
    row = OperatorPin.objects.get(user=user)
    assert "4321" not in row.pin_hash
    approver = approvals.verify_pin("max", "4321")
    assert approver.username == "max" and "manager" in approver.roles


@pytest.mark.parametrize("pin", ["123", "123456789", "12a4", "", "١٢٣٤", None])
def test_a_pin_is_4_to_8_digits(pin):
    user = manager_user()
    with pytest.raises(ValidationError) as caught:
        approvals.set_pin(user, pin)
    assert caught.value.code == "invalid_pin"
    assert not OperatorPin.objects.exists()


def test_a_wrong_pin_an_unknown_user_or_a_non_manager_are_one_refusal():
    approvals.set_pin(manager_user(), "4321")
    cashier = User.objects.create_user("ana", password="x")
    approvals.set_pin(cashier, "1111")
    for username, pin in [("max", "0000"), ("nobody", "4321"), ("ana", "1111"), ("max", "")]:
        with pytest.raises(ApprovalError) as caught:
            approvals.verify_pin(username, pin)
        assert caught.value.code == "approval_failed"


def test_too_many_wrong_pins_lock_the_pin():
    approvals.set_pin(manager_user(), "4321")
    for _ in range(approvals.MAX_FAILURES):
        with pytest.raises(ApprovalError):
            approvals.verify_pin("max", "9999")
    with pytest.raises(ApprovalError) as caught:
        approvals.verify_pin("max", "4321")  # right, but locked
    assert "locked_until" in caught.value.context
    OperatorPin.objects.update(locked_until=None)
    assert approvals.verify_pin("max", "4321").username == "max"


def test_check_approval_rule():
    assert approvals.check_approval(Decimal("10"), Decimal("10")) == ""
    assert approvals.check_approval(Decimal("11"), Decimal("10"), roles={"manager"}) == ""
    assert approvals.check_approval(Decimal("11"), Decimal("10"), approved_by="max", approver_roles={"manager"}) == "max"
    with pytest.raises(ApprovalError):
        approvals.check_approval(Decimal("0"), None, roles={"pos"})


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_discounts_from_one_screen_apply_once():
    from tests.threads import run_together

    session = two_lines(cafe())
    results = run_together(lambda i: discount(session, percent="5", reason=f"screen {i}").rev, count=8)
    assert sorted(code for kind, code in results if kind == "error") == ["stale_rev"] * 7
    fresh = Session.objects.get(pk=session.pk)
    assert [a["kind"] for a in fresh.adjustments].count("discount") == 1 and fresh.rev == session.rev + 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_discounts_without_a_rev_all_apply_and_stay_capped():
    from tests.threads import run_together

    session = two_lines(cafe(discounts={"approval_over_percent": 100}))
    results = run_together(lambda i: discount(session, amount_q=1000, expected_rev=None).rev, count=8)
    errors = sorted(code for kind, code in results if kind == "error")
    assert errors == ["invalid_discount"] * 5  # 3 × 1000 fit in 3600; then what is left (600) is less than 1000
    fresh = Session.objects.get(pk=session.pk)
    assert fresh.totals["discount_q"] == 3000 and fresh.total_q == 600 + 60
