"""Commit and the order flow: what an Order is made of and how its status moves."""

from __future__ import annotations

import pytest

from omniman import registry
from omniman.exceptions import CommitError, ValidationError
from omniman.models import Directive, Order, OrderEvent, Session
from omniman.services import OrderService
from omniman.signals import order_created, order_status_changed
from tests.factories import commit, create_order_at, create_session_at, make_channel

pytestmark = pytest.mark.django_db


def test_commit_creates_the_order_items_and_events():
    channel = make_channel("pos", config={"currency": "EUR"})
    session = create_session_at(channel, lines=3, price=450, handle_type="table", handle_ref="7", data={"external_ref": "EXT-1"})
    result = commit(session, "k", actor="ana")
    assert set(result) == {"order_ref", "order_id", "status", "total_q", "items_count", "idempotent"}
    assert result["status"] == "new" and result["total_q"] == 1350 and result["items_count"] == 3
    order = Order.objects.get(pk=result["order_id"])
    assert order.ref == result["order_ref"]
    assert order.ref.startswith("ORD-") and len(order.ref.split("-")) == 3
    assert (order.channel, order.session_key, order.handle_type, order.handle_ref) == (channel, session.session_key, "table", "7")
    assert order.external_ref == "EXT-1" and order.currency == "EUR" and order.total_q == 1350
    assert [(i.sku, i.line_total_q) for i in order.items.all()] == [("SKU-0", 450), ("SKU-1", 450), ("SKU-2", 450)]
    created = order.events.get(type="created")
    assert created.actor == "ana" and created.payload["rev"] == session.rev
    stored = Session.objects.get(pk=session.pk)
    assert stored.state == "committed" and stored.commit_token == "k" and stored.committed_at is not None


def test_commit_enqueues_post_commit_and_on_enter_directives():
    channel = make_channel(
        config={
            "post_commit_directives": ["notification.send", "stock.commit"],
            "order_flow": {
                "auto_transitions": {"on_create": "confirmed"},
                "on_enter": {"new": ["audit.new"], "confirmed": ["kitchen.print"]},
            },
        }
    )
    session = create_session_at(channel)
    result = commit(session)
    ref = result["order_ref"]
    assert result["status"] == "confirmed"
    directives = {d.topic: d.payload for d in Directive.objects.all()}
    assert directives == {
        "notification.send": {"order_ref": ref, "channel_code": channel.code, "session_key": session.session_key},
        "stock.commit": {"order_ref": ref, "channel_code": channel.code, "session_key": session.session_key},
        "audit.new": {"order_ref": ref, "from": None, "to": "new"},
        "kitchen.print": {"order_ref": ref, "from": "new", "to": "confirmed"},
    }
    order = Order.objects.get(ref=ref)
    assert order.confirmed_at is not None
    assert list(order.events.values_list("type", flat=True)) == ["created", "status_changed"]


class RejectBigOrders:
    code = "max-total"
    stage = "commit"

    def validate(self, *, channel, session, ctx):
        if session.total_q > 10_000:
            raise ValidationError("too_big", "Orders above 100.00 need a manager.", {"total_q": session.total_q})


def test_commit_validators_reject_with_validation_failed():
    registry.register_validator(RejectBigOrders())
    session = create_session_at(lines=20, price=1000)
    with pytest.raises(CommitError) as err:
        commit(session)
    assert err.value.code == "validation_failed"
    assert err.value.context["validation"]["code"] == "too_big"
    assert Order.objects.count() == 0
    assert commit(create_session_at(lines=1))["idempotent"] is False


def test_signals_fire_after_the_transaction_commits(django_capture_on_commit_callbacks):
    seen = []

    def on_created(sender, order, **kwargs):
        seen.append(("created", order.ref))

    def on_changed(sender, order, from_status, to_status, **kwargs):
        seen.append((from_status, to_status))

    order_created.connect(on_created)
    order_status_changed.connect(on_changed)
    try:
        channel = make_channel(config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})
        session = create_session_at(channel)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = commit(session)
        assert seen == []  # nothing is announced before the commit
        for callback in callbacks:
            callback()
    finally:
        order_created.disconnect(on_created)
        order_status_changed.disconnect(on_changed)
    assert sorted(seen, key=str) == sorted([("created", result["order_ref"]), ("new", "confirmed")], key=str)


def test_channel_flow_overrides_key_by_key():
    channel = make_channel(
        config={
            "order_flow": {
                "transitions": {"new": ["preparing", "cancelled"], "preparing": ["picked_up"]},
                "terminal_statuses": ["picked_up", "cancelled"],
            }
        }
    )
    flow = channel.order_flow
    assert flow.initial_status == "new"  # not overridden: the default's
    order = create_order_at("preparing", channel)
    assert order.get_allowed_transitions() == ["picked_up"]
    assert order.can_transition_to("picked_up") and not order.can_transition_to("ready")
    order.transition_status("picked_up", actor="courier", expected_status="preparing")
    assert order.status == "picked_up" and order.is_terminal
    # Statuses without a column keep their time in the event trail.
    event = order.events.filter(type="status_changed").last()
    assert event.payload == {"from": "preparing", "to": "picked_up", "reason": ""} and event.actor == "courier"


