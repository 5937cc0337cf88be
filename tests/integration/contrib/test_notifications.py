"""Notifications: console, email (locmem) and a signed webhook against a real local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from omniman import engine, registry
from omniman.contrib.notifications import get_backend
from omniman.contrib.notifications.backends import ConsoleBackend, EmailBackend, WebhookBackend
from omniman.contrib.notifications.exceptions import NotificationError
from omniman.contrib.notifications.models import NotificationDelivery
from omniman.contrib.notifications.protocols import NotificationBackend
from omniman.models import Directive, Order
from omniman.services import OrderService
from tests.factories import commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "notification.send"
SECRET = "s3cret-for-tests"


class Hook:
    """A webhook receiver on 127.0.0.1 (random port): records requests, answers the queued statuses (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append({"path": self.path, "headers": dict(self.headers), "raw": raw})
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/orders"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def hook():
    receiver = Hook()
    yield receiver
    receiver.close()


@contextmanager
def omniman_settings(**overrides):
    with override_settings(OMNIMAN={**settings.OMNIMAN, **overrides}):
        yield


def channel_with(*backends, post_commit=True, **flow):
    config = {"notifications": {"backends": list(backends)}}
    if post_commit:
        config["post_commit_directives"] = [TOPIC]
    if flow:
        config["order_flow"] = flow
    return make_channel(config=config)


def order_for(channel, *, data=None) -> Order:
    session = create_session_at(channel, lines=2, price=1250, data=data)
    return Order.objects.get(ref=commit(session)["order_ref"])


def webhook(hook, **extra):
    return {"backend": "webhook", "url": hook.url, "secret": SECRET, "timeout": 5, **extra}


def run_twice(directive):
    handler = registry.get_directive_handler(TOPIC)
    for attempt in (1, 2):
        handler.handle(message=directive, ctx={"attempt": attempt, "actor": "test"})


def make_due(directive):
    Directive.objects.filter(pk=directive.pk).update(available_at=timezone.now())


# -- webhook ------------------------------------------------------------------------------


def test_the_webhook_posts_a_signed_json_body(hook):
    order = order_for(channel_with(webhook(hook)))
    directive = Directive.objects.get(topic=TOPIC)
    assert engine.process(topics=[TOPIC]).outcomes == [(directive.pk, "done")]

    [request] = hook.requests
    raw, headers = request["raw"], request["headers"]
    expected = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Omniman-Signature"], expected)
    assert not hmac.compare_digest(headers["X-Omniman-Signature"], "sha256=" + hmac.new(b"wrong", raw, hashlib.sha256).hexdigest())
    assert headers["Content-Type"] == "application/json" and headers["X-Omniman-Event"] == "order.created"
    assert request["path"] == "/hooks/orders"
    body = json.loads(raw)
    assert body["event"] == "order.created" and body["delivery_id"] == headers["X-Omniman-Delivery"] != ""
    assert body["order"]["ref"] == order.ref and body["order"]["total_q"] == 2500
    assert [item["qty"] for item in body["order"]["items"]] == ["1", "1"]

    delivery = NotificationDelivery.objects.get()
    assert (delivery.order_ref, delivery.event, delivery.backend, delivery.backend_index) == (order.ref, "order.created", "webhook", 0)
    assert delivery.detail == {"url": hook.url, "status": 200} and delivery.directive_id == directive.pk


def test_a_500_is_retried_with_backoff_then_delivered_once(hook):
    order_for(channel_with(webhook(hook)))
    directive = Directive.objects.get(topic=TOPIC)
    hook.statuses = [500]
    before = timezone.now()

    assert engine.process(topics=[TOPIC]).outcomes == [(directive.pk, "retried")]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("queued", 1)
    assert "HTTP 500" in directive.last_error and "webhook_failed" in directive.last_error
    assert directive.available_at > before
    assert NotificationDelivery.objects.count() == 0

    make_due(directive)
    assert engine.process(topics=[TOPIC]).outcomes == [(directive.pk, "done")]
    directive.refresh_from_db()
    assert (directive.status, directive.attempts) == ("done", 2)
    assert len(hook.requests) == 2
    assert hook.requests[0]["raw"] == hook.requests[1]["raw"]  # the same delivery, the same signed body
    assert NotificationDelivery.objects.count() == 1


def test_the_webhook_twice_posts_once(hook):
    order_for(channel_with(webhook(hook)))
    directive = Directive.objects.get(topic=TOPIC)
    run_twice(directive)
    Directive.objects.filter(pk=directive.pk).update(status="queued", available_at=timezone.now())
    engine.process(topics=[TOPIC])
    assert len(hook.requests) == 1
    assert NotificationDelivery.objects.count() == 1


def test_an_unreachable_webhook_is_retried():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    order_for(channel_with({"backend": "webhook", "url": f"http://127.0.0.1:{port}/", "secret": SECRET, "timeout": 2}))
    directive = Directive.objects.get(topic=TOPIC)
    assert engine.process(topics=[TOPIC]).outcomes == [(directive.pk, "retried")]
    assert "webhook_unreachable" in Directive.objects.get(pk=directive.pk).last_error
    assert NotificationDelivery.objects.count() == 0


def test_a_redirect_is_a_failure_not_followed(hook):
    order = order_for(channel_with(webhook(hook), post_commit=False))
    hook.statuses = [302]
    with pytest.raises(NotificationError) as caught:
        WebhookBackend().send(event="order.created", order=order, payload={}, config=webhook(hook))
    assert caught.value.code == "webhook_failed" and caught.value.context["status"] == 302
    assert len(hook.requests) == 1


@pytest.mark.parametrize(
    "config",
    [
        {"backend": "webhook", "url": "http://127.0.0.1:9/x"},  # no secret
        {"backend": "webhook", "url": "file:///etc/passwd", "secret": SECRET},
        {"backend": "webhook", "url": "", "secret": SECRET},
    ],
)
def test_a_misconfigured_webhook_is_invalid_config(config):
    order = order_for(channel_with(config, post_commit=False))
    with pytest.raises(NotificationError) as caught:
        WebhookBackend().send(event="order.created", order=order, payload={}, config=config)
    assert caught.value.code == "invalid_config"


def test_the_secret_may_come_from_the_environment(hook, monkeypatch):
    monkeypatch.setenv("OMNIMAN_TEST_HOOK_SECRET", "from-env")
    order_for(channel_with({"backend": "webhook", "url": hook.url, "secret_env": "OMNIMAN_TEST_HOOK_SECRET"}))
    engine.process(topics=[TOPIC])
    [request] = hook.requests
    expected = "sha256=" + hmac.new(b"from-env", request["raw"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Omniman-Signature"], expected)


# -- email --------------------------------------------------------------------------------


def test_email_goes_to_the_configured_recipients_once(mailoutbox):
    order = order_for(channel_with({"backend": "email", "to": ["kitchen@example.com"], "from": "orders@example.com"}))
    directive = Directive.objects.get(topic=TOPIC)
    run_twice(directive)
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["kitchen@example.com"] and mail.from_email == "orders@example.com"
    assert order.ref in mail.subject and order.ref in mail.body
    assert NotificationDelivery.objects.get().detail == {"to": ["kitchen@example.com"], "sent": 1}


def test_email_falls_back_to_the_customer_and_skips_without_one(mailoutbox):
    channel = channel_with({"backend": "email"})
    with_customer = order_for(channel, data={"customer": {"name": "Ana", "email": "ana@example.com"}})
    without = order_for(channel)
    assert engine.process(topics=[TOPIC]).done == 2
    assert [m.to for m in mailoutbox] == [["ana@example.com"]]
    assert NotificationDelivery.objects.get(order_ref=without.ref).detail == {"skipped": "no recipient"}
    assert NotificationDelivery.objects.get(order_ref=with_customer.ref).detail["to"] == ["ana@example.com"]


# -- several backends ----------------------------------------------------------------------


def test_several_backends_split_so_a_failing_one_never_resends_the_others(hook, mailoutbox):
    order = order_for(channel_with({"backend": "email", "to": ["a@example.com"]}, webhook(hook)))
    parent = Directive.objects.get(topic=TOPIC)
    assert engine.process(topics=[TOPIC]).outcomes == [(parent.pk, "done")]
    children = list(Directive.objects.filter(topic=TOPIC).exclude(pk=parent.pk).order_by("id"))
    assert [c.payload["backend"] for c in children] == [0, 1]
    assert all(c.payload["event"] == "order.created" and c.payload["occurrence"] == parent.dedupe_key for c in children)
    assert len(mailoutbox) == 0 and hook.requests == []  # the parent only split the work

    hook.statuses = [500]
    assert engine.process(topics=[TOPIC]).outcomes == [(children[0].pk, "done"), (children[1].pk, "retried")]
    assert len(mailoutbox) == 1
    make_due(children[1])
    assert engine.process(topics=[TOPIC]).outcomes == [(children[1].pk, "done")]
    assert len(mailoutbox) == 1 and len(hook.requests) == 2
    assert sorted(NotificationDelivery.objects.values_list("order_ref", "backend_index")) == [(order.ref, 0), (order.ref, 1)]

    # The parent delivered again (at least once): nothing pending, nothing sent, nothing enqueued.
    run_twice(parent)
    assert Directive.objects.filter(topic=TOPIC).count() == 3
    assert len(mailoutbox) == 1 and len(hook.requests) == 2


def test_on_enter_notifies_each_entry_and_backends_filter_events(capsys, mailoutbox):
    channel = channel_with(
        {"backend": "console"},
        {"backend": "email", "to": ["pickup@example.com"], "events": ["order.ready"]},
        post_commit=False,
        on_enter={"ready": [TOPIC], "confirmed": [TOPIC]},
    )
    order = order_for(channel)
    OrderService.transition(order.ref, "confirmed", actor="ana")
    assert engine.process(topics=[TOPIC]).done == 1  # console only: email wants order.ready
    assert f"order.confirmed {order.ref}" in capsys.readouterr().out
    assert mailoutbox == []

    OrderService.transition(order.ref, "ready", actor="ana")
    engine.process(topics=[TOPIC])  # splits into console + email
    engine.process(topics=[TOPIC])
    assert f"order.ready {order.ref}" in capsys.readouterr().out
    assert [m.to for m in mailoutbox] == [["pickup@example.com"]]
    assert sorted(NotificationDelivery.objects.values_list("event", "backend")) == [
        ("order.confirmed", "console"),
        ("order.ready", "console"),
        ("order.ready", "email"),
    ]


# -- configuration ---------------------------------------------------------------------------


def test_a_channel_without_backends_sends_nothing():
    order_for(channel_with())
    assert engine.process(topics=[TOPIC]).done == 1
    assert NotificationDelivery.objects.count() == 0


def test_unknown_backend_and_order_are_errors_and_retried():
    order_for(channel_with({"backend": "carrier-pigeon"}))
    ghost = Directive.objects.enqueue(TOPIC, {"order_ref": "ORD-NOPE"})
    result = engine.process(topics=[TOPIC])
    assert [outcome for _, outcome in result.outcomes] == ["retried", "retried"]
    errors = list(Directive.objects.order_by("id").values_list("last_error", flat=True))
    assert "unknown_backend" in errors[0] and "order_not_found" in errors[1]
    assert ghost.pk == Directive.objects.order_by("id").last().pk
    assert NotificationDelivery.objects.count() == 0


def test_backends_are_swappable_by_name_and_by_path(capsys):
    sent = []

    class Pager:
        def send(self, *, event, order, payload, config):
            sent.append((event, order.ref, config["number"]))
            return {"paged": config["number"]}

    assert isinstance(Pager(), NotificationBackend)
    assert all(isinstance(b, NotificationBackend) for b in (ConsoleBackend(), EmailBackend(), WebhookBackend()))
    order = order_for(channel_with({"backend": "pager", "number": 7}))
    with omniman_settings(NOTIFICATION_BACKENDS={"pager": Pager()}):
        assert isinstance(get_backend("console"), ConsoleBackend)
        assert isinstance(get_backend("omniman.contrib.notifications.backends.ConsoleBackend"), ConsoleBackend)
        engine.process(topics=[TOPIC])
    assert sent == [("order.created", order.ref, 7)]
    assert NotificationDelivery.objects.get().detail == {"paged": 7}
