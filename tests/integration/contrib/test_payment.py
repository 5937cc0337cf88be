"""Payment: the mock gateway, payment.capture / payment.refund, each idempotent by order event."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from omniman import engine, registry
from omniman.contrib.payment import get_backend
from omniman.contrib.payment.backends import MockGateway
from omniman.contrib.payment.exceptions import PaymentError
from omniman.contrib.payment.models import MockTransaction
from omniman.contrib.payment.protocols import PaymentBackend, PaymentResult
from omniman.contrib.payment.services import PaymentService
from omniman.models import Directive, Order, OrderEvent
from omniman.services import OrderService
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db(transaction=True)

TOPICS = ["payment.capture", "payment.refund"]


@contextmanager
def omniman_settings(**overrides):
    with override_settings(OMNIMAN={**settings.OMNIMAN, **overrides}):
        yield


def payment_channel(**flow) -> object:
    order_flow = {"on_enter": {"cancelled": ["payment.refund"]}, **flow}
    return make_channel(config={"post_commit_directives": ["payment.capture"], "order_flow": order_flow})


def order_for(channel, *, price: int = 1000, lines: int = 2) -> Order:
    result = commit(create_session_at(channel, lines=lines, price=price))
    return Order.objects.get(ref=result["order_ref"])


def run(topic: str, directive: Directive, times: int = 1) -> None:
    handler = registry.get_directive_handler(topic)
    for attempt in range(1, times + 1):
        handler.handle(message=directive, ctx={"attempt": attempt, "actor": f"directive:{topic}"})


def events_of(order: Order, prefix: str = "payment.") -> list[str]:
    return list(OrderEvent.objects.filter(order=order, type__startswith=prefix).values_list("type", flat=True))


def gateway_rows(order: Order) -> list[tuple[str, str]]:
    return list(MockTransaction.objects.filter(reference=order.ref).order_by("id").values_list("kind", "status"))


def make_due(directive: Directive) -> None:
    Directive.objects.filter(pk=directive.pk).update(available_at=timezone.now())


# -- capture ------------------------------------------------------------------------------


def test_capture_through_the_engine_charges_once_and_records_the_event():
    order = order_for(payment_channel())
    directive = Directive.objects.get(topic="payment.capture")
    assert directive.payload == {"order_ref": order.ref, "channel_code": order.channel.code, "session_key": order.session_key}

    result = engine.process(topics=TOPICS)

    assert result.outcomes == [(directive.pk, "done")]
    assert gateway_rows(order) == [("authorize", "authorized"), ("capture", "captured")]
    event = OrderEvent.objects.get(order=order, type="payment.captured")
    capture = MockTransaction.objects.get(kind="capture")
    assert event.payload == {"amount_q": 2000, "currency": order.currency, "transaction_id": capture.transaction_id}
    assert event.actor == "directive:payment.capture"
    assert capture.idempotency_key == f"capture:{order.ref}" and capture.amount_q == 2000


def test_capture_twice_charges_once():
    order = order_for(payment_channel())
    directive = Directive.objects.get(topic="payment.capture")
    run("payment.capture", directive, times=2)
    assert gateway_rows(order) == [("authorize", "authorized"), ("capture", "captured")]
    assert events_of(order) == ["payment.captured"]

    # A duplicate delivery (another row, same order) and a re-run of the done row: still one charge.
    Directive.objects.enqueue("payment.capture", directive.payload)
    Directive.objects.filter(pk=directive.pk).update(status="queued", available_at=timezone.now())
    assert [outcome for _, outcome in engine.process(topics=TOPICS).outcomes] == ["done", "done"]
    assert gateway_rows(order) == [("authorize", "authorized"), ("capture", "captured")]
    assert events_of(order) == ["payment.captured"]


def test_capture_applies_on_payment_confirm():
    order = order_for(payment_channel(auto_transitions={"on_payment_confirm": "confirmed"}))
    engine.process(topics=TOPICS)
    order.refresh_from_db()
    assert order.status == "confirmed"
    changed = OrderEvent.objects.get(order=order, type="status_changed")
    assert changed.payload == {"from": "new", "to": "confirmed", "reason": "auto_transitions.on_payment_confirm"}
    assert changed.actor == "directive:payment.capture"


def test_on_payment_confirm_is_skipped_when_the_order_cannot_move_there():
    order = order_for(payment_channel(auto_transitions={"on_payment_confirm": "confirmed"}))
    OrderService.transition(order.ref, "confirmed", actor="ana")
    OrderService.transition(order.ref, "processing", actor="ana")
    assert engine.process(topics=TOPICS).done == 1
    order.refresh_from_db()
    assert order.status == "processing"
    assert events_of(order) == ["payment.captured"]
    assert OrderEvent.objects.filter(order=order, type="status_changed").count() == 2


def test_a_decline_is_recorded_once_and_not_retried():
    order = order_for(payment_channel(), price=1013, lines=1)  # 10,13: the mock's decline amount
    directive = Directive.objects.get(topic="payment.capture")
    assert engine.process(topics=TOPICS).outcomes == [(directive.pk, "done")]
    assert gateway_rows(order) == [("authorize", "declined")]
    event = OrderEvent.objects.get(order=order, type="payment.declined")
    assert event.payload["error_code"] == "card_declined" and event.payload["stage"] == "authorize"

    run("payment.capture", directive, times=2)
    assert gateway_rows(order) == [("authorize", "declined")]
    assert events_of(order) == ["payment.declined"]


def test_decline_mode_declines_every_authorization():
    order = order_for(payment_channel())
    with omniman_settings(PAYMENT_MOCK={"mode": "decline"}):
        engine.process(topics=TOPICS)
    assert events_of(order) == ["payment.declined"]
    assert gateway_rows(order) == [("authorize", "declined")]


def test_a_gateway_failure_is_retried_with_backoff_then_succeeds():
    order = order_for(payment_channel(auto_transitions={"on_payment_confirm": "confirmed"}))
    directive = Directive.objects.get(topic="payment.capture")
    before = timezone.now()
    with omniman_settings(PAYMENT_MOCK={"mode": "fail"}):
        assert engine.process(topics=TOPICS).outcomes == [(directive.pk, "retried")]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("queued", 1)
    assert "gateway_unavailable" in directive.last_error
    assert directive.available_at > before
    assert gateway_rows(order) == [] and events_of(order) == []
    order.refresh_from_db()
    assert order.status == "new"

    make_due(directive)
    assert engine.process(topics=TOPICS).outcomes == [(directive.pk, "done")]
    order.refresh_from_db()
    assert order.status == "confirmed"
    assert events_of(order) == ["payment.captured"]
    assert gateway_rows(order) == [("authorize", "authorized"), ("capture", "captured")]


def test_the_fail_amount_keeps_failing_until_the_attempts_run_out():
    order_for(payment_channel(), price=1066, lines=1)  # 10,66: the mock's unreachable amount
    directive = Directive.objects.get(topic="payment.capture")
    with omniman_settings(DIRECTIVE_MAX_ATTEMPTS=2):
        assert engine.process(topics=TOPICS).retried == 1
        make_due(directive)
        assert engine.process(topics=TOPICS).failed == 1
    directive.refresh_from_db()
    assert directive.status == "failed" and "gateway_unavailable" in directive.last_error
    assert MockTransaction.objects.count() == 0


def test_a_cancelled_order_is_never_charged():
    order = order_for(payment_channel())
    OrderService.transition(order.ref, "cancelled", actor="ana")
    assert engine.process(topics=TOPICS).done == 2  # the capture and the refund both find nothing to do
    assert gateway_rows(order) == [] and events_of(order) == []


def test_a_free_order_is_captured_without_the_gateway():
    order = order_for(payment_channel(auto_transitions={"on_payment_confirm": "confirmed"}), price=0, lines=1)
    engine.process(topics=TOPICS)
    assert MockTransaction.objects.count() == 0
    assert OrderEvent.objects.get(order=order, type="payment.captured").payload["amount_q"] == 0
    order.refresh_from_db()
    assert order.status == "confirmed"


def test_an_unknown_order_is_an_error_and_writes_nothing():
    with pytest.raises(PaymentError) as caught:
        PaymentService.capture("ORD-NOPE")
    assert caught.value.code == "order_not_found"
    with pytest.raises(PaymentError) as caught:
        PaymentService.refund("ORD-NOPE")
    assert caught.value.code == "order_not_found"
    directive = Directive.objects.enqueue("payment.capture", {"order_ref": "ORD-NOPE"})
    assert engine.process(topics=TOPICS).outcomes == [(directive.pk, "retried")]
    assert "order_not_found" in Directive.objects.get(pk=directive.pk).last_error
    assert MockTransaction.objects.count() == 0 and OrderEvent.objects.filter(type__startswith="payment.").count() == 0


# -- refund on cancel ----------------------------------------------------------------------


def test_cancelling_enqueues_the_refund_and_it_refunds_once():
    order = order_for(payment_channel())
    engine.process(topics=TOPICS)
    OrderService.transition(order.ref, "cancelled", actor="ana", reason="customer left")

    refund = Directive.objects.get(topic="payment.refund")
    assert refund.payload == {"order_ref": order.ref, "from": "new", "to": "cancelled"}
    assert engine.process(topics=TOPICS).outcomes == [(refund.pk, "done")]
    capture = MockTransaction.objects.get(kind="capture")
    refund_row = MockTransaction.objects.get(kind="refund")
    assert (refund_row.status, refund_row.amount_q, refund_row.payment_id) == ("refunded", 2000, capture.transaction_id)
    assert refund_row.idempotency_key == f"refund:{order.ref}"
    event = OrderEvent.objects.get(order=order, type="payment.refunded")
    assert event.payload == {
        "amount_q": 2000,
        "currency": order.currency,
        "transaction_id": capture.transaction_id,
        "refund_id": refund_row.transaction_id,
    }

    run("payment.refund", refund, times=2)
    Directive.objects.filter(pk=refund.pk).update(status="queued", available_at=timezone.now())
    engine.process(topics=TOPICS)
    assert MockTransaction.objects.filter(kind="refund").count() == 1
    assert events_of(order) == ["payment.captured", "payment.refunded"]
    assert get_backend().status(order.ref).status == "refunded"


def test_a_refund_the_gateway_declines_is_recorded_once():
    order = order_for(payment_channel())
    engine.process(topics=TOPICS)
    OrderService.transition(order.ref, "cancelled", actor="ana")
    refund = Directive.objects.get(topic="payment.refund")
    with omniman_settings(PAYMENT_MOCK={"mode": "decline"}):
        assert engine.process(topics=TOPICS).outcomes == [(refund.pk, "done")]
        run("payment.refund", refund, times=2)
    assert events_of(order) == ["payment.captured", "payment.refund_declined"]
    assert MockTransaction.objects.filter(kind="refund").values_list("status", flat=True).get() == "declined"


def test_a_refund_that_cannot_reach_the_gateway_is_retried():
    order = order_for(payment_channel())
    engine.process(topics=TOPICS)
    OrderService.transition(order.ref, "cancelled", actor="ana")
    refund = Directive.objects.get(topic="payment.refund")
    with omniman_settings(PAYMENT_MOCK={"mode": "fail"}):
        assert engine.process(topics=TOPICS).outcomes == [(refund.pk, "retried")]
    assert events_of(order) == ["payment.captured"]
    make_due(refund)
    assert engine.process(topics=TOPICS).outcomes == [(refund.pk, "done")]
    assert events_of(order) == ["payment.captured", "payment.refunded"]


# -- the gateway ----------------------------------------------------------------------------


def test_the_gateway_dedupes_by_idempotency_key():
    gateway = MockGateway()
    assert isinstance(gateway, PaymentBackend)
    first = gateway.authorize(amount_q=500, currency="BRL", reference="R-1", idempotency_key="k-1")
    again = gateway.authorize(amount_q=500, currency="BRL", reference="R-1", idempotency_key="k-1")
    assert first == again and first.status == "authorized" and first.transaction_id.startswith("mockpay_")
    assert MockTransaction.objects.count() == 1

    with pytest.raises(PaymentError) as caught:
        gateway.authorize(amount_q=900, currency="BRL", reference="R-1", idempotency_key="k-1")
    assert caught.value.code == "idempotency_conflict"
    assert MockTransaction.objects.count() == 1


def test_the_gateway_refuses_what_a_provider_would_refuse():
    gateway = MockGateway()
    payment = gateway.authorize(amount_q=500, currency="BRL", reference="R-2", idempotency_key="a")
    assert gateway.status("R-2").status == "authorized"
    too_much = gateway.capture(transaction_id=payment.transaction_id, amount_q=501, idempotency_key="c-0")
    assert (too_much.status, too_much.error_code) == ("declined", "amount_exceeds_authorization")
    assert gateway.capture(transaction_id="mockpay_nope", amount_q=1, idempotency_key="c-x").error_code == "unknown_transaction"
    assert gateway.refund(transaction_id=payment.transaction_id, amount_q=1, idempotency_key="r-0").error_code == "not_captured"

    captured = gateway.capture(transaction_id=payment.transaction_id, amount_q=500, idempotency_key="c-1")
    assert captured.status == "captured" and captured.transaction_id == payment.transaction_id
    twice = gateway.capture(transaction_id=payment.transaction_id, amount_q=500, idempotency_key="c-2")
    assert twice.error_code == "already_captured"
    assert gateway.status("R-2") == PaymentResult("captured", payment.transaction_id, 500, "BRL")

    part = gateway.refund(transaction_id=payment.transaction_id, amount_q=200, idempotency_key="r-1")
    assert part.status == "refunded" and part.transaction_id.startswith("mockrf_")
    assert gateway.status("R-2").amount_q == 300
    assert gateway.refund(transaction_id=payment.transaction_id, amount_q=301, idempotency_key="r-2").error_code == "amount_exceeds_capture"
    assert gateway.refund(transaction_id=payment.transaction_id, amount_q=300, idempotency_key="r-3").status == "refunded"
    assert gateway.status("R-2").status == "refunded"
    assert gateway.status("R-unknown").status == "unknown"


def test_the_backend_is_swappable():
    calls = []

    class Recording(MockGateway):
        def authorize(self, **kwargs):
            calls.append(kwargs)
            return super().authorize(**kwargs)

    order = order_for(payment_channel())
    with omniman_settings(PAYMENT_BACKEND=Recording()):
        assert isinstance(get_backend(), Recording)
        engine.process(topics=TOPICS)
    assert calls == [{"amount_q": 2000, "currency": order.currency, "reference": order.ref, "idempotency_key": f"authorize:{order.ref}"}]
    assert events_of(order) == ["payment.captured"]


def test_an_invalid_mock_mode_is_a_configuration_error():
    with omniman_settings(PAYMENT_MOCK={"mode": "sometimes"}):
        with pytest.raises(PaymentError) as caught:
            MockGateway().authorize(amount_q=1, currency="BRL", reference="R", idempotency_key="k")
    assert caught.value.code == "invalid_config"
    assert MockTransaction.objects.count() == 0


# -- concurrency ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_concurrent_captures_of_one_order_charge_once():
    order = order_for(payment_channel())
    barrier = threading.Barrier(8)
    outcomes: list = []

    def worker():
        try:
            barrier.wait(timeout=30)
            outcomes.append(PaymentService.capture(order.ref, actor="thread"))
        except Exception as exc:  # noqa: BLE001 - reported below
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["already_captured"] * 7 + ["captured"]
    assert gateway_rows(order) == [("authorize", "authorized"), ("capture", "captured")]
    assert events_of(order) == ["payment.captured"]
