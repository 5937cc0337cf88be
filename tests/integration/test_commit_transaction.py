"""The commit in one transaction (issue 19): the same rows as before, its key read and written inside it.

``CommitService.commit`` inserts the order already in its ``on_create`` status,
writes its events in one INSERT and its directives in another, and keeps the
idempotency key in the order's transaction. These tests pin the rows it writes
(events, directives, the order's stamps, the kitchen's items) to what the
step-by-step commit wrote (insert ``new``, then ``OrderService``'s transition),
and the key's answers when another commit writes the key in between.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman.exceptions import CommitError, OmnimanError, SessionError
from omniman.models import Channel, Directive, IdempotencyKey, KitchenItem, Order, OrderEvent, Session
from omniman.services import CommitService, ModifyService
from omniman.services import commit as commit_module
from omniman.signals import directive_enqueued, order_created, order_status_changed
from tests.factories import DbState, commit, create_session_at, make_channel

pytestmark = pytest.mark.django_db(transaction=True)

FLOW = {"auto_transitions": {"on_create": "confirmed"}, "on_enter": {"new": ["audit.new"], "confirmed": ["kitchen.print"]}}


def _session_with_override_and_service_charge(channel):
    session = create_session_at(channel, lines=2)
    line_id = session.items[0]["line_id"]
    return ModifyService.modify_session(
        session.session_key,
        channel.code,
        [{"op": "override_price", "line_id": line_id, "unit_price_q": 700, "reason": "staff", "actor": "maria"}],
    )


def test_the_order_is_written_confirmed_with_the_events_and_directives_of_both_moves():
    channel = make_channel(
        config={"post_commit_directives": ["notification.send", "stock.commit"], "order_flow": FLOW, "service_charge_percent": 10}
    )
    session = _session_with_override_and_service_charge(channel)
    line_id = session.items[0]["line_id"]
    received = []
    order_created.connect(lambda sender, order, **kw: received.append(("created", order.status)), weak=False, dispatch_uid="t-created")
    order_status_changed.connect(
        lambda sender, order, from_status, to_status, **kw: received.append(("moved", from_status, to_status)),
        weak=False,
        dispatch_uid="t-moved",
    )
    try:
        result = commit(session, "k-1", actor="ana")
    finally:
        order_created.disconnect(dispatch_uid="t-created")
        order_status_changed.disconnect(dispatch_uid="t-moved")

    order = Order.objects.get(ref=result["order_ref"])
    fresh = Session.objects.get(pk=session.pk)
    assert result == {
        "order_ref": order.ref,
        "order_id": order.pk,
        "status": "confirmed",
        "total_q": order.total_q,
        "items_count": 2,
        "idempotent": False,
    }
    # The order: confirmed and stamped at the commit's moment.
    assert order.status == "confirmed"
    assert order.confirmed_at == order.created_at == order.updated_at == fresh.committed_at
    assert order.snapshot["committed_at"] == fresh.committed_at.isoformat()
    assert fresh.state == "committed" and fresh.commit_token == "k-1"

    # The events, in the order the step-by-step commit wrote them.
    events = list(OrderEvent.objects.filter(order=order).order_by("created_at", "id"))
    adjustment = order.adjustments[0]
    assert [(e.type, e.actor, e.payload) for e in events] == [
        ("created", "ana", {"session_key": session.session_key, "rev": session.rev, "status": "new", "total_q": order.total_q, "items_count": 2}),
        ("price.overridden", "maria", {"line_id": line_id, "sku": "SKU-0", "from": 1000, "to": 700, "reason": "staff"}),
        (
            "adjustment.applied",
            "system",
            {
                **{key: adjustment.get(key) for key in ("id", "kind", "label", "line_id", "percent", "amount_q", "reason", "approved_by")},
                "auto": True,
                "before_q": order.total_q - adjustment["amount_q"],
                "after_q": order.total_q,
            },
        ),
        ("status_changed", "ana", {"from": "new", "to": "confirmed", "reason": "auto_transitions.on_create"}),
    ]
    assert [e.pk for e in events] == sorted(e.pk for e in events)
    moved = events[-1]

    # The directives: post-commit first, then on_enter of "new", then on_enter of "confirmed" (the move's event id).
    directives = list(Directive.objects.order_by("id").filter(payload__order_ref=order.ref))
    assert [(d.topic, d.payload, d.dedupe_key, d.status) for d in directives] == [
        ("notification.send", {"order_ref": order.ref, "channel_code": channel.code, "session_key": session.session_key}, f"{order.ref}:notification.send", "queued"),
        ("stock.commit", {"order_ref": order.ref, "channel_code": channel.code, "session_key": session.session_key}, f"{order.ref}:stock.commit", "queued"),
        ("audit.new", {"order_ref": order.ref, "from": None, "to": "new"}, f"{order.ref}:new:audit.new:created", "queued"),
        ("kitchen.print", {"order_ref": order.ref, "from": "new", "to": "confirmed"}, f"{order.ref}:confirmed:kitchen.print:{moved.pk}", "queued"),
    ]
    # The kitchen's items, as created before the move (the move into "confirmed" touches none).
    assert sorted(KitchenItem.objects.filter(order=order).values_list("status", "rev", "previous_status")) == [("queued", 0, "")] * 2
    # The signals after the commit, in the same order as before.
    assert received == [("created", "confirmed"), ("moved", "new", "confirmed")]
    assert IdempotencyKey.objects.get(key="k-1").response_body == {k: v for k, v in result.items() if k != "idempotent"}


def test_a_commit_without_on_create_stays_new_and_unstamped():
    channel = make_channel(config={"post_commit_directives": ["notification.send"]})
    result = commit(create_session_at(channel, lines=1))
    order = Order.objects.get(ref=result["order_ref"])
    assert result["status"] == order.status == "new" and order.confirmed_at is None
    assert list(OrderEvent.objects.filter(order=order).values_list("type", flat=True)) == ["created"]
    assert list(Directive.objects.filter(payload__order_ref=order.ref).values_list("topic", flat=True)) == ["notification.send"]


def test_an_on_create_move_the_kitchen_follows_still_moves_the_items():
    # into "processing", the order status of the item status "cooking": the kitchen's receiver catches the items up
    flow = {
        "transitions": {"new": ["processing", "cancelled"], "processing": ["ready", "cancelled"], "ready": ["completed"]},
        "auto_transitions": {"on_create": "processing"},
    }
    channel = make_channel(config={"order_flow": flow})
    result = commit(create_session_at(channel, lines=2))
    order = Order.objects.get(ref=result["order_ref"])
    assert order.status == "processing" and order.processing_at == order.created_at and order.confirmed_at is None
    assert sorted(KitchenItem.objects.filter(order=order).values_list("status", "rev", "previous_status")) == [("cooking", 1, "")] * 2
    assert list(OrderEvent.objects.filter(order=order).order_by("created_at", "id").values_list("type", "payload")) == [
        ("created", {"session_key": order.session_key, "rev": 1, "status": "new", "total_q": order.total_q, "items_count": 2}),
        ("status_changed", {"from": "new", "to": "processing", "reason": "auto_transitions.on_create"}),
    ]


def test_an_on_create_the_flow_does_not_allow_fails_the_commit_and_writes_nothing():
    channel = make_channel()
    session = create_session_at(channel, lines=1)
    # A config planted behind the model's validation (it refuses this flow).
    Channel.objects.filter(pk=channel.pk).update(config={"order_flow": {"auto_transitions": {"on_create": "completed"}}})
    state = DbState(session)
    with pytest.raises(OmnimanError) as err:
        commit(session, "bad-flow")
    assert err.value.code == "invalid_transition"
    assert err.value.context["from"] == "new" and err.value.context["to"] == "completed"
    state.assert_unchanged()
    assert IdempotencyKey.objects.get(key="bad-flow").status == "failed"


def test_the_directives_are_announced_once_each_in_order():
    channel = make_channel(config={"post_commit_directives": ["a.one", "b.two"], "order_flow": FLOW})
    announced = []
    directive_enqueued.connect(lambda sender, directive, **kw: announced.append(directive.topic), weak=False, dispatch_uid="t-ann")
    try:
        commit(create_session_at(channel, lines=1))
    finally:
        directive_enqueued.disconnect(dispatch_uid="t-ann")
    assert announced == ["a.one", "b.two", "audit.new", "kitchen.print"]


# -- the idempotency key in the order's transaction ------------------------------------------------


def test_an_unknown_session_writes_no_key():
    channel = make_channel()
    with pytest.raises(SessionError) as err:
        CommitService.commit("SESS-NOPE", channel.code, idempotency_key="nope-1")
    assert err.value.code == "not_found"
    with pytest.raises(SessionError) as err:
        CommitService.commit("SESS-NOPE", "no-such-channel", idempotency_key="nope-2")
    assert err.value.code == "channel_not_found"
    assert IdempotencyKey.objects.count() == 0


def test_a_replay_reads_the_key_and_writes_nothing():
    session = create_session_at(lines=1)
    first = commit(session, "again")
    state = DbState(session)
    key = IdempotencyKey.objects.get(key="again")
    with CaptureQueriesContext(connection) as ctx:
        second = commit(session, "again")
    assert second == {**first, "idempotent": True}
    state.assert_unchanged()
    assert IdempotencyKey.objects.get(key="again").updated_at == key.updated_at
    writes = [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []


def test_a_conflict_leaves_the_other_sessions_key_as_it_was():
    channel = make_channel()
    one, two = create_session_at(channel), create_session_at(channel)
    commit(one, "shared")
    before = IdempotencyKey.objects.values().get(key="shared")
    state = DbState(two)
    with pytest.raises(OmnimanError) as err:
        commit(two, "shared")
    assert err.value.code == "conflict"
    state.assert_unchanged()
    assert IdempotencyKey.objects.values().get(key="shared") == before


def test_an_expired_key_of_another_session_is_taken_over():
    channel = make_channel()
    one, two = create_session_at(channel), create_session_at(channel)
    commit(one, "old")
    IdempotencyKey.objects.filter(key="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    result = commit(two, "old")
    key = IdempotencyKey.objects.get(key="old")
    assert result["idempotent"] is False
    assert (key.status, key.fingerprint, key.response_body["order_ref"]) == ("done", two.session_key, result["order_ref"])
    assert key.expires_at > timezone.now() + timedelta(hours=23)


def test_a_failed_commit_marks_a_taken_over_key_failed_for_its_session():
    channel = make_channel()
    one, empty = create_session_at(channel), create_session_at(channel, lines=0)
    commit(one, "reused")
    IdempotencyKey.objects.filter(key="reused").update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(CommitError) as err:
        commit(empty, "reused")
    assert err.value.code == "empty_session"
    key = IdempotencyKey.objects.get(key="reused")
    assert (key.status, key.fingerprint, key.response_code) == ("failed", empty.session_key, None)
    assert key.response_body["error"]["code"] == "empty_session"
    assert key.expires_at > timezone.now()


def test_an_open_sessions_commit_reads_no_key_its_one_key_statement_is_the_upsert():
    session = create_session_at(lines=1)
    with CaptureQueriesContext(connection) as ctx:
        result = commit(session, "once")
    keys = [q["sql"].split()[0].upper() for q in ctx.captured_queries if "omniman_idempotencykey" in q["sql"]]
    assert keys == ["INSERT"]  # no SELECT of the key before it: the upsert finds a key that is another's
    key = IdempotencyKey.objects.get(key="once")
    assert (key.status, key.fingerprint, key.response_body["order_ref"]) == ("done", session.session_key, result["order_ref"])


@pytest.mark.parametrize("broken", ["empty_session", "stale_rev"])
def test_a_key_of_another_session_answers_before_the_commits_own_error_and_nothing_is_marked(broken):
    # The key is no longer read first: the commit's own error comes out first, its key's upsert finds the other
    # session's row, and the key's answer is raised instead, as when the key was read before the commit.
    channel = make_channel()
    one = create_session_at(channel)
    two = create_session_at(channel, lines=0 if broken == "empty_session" else 1)
    commit(one, "shared")
    before = IdempotencyKey.objects.values().get(key="shared")
    state = DbState(two)
    with pytest.raises(OmnimanError) as err:
        commit(two, "shared", **({"expected_rev": two.rev + 1} if broken == "stale_rev" else {}))
    assert err.value.code == "conflict"
    state.assert_unchanged()
    assert IdempotencyKey.objects.values().get(key="shared") == before
    with pytest.raises(OmnimanError) as err:
        commit(two, "mine", **({"expected_rev": two.rev + 1} if broken == "stale_rev" else {}))
    assert err.value.code == broken  # with a key of its own, the commit's own error
    assert IdempotencyKey.objects.get(key="mine").status == "failed"


def test_a_live_in_progress_key_of_this_session_answers_before_the_commits_own_error():
    channel = make_channel()
    session = create_session_at(channel, lines=0)
    _key_row(f"commit:{channel.code}", "busy", session.session_key, status="in_progress").save()
    before = IdempotencyKey.objects.values().get(key="busy")
    state = DbState(session)
    with pytest.raises(CommitError) as err:
        commit(session, "busy")
    assert err.value.code == "in_progress"
    state.assert_unchanged()
    assert IdempotencyKey.objects.values().get(key="busy") == before


def _land_before_the_write(monkeypatch, land):
    """Run ``land()`` right before the commit writes its key: another commit's key write arriving meanwhile
    (after the commit locked its session and wrote its order, the key not read: an open session's commit reads
    no key before its upsert)."""
    keep = commit_module._keep_result

    def land_then_keep(key, result):
        land()
        return keep(key, result)

    monkeypatch.setattr(commit_module, "_keep_result", land_then_keep)


def _key_row(scope: str, key: str, fingerprint: str, **fields):
    return IdempotencyKey(scope=scope, key=key, fingerprint=fingerprint, expires_at=timezone.now() + timedelta(hours=1), **fields)


def _elsewhere(row: IdempotencyKey):
    """Save ``row`` from another connection (another request), committed at once."""
    def save():
        try:
            row.save()
        finally:
            connections.close_all()

    thread = threading.Thread(target=save)
    thread.start()
    thread.join(timeout=30)


DONE_ELSEWHERE = {"order_ref": "ORD-OTHER", "order_id": 1, "status": "new", "total_q": 1, "items_count": 1}


@pytest.mark.postgres
def test_a_key_written_for_another_session_meanwhile_rolls_the_commit_back(monkeypatch):
    channel = make_channel()
    session = create_session_at(channel, lines=2)
    other = _key_row(f"commit:{channel.code}", "race", "SESS-OTHER", status="done", response_code=201, response_body=DONE_ELSEWHERE)
    _land_before_the_write(monkeypatch, lambda: _elsewhere(other))
    state = DbState(session)
    with pytest.raises(OmnimanError) as err:
        commit(session, "race")
    assert err.value.code == "conflict"
    state.assert_unchanged()  # no order, items, events, directives; the session still open at its rev
    assert list(IdempotencyKey.objects.values_list("fingerprint", "status", "response_body")) == [
        ("SESS-OTHER", "done", DONE_ELSEWHERE)
    ]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"fingerprint": "SESS-OTHER", "status": "done", "response_code": 201, "response_body": DONE_ELSEWHERE}, "conflict"),
        ({"status": "in_progress"}, "in_progress"),  # this session's, live: another request is committing it
    ],
)
def test_the_keys_answer_at_its_write_rolls_the_commit_back_and_marks_nothing(monkeypatch, fields, code):
    channel = make_channel()
    session = create_session_at(channel, lines=1)
    fields = {"fingerprint": session.session_key, **fields}
    # Landed in the commit's own transaction (SQLite serialises writers): rolled back with it.
    _land_before_the_write(monkeypatch, lambda: _key_row(f"commit:{channel.code}", "raced", **fields).save())
    state = DbState(session)
    with pytest.raises(OmnimanError) as err:
        commit(session, "raced")
    assert err.value.code == code
    state.assert_unchanged()
    assert IdempotencyKey.objects.count() == 0  # the key's own answer marks no key failed


def test_a_key_finished_for_this_session_meanwhile_answers_its_result(monkeypatch):
    channel = make_channel()
    session = create_session_at(channel, lines=1)
    body = {"order_ref": "ORD-FIRST", "order_id": 7, "status": "new", "total_q": 1000, "items_count": 1}
    _land_before_the_write(
        monkeypatch,
        lambda: _key_row(f"commit:{channel.code}", "twice", session.session_key, status="done", response_code=201, response_body=body).save(),
    )
    state = DbState(session)
    assert commit(session, "twice") == {**body, "idempotent": True}
    state.assert_unchanged()


@pytest.mark.postgres
def test_one_key_for_two_sessions_at_once_makes_one_order():
    from tests.threads import run_together

    channel = make_channel()
    sessions = [create_session_at(channel, lines=2) for _ in range(4)]
    results = run_together(lambda i: commit(sessions[i], "contested"), count=4)
    oks = [value for kind, value in results if kind == "ok"]
    errors = [value for kind, value in results if kind == "error"]
    assert len(oks) == 1 and oks[0]["idempotent"] is False
    assert errors == ["conflict"] * 3
    order = Order.objects.get()
    assert order.ref == oks[0]["order_ref"]
    assert Session.objects.filter(state="committed").get().session_key == order.session_key
    assert Session.objects.filter(state="open").count() == 3
    key = IdempotencyKey.objects.get(key="contested")
    assert (key.status, key.fingerprint) == ("done", order.session_key)
    assert Directive.objects.filter(payload__order_ref=order.ref).count() == Directive.objects.count()