def test_initial_status_from_channel():
    channel = make_channel(config={"order_flow": {"initial_status": "confirmed"}})
    order = create_order_at("confirmed", channel)
    assert order.events.filter(type="status_changed").count() == 0
    assert OrderService.transition(order.ref, "ready").status == "ready"


def test_on_enter_directive_on_cancel():
    channel = make_channel(config={"order_flow": {"on_enter": {"cancelled": ["stock.release", "payment.refund"]}}})
    order = create_order_at("confirmed", channel)
    OrderService.transition(order.ref, "cancelled", actor="manager", reason="customer left")
    topics = sorted(Directive.objects.values_list("topic", flat=True))
    assert topics == ["payment.refund", "stock.release"]
    assert Directive.objects.get(topic="stock.release").payload == {"order_ref": order.ref, "from": "confirmed", "to": "cancelled"}
    fresh = Order.objects.get(pk=order.pk)
    assert fresh.cancelled_at is not None
    assert OrderEvent.objects.filter(order=order, type="status_changed").last().payload["reason"] == "customer left"


def test_terminology():
    channel = make_channel(config={"terminology": {"session": "Tab", "order": "Pedido", "ready": "Pronto"}})
    assert channel.term("session") == "Tab" and channel.term("ready") == "Pronto"
    assert channel.term("confirmed") == "Confirmed"
    assert channel.term("session", "Basket") == "Tab" and make_channel().term("session", "Basket") == "Basket"


def test_emit_event_and_note():
    from omniman.services import events

    order = create_order_at()
    events.note_added(order, actor="manager", text="VIP table")
    assert order.events.filter(type="note").get().payload == {"text": "VIP table"}


def test_full_default_flow_stamps_each_status():
    order = create_order_at("completed", make_channel(config={"order_flow": {"transitions": {
        "new": ["confirmed"], "confirmed": ["processing"], "processing": ["ready"], "ready": ["dispatched"],
        "dispatched": ["delivered"], "delivered": ["completed"]}}}))
    for status in ("confirmed", "processing", "ready", "dispatched", "delivered", "completed"):
        assert getattr(order, f"{status}_at") is not None, status
    assert order.cancelled_at is None


def test_commit_with_expected_rev_refuses_a_session_that_moved_on():
    from omniman.exceptions import SessionError
    from omniman.models import IdempotencyKey
    from omniman.services import CommitService, ModifyService

    session = create_session_at(lines=1)
    seen = session.rev
    ModifyService.modify_session(session.session_key, session.channel.code, [{"op": "add_line", "sku": "NEW", "qty": 1}])
    with pytest.raises(SessionError) as err:
        CommitService.commit(session.session_key, session.channel.code, idempotency_key="k", expected_rev=seen)
    assert err.value.code == "stale_rev"
    assert Order.objects.count() == 0
    assert IdempotencyKey.objects.get(key="k").status == "failed"
    result = CommitService.commit(session.session_key, session.channel.code, idempotency_key="k", expected_rev=seen + 1)
    assert result["items_count"] == 2


# -- the one order lock and the one auto-transition ------------------------------------


def test_lock_order_finds_by_ref_or_lookup_and_raises_what_the_caller_chose():
    from django.db import transaction

    from omniman.exceptions import OmnimanError, SessionError
    from omniman.services import lock_order

    order = create_order_at("confirmed")
    with transaction.atomic():
        assert lock_order(order.ref).pk == order.pk
        assert lock_order(channel=order.channel, session_key=order.session_key).pk == order.pk
    with pytest.raises(OmnimanError) as caught, transaction.atomic():
        lock_order("ORD-NOPE")
    assert caught.value.code == "not_found" and caught.value.context == {"order_ref": "ORD-NOPE"}
    with pytest.raises(SessionError) as caught, transaction.atomic():
        lock_order(channel=order.channel, session_key="gone", missing=SessionError("not_found", context={"x": 1}))
    assert caught.value.context == {"x": 1}


def test_apply_auto_transition_moves_when_the_flow_allows_and_otherwise_leaves_the_order():
    from django.db import transaction

    from omniman.services import apply_auto_transition, lock_order

    channel = make_channel("autos", config={"order_flow": {"auto_transitions": {"on_stock_commit": "processing"}}})
    order = create_order_at("confirmed", channel)
    with transaction.atomic():
        locked = lock_order(order.ref)
        assert apply_auto_transition(locked, "on_payment_confirm", actor="pay") is None  # no such key configured
        assert apply_auto_transition(locked, "on_stock_commit", actor="stock") is locked
    assert locked.status == "processing"
    event = order.events.filter(type="status_changed").last()
    assert (event.actor, event.payload["reason"]) == ("stock", "auto_transitions.on_stock_commit")
    done = create_order_at("completed", channel)
    with transaction.atomic():
        assert apply_auto_transition(lock_order(done.ref), "on_stock_commit", actor="stock") is None
    done.refresh_from_db()
    assert done.status == "completed"
