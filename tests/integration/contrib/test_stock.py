"""The stock app: availability and holds, the stock check end to end, commit/release, expiry, concurrency."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from omniman import engine, registry
from omniman.contrib.catalog.models import Product
from omniman.contrib.stock import get_stock_backend
from omniman.contrib.stock.backends import DatabaseStockBackend
from omniman.contrib.stock.handlers import STOCK_COMMITTED, STOCK_RELEASED
from omniman.contrib.stock.models import StockHold, StockLevel, StockMovement
from omniman.contrib.stock.protocols import UNLIMITED, StockBackend
from omniman.contrib.stock.services import StockService
from omniman.exceptions import CommitError, OmnimanError
from omniman.models import Directive, Order, OrderEvent, Session
from omniman.services import CommitService, ModifyService, OrderService, ResolveService, SessionService
from tests.threads import run_together
from tests.factories import make_channel

pytestmark = pytest.mark.django_db(transaction=True)

STOCK_CHECK = {
    "required_checks_on_commit": ["stock"],
    "checks": {"stock": {"directive_topic": "stock.hold", "label": "Stock"}},
}


def stock_channel(code="shop", *, pricing_policy="internal", **config):
    return make_channel(code, config={**STOCK_CHECK, **config}, pricing_policy=pricing_policy)


def level(sku, on_hand, *, track=True) -> StockLevel:
    return StockLevel.objects.create(sku=sku, on_hand=Decimal(str(on_hand)), track=track)


def on_hand(sku) -> Decimal:
    return StockLevel.objects.get(sku=sku).on_hand


def open_basket(channel, *items) -> Session:
    """A session holding ``(sku, qty)`` items (rev 1: one stock.hold directive queued)."""
    return SessionService.open_session(
        channel.code,
        items=[{"sku": sku, "qty": qty, "unit_price_q": 500, "name": sku.title()} for sku, qty in items],
    )


def fresh(session) -> Session:
    return Session.objects.get(pk=session.pk)


def run(*topics):
    result = engine.process(topics=list(topics))
    assert result.failed == result.retried == 0, Directive.objects.exclude(last_error="").values_list("last_error", flat=True)
    return result


def run_handler(directive: Directive) -> None:
    """Run a directive's handler as the engine does (in a transaction), without touching the row."""
    handler = registry.get_directive_handler(directive.topic)
    with transaction.atomic():
        handler.handle(message=directive, ctx={"attempt": 1, "max_attempts": 5, "actor": f"directive:{directive.topic}"})


def active_holds(reference=None):
    holds = StockHold.objects.filter(status="active")
    if reference is not None:
        holds = holds.filter(reference=reference)
    return list(holds.order_by("sku").values_list("sku", "qty"))


def commit(session, key="k-1"):
    return CommitService.commit(session.session_key, session.channel.code, idempotency_key=key)


# -- the backend ---------------------------------------------------------------


def test_the_default_backend_is_the_database_one_and_fits_the_protocol():
    backend = get_stock_backend()
    assert isinstance(backend, DatabaseStockBackend)
    assert isinstance(backend, StockBackend)


def test_availability_is_on_hand_minus_the_other_references_live_holds():
    level("BEANS", 10)
    level("MUGS", 4, track=False)
    backend = get_stock_backend()
    soon = timezone.now() + timedelta(minutes=10)
    StockHold.objects.create(sku="BEANS", qty=3, reference="S-1", expires_at=soon)
    StockHold.objects.create(sku="BEANS", qty=2, reference="S-2", expires_at=soon)
    StockHold.objects.create(sku="BEANS", qty=4, reference="S-3", expires_at=timezone.now() - timedelta(seconds=1))
    StockHold.objects.create(sku="BEANS", qty=1, reference="S-4", expires_at=soon, status="released")

    wanted = {"BEANS": Decimal(1), "MUGS": Decimal(1), "UNKNOWN": Decimal(1)}
    assert backend.check_availability(wanted) == {"BEANS": Decimal(5), "MUGS": UNLIMITED, "UNKNOWN": UNLIMITED}
    # A session's own holds don't count against it; the expired one (not yet marked) counts for nobody.
    assert backend.check_availability(wanted, reference="S-1")["BEANS"] == Decimal(8)
    assert backend.check_availability(wanted, reference="S-3")["BEANS"] == Decimal(5)
    assert backend.check_availability({}) == {}


def test_availability_never_goes_below_zero():
    level("BEANS", 1)
    StockHold.objects.create(sku="BEANS", qty=3, reference="S-1", expires_at=timezone.now() + timedelta(minutes=5))
    assert get_stock_backend().check_availability({"BEANS": Decimal(1)}, reference="S-2") == {"BEANS": Decimal(0)}


def test_a_hold_is_refused_when_the_units_are_not_free():
    level("BEANS", 5)
    backend = get_stock_backend()
    expires_at = timezone.now() + timedelta(minutes=15)
    first = backend.create_hold("BEANS", Decimal(3), reference="S-1", line_id="L-1", expires_at=expires_at)
    assert (first.sku, first.qty, first.reference, first.line_id, first.status) == ("BEANS", Decimal(3), "S-1", "L-1", "active")
    for qty, reference, code in [(Decimal(3), "S-2", "insufficient_stock"), (Decimal("0"), "S-2", "invalid_qty"), ("x", "S-2", "invalid_qty"), (Decimal(1), "", "missing_field")]:
        with pytest.raises(OmnimanError) as caught:
            backend.create_hold("BEANS", qty, reference=reference, expires_at=expires_at)
        assert caught.value.code == code
    assert active_holds() == [("BEANS", Decimal(3))]
    # Untracked and unknown SKUs are never short.
    backend.create_hold("ANYTHING", Decimal(1000), reference="S-2", expires_at=expires_at)


def test_release_and_fulfil_change_an_active_hold_once():
    level("BEANS", 5)
    backend = get_stock_backend()
    expires_at = timezone.now() + timedelta(minutes=15)
    one = backend.create_hold("BEANS", Decimal(1), reference="S-1", expires_at=expires_at)
    two = backend.create_hold("BEANS", Decimal(1), reference="S-1", expires_at=expires_at)
    assert [backend.release_hold(one.id), backend.release_hold(one.id), backend.fulfill_hold(one.id)] == [True, False, False]
    assert [backend.fulfill_hold(two.id), backend.fulfill_hold(two.id), backend.release_hold(two.id)] == [True, False, False]
    assert dict(StockHold.objects.values_list("pk", "status")) == {one.id: "released", two.id: "fulfilled"}
    with pytest.raises(OmnimanError) as caught:
        backend.release_hold(987654)
    assert caught.value.code == "not_found"


def test_release_holds_for_reference_frees_only_that_sessions_active_holds():
    level("BEANS", 5)
    backend = get_stock_backend()
    expires_at = timezone.now() + timedelta(minutes=15)
    mine = [backend.create_hold("BEANS", Decimal(1), reference="S-1", expires_at=expires_at).id for _ in range(2)]
    theirs = backend.create_hold("BEANS", Decimal(1), reference="S-2", expires_at=expires_at)
    assert sorted(backend.release_holds_for_reference("S-1")) == sorted(mine)
    assert backend.release_holds_for_reference("S-1") == []
    assert [hold.id for hold in backend.holds_for_reference("S-2")] == [theirs.id]


def test_create_holds_holds_several_skus_at_once_or_none():
    level("BEANS", 5)
    level("TEA", 1)
    backend = get_stock_backend()
    expires_at = timezone.now() + timedelta(minutes=15)
    with pytest.raises(OmnimanError) as caught:
        backend.create_holds({"BEANS": Decimal(2), "TEA": Decimal(2)}, reference="S-1", expires_at=expires_at)
    context = caught.value.context
    assert (caught.value.code, context["sku"], context["requested"], Decimal(context["available"])) == ("insufficient_stock", "TEA", "2", 1)
    assert StockHold.objects.count() == 0  # all or none
    for items, reference, code in [({"BEANS": Decimal(0)}, "S-1", "invalid_qty"), ({"BEANS": Decimal(1)}, "", "missing_field")]:
        with pytest.raises(OmnimanError) as caught:
            backend.create_holds(items, reference=reference, expires_at=expires_at)
        assert caught.value.code == code
    holds = backend.create_holds(
        {"TEA": Decimal(1), "BEANS": Decimal(2), "ANYTHING": Decimal(9)},
        reference="S-1", line_ids={"BEANS": "L-1", "TEA": "L-2"}, expires_at=expires_at,
    )
    assert [(h.sku, h.qty, h.line_id, h.status) for h in holds] == [
        ("ANYTHING", Decimal(9), "", "active"), ("BEANS", Decimal(2), "L-1", "active"), ("TEA", Decimal(1), "L-2", "active")
    ]
    assert sorted(h.id for h in holds) == sorted(StockHold.objects.values_list("pk", flat=True))
    assert backend.create_holds({}, reference="S-1", expires_at=expires_at) == []


def test_replace_holds_changes_the_references_holds_and_holds_what_is_free():
    level("BEANS", 5)
    level("TEA", 2)
    level("MUGS", 9, track=False)
    backend = get_stock_backend()
    expires_at = timezone.now() + timedelta(minutes=15)
    [old] = backend.create_holds({"BEANS": Decimal(4)}, reference="S-1", expires_at=expires_at)
    backend.create_holds({"TEA": Decimal(1)}, reference="S-2", expires_at=expires_at)

    done = backend.replace_holds(
        "S-1", {"BEANS": Decimal(5), "TEA": Decimal(3), "MUGS": Decimal(1)}, line_ids={"BEANS": "L-1"}, expires_at=expires_at
    )
    # Its own old hold does not count against it; the other session's does.
    assert done.available == {"BEANS": Decimal(5), "MUGS": UNLIMITED, "TEA": Decimal(1)}
    assert [(h.sku, h.qty, h.line_id) for h in done.holds] == [("BEANS", Decimal(5), "L-1"), ("TEA", Decimal(1), "")]
    assert done.holds[0].id == old.id  # its BEANS hold changed in place: no released row left behind
    assert StockHold.objects.filter(reference="S-1").count() == 2
    assert active_holds("S-1") == [("BEANS", Decimal(5)), ("TEA", Decimal(1))]

    empty = backend.replace_holds("S-1", {}, expires_at=expires_at)
    assert (empty.available, empty.holds, active_holds("S-1")) == ({}, [], [])


def test_fulfill_holds_for_reference_fulfils_only_that_sessions_active_holds():
    level("BEANS", 5)
    backend = get_stock_backend()
    expires_at = timezone.now() + timedelta(minutes=15)
    mine = backend.create_holds({"TEA": Decimal(1), "BEANS": Decimal(1)}, reference="S-1", expires_at=expires_at)
    theirs = backend.create_hold("BEANS", Decimal(1), reference="S-2", expires_at=expires_at)
    assert backend.fulfill_holds_for_reference("S-1") == [h.id for h in mine]  # SKU order
    assert backend.fulfill_holds_for_reference("S-1") == []
    assert StockHold.objects.get(pk=theirs.id).status == "active"
    assert set(StockHold.objects.filter(reference="S-1").values_list("status", flat=True)) == {"fulfilled"}


def test_record_and_restore_a_sale_happen_once_per_order():
    level("BEANS", 10)
    level("MUGS", 3, track=False)
    backend = get_stock_backend()
    sold = {"BEANS": Decimal("2.5"), "MUGS": Decimal(1), "UNKNOWN": Decimal(1)}
    assert backend.record_sale("ORD-1", sold) == {"BEANS": Decimal("2.5")}
    assert backend.record_sale("ORD-1", sold) == {}
    assert (on_hand("BEANS"), on_hand("MUGS")) == (Decimal("7.5"), Decimal(3))
    assert backend.restore_sale("ORD-1") == {"BEANS": Decimal("2.5")}
    assert backend.restore_sale("ORD-1") == {}
    assert backend.restore_sale("ORD-NEVER-SOLD") == {}
    assert on_hand("BEANS") == Decimal(10)
    assert sorted(StockMovement.objects.values_list("reason", "delta")) == [("commit", Decimal("-2.5")), ("release", Decimal("2.5"))]


def test_set_on_hand_records_each_change_as_an_adjustment():
    StockService.set_on_hand("BEANS", 12, actor="ana")
    StockService.set_on_hand("BEANS", "9.5", actor="bob")
    StockService.set_on_hand("BEANS", "9.5", actor="bob")  # no change: no movement
    assert on_hand("BEANS") == Decimal("9.5")
    assert list(StockMovement.objects.order_by("id").values_list("reason", "delta", "actor")) == [
        ("adjust", Decimal(12), "ana"),
        ("adjust", Decimal("-2.5"), "bob"),
    ]
    for bad in ("lots", "1.0001", float("nan")):
        with pytest.raises(OmnimanError) as caught:
            StockService.set_on_hand("BEANS", bad)
        assert caught.value.code == "invalid_qty"
    assert on_hand("BEANS") == Decimal("9.5") and StockMovement.objects.count() == 2


# -- stock.hold, end to end ----------------------------------------------------------


def test_the_stock_check_holds_writes_the_check_and_the_commit_succeeds():
    level("BEANS", 10)
    channel = stock_channel()
    with override_settings(OMNIMAN={"STOCK_HOLD_TTL_MINUTES": 5}):
        session = open_basket(channel, ("BEANS", "2"), ("BEANS", "1.5"), ("UNTRACKED", "3"))
        directive = Directive.objects.get(topic="stock.hold")
        assert directive.payload == {"session_key": session.session_key, "channel_code": "shop", "rev": 1, "check_code": "stock"}
        before = timezone.now()
        assert run("stock.hold").outcomes == [(directive.pk, "done")]

    check = fresh(session).data["checks"]["stock"]
    hold = StockHold.objects.get()
    assert (hold.sku, hold.qty, hold.reference, hold.line_id) == ("BEANS", Decimal("3.5"), session.session_key, session.lines[0]["line_id"])
    assert (check["rev"], check["status"]) == (1, "ok")
    assert check["result"] == {"holds": [hold.pk], "held": {"BEANS": "3.5"}, "expires_at": hold.expires_at.isoformat()}
    expires_at = parse_datetime(check["expires_at"])
    assert before + timedelta(minutes=5) <= expires_at <= timezone.now() + timedelta(minutes=5)
    assert fresh(session).data["issues"] == []
    assert get_stock_backend().check_availability({"BEANS": 1})["BEANS"] == Decimal("6.5")

    result = commit(session)
    assert Order.objects.get(ref=result["order_ref"]).items.count() == 3


def test_a_session_of_untracked_skus_gets_an_ok_check_without_holds_or_expiry():
    channel = stock_channel()
    session = open_basket(channel, ("ANYTHING", "40"))
    run("stock.hold")
    check = fresh(session).data["checks"]["stock"]
    assert (check["status"], check["result"], "expires_at" in check) == ("ok", {"holds": [], "held": {}}, False)
    assert StockHold.objects.count() == 0
    commit(session)


def test_short_stock_is_a_blocking_issue_resolved_by_reducing():
    level("BEANS", 3)
    level("DECAF", 10)
    beans = Product.objects.create(sku="BEANS", name="Beans", price_q=500)
    decaf = Product.objects.create(sku="DECAF", name="Decaf beans", price_q=650)
    scarce = Product.objects.create(sku="SCARCE", name="Scarce beans", price_q=900)
    level("SCARCE", 2)
    beans.alternatives.add(decaf, scarce)
    channel = stock_channel()
    session = open_basket(channel, ("BEANS", "5"))
    line_id = session.lines[0]["line_id"]
    run("stock.hold")

    stored = fresh(session)
    check = stored.data["checks"]["stock"]
    assert (check["rev"], check["status"]) == (1, "issues")
    assert active_holds(session.session_key) == [("BEANS", Decimal(3))]  # what is there is held meanwhile
    [issue] = stored.data["issues"]
    assert {k: issue[k] for k in ("source", "code", "severity", "line_id", "sku", "context")} == {
        "source": "stock",
        "code": "insufficient_stock",
        "severity": "blocking",
        "line_id": line_id,
        "sku": "BEANS",
        "context": {"requested": "5", "available": "3"},
    }
    assert (issue["message_id"], issue["params"]) == (
        "%(name)s: only %(available)s of %(requested)s available.", {"name": "Beans", "available": "3", "requested": "5"}
    )  # the English text's id and parameters, for screens in other languages (omniman.texts)
    assert [(a["label_id"], a["params"]) for a in issue["actions"]] == [
        ("Reduce to %(qty)s", {"qty": "3"}), ("Remove line", {}), ("Replace with %(name)s", {"name": "Decaf beans"})
    ]
    assert [{k: v for k, v in action.items() if k not in ("label_id", "params")} for action in issue["actions"]] == [
        {"id": "reduce", "label": "Reduce to 3", "ops": [{"op": "set_qty", "line_id": line_id, "qty": "3"}]},
        {"id": "remove", "label": "Remove line", "ops": [{"op": "remove_line", "line_id": line_id}]},
        {
            "id": "replace:DECAF",
            "label": "Replace with Decaf beans",
            "ops": [{"op": "replace_sku", "line_id": line_id, "sku": "DECAF", "name": "Decaf beans", "unit_price_q": 650}],
        },
    ]  # SCARCE has 2, not the 5 asked: not offered
    with pytest.raises(CommitError) as caught:
        commit(session)
    assert caught.value.code == "blocking_issues"

    resolved = ResolveService.resolve(session.session_key, "shop", issue_id=issue["id"], action_id="reduce")
    assert resolved.rev == 2 and resolved.data["issues"] == [] and resolved.lines[0]["qty"] == "3"
    run("stock.hold")
    check = fresh(session).data["checks"]["stock"]
    assert (check["rev"], check["status"]) == (2, "ok")
    assert active_holds() == [("BEANS", Decimal(3))]
    assert not StockHold.objects.filter(status="released").exists()  # the rev-1 hold, changed in place
    assert commit(session)["items_count"] == 1


def test_replacing_with_the_alternative_rechecks_the_new_sku():
    level("BEANS", 0)
    level("DECAF", 10)
    Product.objects.create(sku="BEANS", name="Beans", price_q=500).alternatives.add(
        Product.objects.create(sku="DECAF", name="Decaf beans", price_q=650)
    )
    session = open_basket(stock_channel(), ("BEANS", "2"))
    run("stock.hold")
    [issue] = fresh(session).data["issues"]
    assert issue["code"] == "out_of_stock" and issue["context"] == {"requested": "2", "available": "0"}
    assert [action["id"] for action in issue["actions"]] == ["remove", "replace:DECAF"]  # nothing to reduce to
    assert active_holds() == []

    resolved = ResolveService.resolve(session.session_key, "shop", issue_id=issue["id"], action_id="replace:DECAF")
    assert (resolved.lines[0]["sku"], resolved.lines[0]["unit_price_q"]) == ("DECAF", 650)
    run("stock.hold")
    assert fresh(session).data["checks"]["stock"]["status"] == "ok"
    assert active_holds() == [("DECAF", Decimal(2))]


def test_an_external_session_is_not_offered_a_replacement():
    level("BEANS", 1)
    level("DECAF", 10)
    Product.objects.create(sku="BEANS", name="Beans", price_q=500).alternatives.add(
        Product.objects.create(sku="DECAF", name="Decaf beans", price_q=650)
    )
    session = open_basket(stock_channel(pricing_policy="external"), ("BEANS", "2"))
    run("stock.hold")
    [issue] = fresh(session).data["issues"]
    assert [action["id"] for action in issue["actions"]] == ["reduce", "remove"]


def test_lines_of_one_sku_share_its_stock_in_line_order():
    level("BEANS", 5)
    session = open_basket(stock_channel(), ("BEANS", "3"), ("BEANS", "4"))
    run("stock.hold")
    first, second = session.lines
    [issue] = fresh(session).data["issues"]
    assert (issue["line_id"], issue["context"]) == (second["line_id"], {"requested": "4", "available": "2"})
    assert active_holds() == [("BEANS", Decimal(5))]


def test_a_check_for_an_old_revision_writes_nothing_and_holds_nothing():
    level("BEANS", 5)
    session = open_basket(stock_channel(), ("BEANS", "1"))
    ModifyService.modify_session(session.session_key, "shop", [{"op": "set_qty", "line_id": session.lines[0]["line_id"], "qty": "2"}])
    old, new = Directive.objects.filter(topic="stock.hold").order_by("id")
    assert (old.payload["rev"], new.payload["rev"]) == (1, 2)

    run_handler(old)
    assert StockHold.objects.count() == 0 and fresh(session).data["checks"] == {}

    run("stock.hold")  # both: the old one is a no-op, the new one holds
    assert fresh(session).data["checks"]["stock"]["rev"] == 2
    assert active_holds() == [("BEANS", Decimal(2))]


def test_a_check_whose_write_is_refused_fails_and_its_hold_changes_roll_back(monkeypatch):
    """The handler locks the session before the stock, so write_check cannot find it moved on; if it
    refuses anyway, the run fails (the directive is retried) and nothing of it stays."""
    level("BEANS", 5)
    session = open_basket(stock_channel(), ("BEANS", "1"))
    run("stock.hold")
    [kept] = StockHold.objects.filter(status="active")
    ModifyService.modify_session(session.session_key, "shop", [{"op": "set_qty", "line_id": session.lines[0]["line_id"], "qty": "4"}])
    directive = Directive.objects.get(topic="stock.hold", status="queued")

    from omniman.contrib.stock import handlers

    calls = []

    def refused(*args, **kwargs):
        calls.append((kwargs["expected_rev"], kwargs["session"].rev))
        return False

    monkeypatch.setattr(handlers.SessionWriteService, "write_check", refused)
    with pytest.raises(OmnimanError) as caught:
        run_handler(directive)
    assert caught.value.code == "check_not_written"
    assert calls == [(2, 2)]  # given the session it locked, at the directive's rev
    assert list(StockHold.objects.values_list("pk", "qty", "status")) == [(kept.pk, Decimal(1), "active")]  # as before
    assert "stock" not in fresh(session).data["checks"]


def test_the_stock_check_twice_leaves_one_set_of_holds_and_the_same_check():
    level("BEANS", 5)
    session = open_basket(stock_channel(), ("BEANS", "2"), ("TEA", "1"))
    directive = Directive.objects.get(topic="stock.hold")
    run_handler(directive)
    first = fresh(session).data["checks"]["stock"]
    holds = list(StockHold.objects.values_list("pk", "sku", "qty", "status", "updated_at"))
    run_handler(directive)
    assert fresh(session).data["checks"]["stock"] == first
    assert list(StockHold.objects.values_list("pk", "sku", "qty", "status", "updated_at")) == holds


def test_a_repeated_check_whose_holds_expired_holds_again():
    level("BEANS", 5)
    session = open_basket(stock_channel(), ("BEANS", "2"))
    directive = Directive.objects.get(topic="stock.hold")
    run_handler(directive)
    StockHold.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert StockService.release_expired_holds() == 1
    run_handler(directive)
    assert active_holds() == [("BEANS", Decimal(2))]
    check = fresh(session).data["checks"]["stock"]
    assert check["result"]["holds"] == [StockHold.objects.get(status="active").pk]
    assert parse_datetime(check["expires_at"]) > timezone.now()


def test_a_directive_without_its_payload_fails_with_a_code():
    directive = Directive.objects.enqueue("stock.hold", {"session_key": "S-1"})
    with pytest.raises(OmnimanError) as caught:
        run_handler(directive)
    assert caught.value.code == "invalid_payload"
    with pytest.raises(OmnimanError) as caught:
        run_handler(Directive.objects.enqueue("stock.commit", {"order_ref": "ORD-NOPE"}))
    assert caught.value.code == "not_found"


# -- stock.commit and stock.release -------------------------------------------------------


def test_stock_commit_takes_the_sold_units_once_and_applies_on_stock_commit():
    level("BEANS", 10)
    channel = stock_channel(
        post_commit_directives=["stock.commit"],
        order_flow={"auto_transitions": {"on_stock_commit": "confirmed"}},
    )
    session = open_basket(channel, ("BEANS", "2"), ("BEANS", "1"), ("TEA", "1"))
    run("stock.hold")
    [hold] = StockHold.objects.all()
    ref = commit(session)["order_ref"]
    assert on_hand("BEANS") == Decimal(10)  # the commit itself only enqueues

    directive = Directive.objects.get(topic="stock.commit")
    assert directive.payload == {"order_ref": ref, "channel_code": "shop", "session_key": session.session_key}
    run("stock.commit")
    order = Order.objects.get(ref=ref)
    assert on_hand("BEANS") == Decimal(7)
    assert StockHold.objects.get(pk=hold.pk).status == "fulfilled"
    assert order.status == "confirmed"
    event = order.events.get(type=STOCK_COMMITTED)
    assert event.actor == "directive:stock.commit"
    assert event.payload == {"session_key": session.session_key, "holds": [hold.pk], "sold": {"BEANS": "3"}}

    run_handler(directive)  # delivered again
    assert on_hand("BEANS") == Decimal(7)
    assert order.events.filter(type=STOCK_COMMITTED).count() == 1
    assert order.events.filter(type="status_changed").count() == 1
    assert list(StockMovement.objects.values_list("sku", "delta", "reason", "reference")) == [("BEANS", Decimal(-3), "commit", ref)]


def test_stock_commit_skips_an_auto_transition_the_flow_does_not_allow_now():
    level("BEANS", 10)
    channel = make_channel(
        "counter",
        config={"post_commit_directives": ["stock.commit"], "order_flow": {"auto_transitions": {"on_stock_commit": "ready"}}},
    )
    session = open_basket(channel, ("BEANS", "1"))
    ref = commit(session)["order_ref"]
    run("stock.commit")  # new → ready is not a transition of the default flow
    assert Order.objects.get(ref=ref).status == "new" and on_hand("BEANS") == Decimal(9)


def test_stock_commit_of_an_order_without_holds_takes_its_items():
    level("BEANS", 10)
    channel = make_channel("marketplace", pricing_policy="external", edit_policy="locked", config={"post_commit_directives": ["stock.commit"]})
    session = open_basket(channel, ("BEANS", "4"))
    ref = commit(session)["order_ref"]
    run("stock.commit")
    assert on_hand("BEANS") == Decimal(6)
    assert OrderEvent.objects.get(order__ref=ref, type=STOCK_COMMITTED).payload["holds"] == []


def test_cancelling_enqueues_stock_release_which_puts_the_stock_back_once():
    level("BEANS", 10)
    channel = stock_channel(
        post_commit_directives=["stock.commit"],
        order_flow={"on_enter": {"cancelled": ["stock.release", "payment.refund"]}},
    )
    session = open_basket(channel, ("BEANS", "2"))
    run("stock.hold")
    ref = commit(session)["order_ref"]
    run("stock.commit")
    assert on_hand("BEANS") == Decimal(8)

    OrderService.transition(ref, "cancelled", actor="ana")
    queued = {d.topic: d for d in Directive.objects.filter(status="queued")}
    assert set(queued) == {"stock.release", "payment.refund"}
    assert queued["stock.release"].payload == {"order_ref": ref, "from": "new", "to": "cancelled"}
    run("stock.release")
    assert on_hand("BEANS") == Decimal(10)
    event = OrderEvent.objects.get(order__ref=ref, type=STOCK_RELEASED)
    assert event.payload == {"holds": [], "restored": {"BEANS": "2"}}

    run_handler(queued["stock.release"])
    run_handler(Directive.objects.get(topic="stock.commit"))  # a late duplicate of the commit changes nothing either
    assert on_hand("BEANS") == Decimal(10)
    assert OrderEvent.objects.filter(order__ref=ref, type__startswith="stock.").count() == 2
    assert sorted(StockMovement.objects.values_list("reason", "delta")) == [("commit", Decimal(-2)), ("release", Decimal(2))]


def test_cancelling_before_stock_commit_ran_releases_the_holds_and_the_commit_does_nothing():
    level("BEANS", 10)
    channel = stock_channel(
        post_commit_directives=["stock.commit"], order_flow={"on_enter": {"cancelled": ["stock.release"]}}
    )
    session = open_basket(channel, ("BEANS", "2"))
    run("stock.hold")
    [hold] = StockHold.objects.all()
    ref = commit(session)["order_ref"]
    OrderService.transition(ref, "cancelled")
    run("stock.release")
    run("stock.commit")
    assert on_hand("BEANS") == Decimal(10)
    assert StockHold.objects.get(pk=hold.pk).status == "released"
    assert OrderEvent.objects.get(order__ref=ref, type=STOCK_RELEASED).payload == {"holds": [hold.pk], "restored": {}}
    assert not OrderEvent.objects.filter(order__ref=ref, type=STOCK_COMMITTED).exists()
    assert StockMovement.objects.count() == 0


# -- expiry -----------------------------------------------------------------------


def test_an_expired_hold_fails_the_commit_and_no_longer_counts():
    level("BEANS", 2)
    channel = stock_channel()
    first = open_basket(channel, ("BEANS", "2"))
    with override_settings(OMNIMAN={"STOCK_HOLD_TTL_MINUTES": 0}):  # holds that expire at once
        run("stock.hold")
    assert active_holds() == [("BEANS", Decimal(2))]  # not marked yet: nobody ran release_expired_holds
    with pytest.raises(CommitError) as caught:
        commit(first)
    assert caught.value.code == "hold_expired"
    second = open_basket(channel, ("BEANS", "2"))
    run("stock.hold")
    assert fresh(second).data["checks"]["stock"]["status"] == "ok"
    assert active_holds(second.session_key) == [("BEANS", Decimal(2))]


def test_release_expired_holds_marks_only_past_active_holds():
    now = timezone.now()
    past = StockHold.objects.create(sku="BEANS", qty=1, reference="S-1", expires_at=now - timedelta(minutes=1))
    live = StockHold.objects.create(sku="BEANS", qty=1, reference="S-2", expires_at=now + timedelta(minutes=1))
    done = StockHold.objects.create(sku="BEANS", qty=1, reference="S-3", expires_at=now - timedelta(minutes=1), status="fulfilled")

    def command(*args):
        out = io.StringIO()
        call_command("release_expired_holds", *args, stdout=out)
        return out.getvalue()

    assert "would expire 1 holds" in command("--dry-run")
    assert StockHold.objects.get(pk=past.pk).status == "active"
    assert "expired 1 holds" in command()
    assert dict(StockHold.objects.values_list("pk", "status")) == {past.pk: "expired", live.pk: "active", done.pk: "fulfilled"}
    assert "expired 0 holds" in command()


# -- admin ------------------------------------------------------------------------------


def test_the_admin_edits_levels_through_the_service_and_shows_holds_read_only(admin_client):
    level("BEANS", 5)
    StockHold.objects.create(sku="BEANS", qty=2, reference="S-1", expires_at=timezone.now() + timedelta(minutes=5))
    page = admin_client.get("/admin/omniman_stock/stocklevel/")
    assert page.status_code == 200 and b"BEANS" in page.content
    level_pk = StockLevel.objects.get().pk
    response = admin_client.post(f"/admin/omniman_stock/stocklevel/{level_pk}/change/", {"on_hand": "7", "track": "on"})
    assert response.status_code == 302
    assert on_hand("BEANS") == Decimal(7)
    assert list(StockMovement.objects.values_list("reason", "delta", "actor")) == [("adjust", Decimal(2), "admin")]
    assert admin_client.get("/admin/omniman_stock/stockhold/").status_code == 200
    hold = StockHold.objects.get()
    assert admin_client.post(f"/admin/omniman_stock/stockhold/{hold.pk}/delete/", {"post": "yes"}).status_code == 403
    assert StockHold.objects.filter(pk=hold.pk).exists()


# -- concurrency (PostgreSQL) ------------------------------------------------------------


@pytest.mark.postgres
def test_eight_checks_for_the_last_five_units_hold_five():
    level("BEANS", 5)
    channel = stock_channel()
    sessions = [open_basket(channel, ("BEANS", "1")) for _ in range(8)]
    directives = [Directive.objects.get(topic="stock.hold", payload__session_key=s.session_key) for s in sessions]
    results = run_together(lambda i: engine.dispatch(directives[i].pk), 8)
    assert [value for _kind, value in results] == ["done"] * 8
    assert StockHold.objects.filter(status="active").count() == 5
    assert sum(StockHold.objects.filter(status="active").values_list("qty", flat=True)) == Decimal(5)
    statuses = sorted(fresh(s).data["checks"]["stock"]["status"] for s in sessions)
    assert statuses == ["issues"] * 3 + ["ok"] * 5
    codes = [issue["code"] for s in sessions for issue in fresh(s).data["issues"]]
    assert codes == ["out_of_stock"] * 3


@pytest.mark.postgres
def test_eight_threads_creating_holds_on_the_last_five_units_get_five():
    level("BEANS", 5)
    backend = get_stock_backend()
    expires_at = timezone.now() + timedelta(minutes=15)

    def hold(i):
        with transaction.atomic():
            return backend.create_hold("BEANS", Decimal(1), reference=f"S-{i}", expires_at=expires_at).id

    results = run_together(hold, 8)
    assert sorted(kind for kind, _value in results) == ["error"] * 3 + ["ok"] * 5
    assert {value for kind, value in results if kind == "error"} == {"insufficient_stock"}
    assert StockHold.objects.filter(status="active").count() == 5


def test_abandoning_a_session_releases_its_holds_at_once():
    level("BEANS", 4)
    channel = stock_channel(on_abandon=["stock.release_session"])
    session = open_basket(channel, ("BEANS", "3"))
    run("stock.hold")
    assert active_holds(session.session_key) == [("BEANS", Decimal("3"))]
    other = open_basket(channel, ("BEANS", "2"))
    run("stock.hold")
    assert fresh(other).data["issues"][0]["code"] == "insufficient_stock"
    SessionService.abandon_session(session.session_key, channel.code)
    (release,) = Directive.objects.filter(topic="stock.release_session")
    assert run("stock.release_session").outcomes == [(release.pk, "done")]
    assert active_holds(session.session_key) == []
    run_handler(release)  # twice: nothing more to release, nothing breaks
    # Only the other session's partial hold (the 1 unit that was left) still counts.
    assert active_holds() == [("BEANS", Decimal("1"))]
    assert get_stock_backend().check_availability({"BEANS": 1})["BEANS"] == Decimal("3")


# -- cost: queries per directive do not grow with the number of SKUs ---------------------------

# Ceilings for one run of each handler (the counts are the same for 1 SKU and for 100).
# (They include the transaction statements: BEGIN/SAVEPOINT/RELEASE/COMMIT.)
HOLD_QUERY_CEILING = 22
COMMIT_QUERY_CEILING = 18
RELEASE_QUERY_CEILING = 17


def _run_counting(directive: Directive) -> int:
    with CaptureQueriesContext(connection) as queries:
        run_handler(directive)
    return len(queries)


def _stock_costs(channel, prefix: str, count: int) -> dict[str, int]:
    """Queries of stock.hold (first check, re-check after a change), stock.commit and stock.release
    for a session of ``count`` lines of ``count`` tracked SKUs; every tenth SKU is short (1 of the 2
    asked) and has a catalog alternative in stock."""
    skus = [f"{prefix}-{i:03}" for i in range(count)]
    short = skus[::10]
    for sku in skus:
        level(sku, 1 if sku in short else 10)
    for sku in short:
        level(f"{sku}-ALT", 50)
        Product.objects.create(sku=sku, name=sku.title(), price_q=500).alternatives.add(
            Product.objects.create(sku=f"{sku}-ALT", name=f"{sku.title()} Alt", price_q=600)
        )
    session = open_basket(channel, *[(sku, "2") for sku in skus])
    costs = {"hold": _run_counting(Directive.objects.get(topic="stock.hold", payload__session_key=session.session_key))}

    stored = fresh(session)
    assert stored.data["checks"]["stock"]["status"] == "issues"
    assert [issue["sku"] for issue in stored.data["issues"]] == short
    for issue in stored.data["issues"]:
        assert [action["id"] for action in issue["actions"]] == ["reduce", "remove", f"replace:{issue['sku']}-ALT"]
    assert active_holds(session.session_key) == [(sku, Decimal(1 if sku in short else 2)) for sku in skus]

    # A change (the POS adding to the tab): the check changes only the changed SKU's hold.
    last = stored.lines[-1]["line_id"]
    ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_qty", "line_id": last, "qty": "3"}])
    directive = Directive.objects.get(topic="stock.hold", payload__session_key=session.session_key, payload__rev=2)
    costs["recheck"] = _run_counting(directive)
    wanted = {sku: Decimal(3 if sku == skus[-1] else 2) for sku in skus}
    assert active_holds(session.session_key) == [(sku, Decimal(1) if sku in short else wanted[sku]) for sku in skus]
    assert not StockHold.objects.filter(reference=session.session_key, status="released").exists()  # changed in place

    # Restock, check again (ok), commit, take the stock, cancel, put it back.
    StockLevel.objects.filter(sku__in=short).update(on_hand=10)
    ModifyService.modify_session(session.session_key, channel.code, [{"op": "set_qty", "line_id": last, "qty": "4"}])
    wanted[skus[-1]] = Decimal(4)
    run("stock.hold")
    assert fresh(session).data["checks"]["stock"]["status"] == "ok"
    held = sorted(StockHold.objects.filter(reference=session.session_key, status="active").values_list("pk", flat=True))
    assert len(held) == count
    ref = commit(session, key=f"cost-{prefix}")["order_ref"]
    costs["commit"] = _run_counting(Directive.objects.get(topic="stock.commit", payload__order_ref=ref))
    assert dict(StockLevel.objects.filter(sku__in=skus).values_list("sku", "on_hand")) == {sku: 10 - wanted[sku] for sku in skus}
    assert sorted(OrderEvent.objects.get(order__ref=ref, type=STOCK_COMMITTED).payload["holds"]) == held
    assert StockHold.objects.filter(pk__in=held, status="fulfilled").count() == count

    OrderService.transition(ref, "cancelled", actor="ana")
    costs["release"] = _run_counting(Directive.objects.get(topic="stock.release", payload__order_ref=ref))
    assert dict(StockLevel.objects.filter(sku__in=skus).values_list("sku", "on_hand")) == {sku: Decimal(10) for sku in skus}
    assert OrderEvent.objects.get(order__ref=ref, type=STOCK_RELEASED).payload["restored"] == {
        sku: str(wanted[sku]) for sku in skus
    }
    assert StockMovement.objects.filter(reference=ref).count() == 2 * count
    return costs


def test_the_stock_directives_cost_the_same_queries_for_1_and_100_skus(unhurried_batches):
    # unhurried: one engine pass runs the session's three queued checks of 100 SKUs (a loaded machine passed
    # the 0.1 s batch bound after the first, giving the current revision's check back: no check written).
    channel = stock_channel(
        post_commit_directives=["stock.commit"], order_flow={"on_enter": {"cancelled": ["stock.release"]}}
    )
    one = _stock_costs(channel, "ONE", 1)
    hundred = _stock_costs(channel, "MANY", 100)
    print(f"\nstock queries: 1 SKU {one}, 100 SKUs {hundred}")
    assert hundred == one, (one, hundred)
    assert one["hold"] <= HOLD_QUERY_CEILING and one["recheck"] <= HOLD_QUERY_CEILING, one
    assert one["commit"] <= COMMIT_QUERY_CEILING and one["release"] <= RELEASE_QUERY_CEILING, one


class BasicStockBackend:
    """A backend with only the protocol's original methods (one SKU at a time), as an older ERP backend."""

    basic = (
        "check_availability", "create_hold", "release_hold", "fulfill_hold", "release_holds_for_reference",
        "holds_for_reference", "record_sale", "restore_sale", "release_expired_holds",
    )

    def __init__(self):
        self.calls: list[str] = []
        self._db = DatabaseStockBackend()

    def __getattr__(self, name):
        if name not in self.basic:
            raise AttributeError(name)
        method = getattr(self._db, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)

        return call


def test_a_backend_without_the_bulk_methods_still_runs_the_check_the_commit_and_the_release():
    from django.conf import settings

    level("BEANS", 3)
    level("TEA", 10)
    Product.objects.create(sku="BEANS", name="Beans", price_q=500).alternatives.add(
        Product.objects.create(sku="DECAF", name="Decaf beans", price_q=650)
    )
    channel = stock_channel(post_commit_directives=["stock.commit"], order_flow={"on_enter": {"cancelled": ["stock.release"]}})
    backend = BasicStockBackend()
    assert not hasattr(backend, "replace_holds") and not hasattr(backend, "fulfill_holds_for_reference")
    with override_settings(OMNIMAN={**settings.OMNIMAN, "STOCK_BACKEND": backend}):
        session = open_basket(channel, ("BEANS", "5"), ("TEA", "2"))
        run("stock.hold")
        [issue] = fresh(session).data["issues"]
        assert (issue["sku"], issue["context"]) == ("BEANS", {"requested": "5", "available": "3"})
        assert [action["id"] for action in issue["actions"]] == ["reduce", "remove", "replace:DECAF"]
        assert active_holds(session.session_key) == [("BEANS", Decimal(3)), ("TEA", Decimal(2))]
        assert backend.calls.count("create_hold") == 2

        ResolveService.resolve(session.session_key, "shop", issue_id=issue["id"], action_id="reduce")
        run("stock.hold")
        assert fresh(session).data["checks"]["stock"]["status"] == "ok"
        holds = sorted(StockHold.objects.filter(status="active").values_list("pk", flat=True))
        ref = commit(session)["order_ref"]
        run("stock.commit")
        assert sorted(OrderEvent.objects.get(order__ref=ref, type=STOCK_COMMITTED).payload["holds"]) == holds
        assert (on_hand("BEANS"), on_hand("TEA")) == (Decimal(0), Decimal(8))
        assert "fulfill_hold" in backend.calls
        OrderService.transition(ref, "cancelled")
        run("stock.release")
        assert (on_hand("BEANS"), on_hand("TEA")) == (Decimal(3), Decimal(10))


def test_a_catalog_backend_of_its_own_is_asked_for_alternatives_sku_by_sku():
    from django.conf import settings

    from omniman.contrib.catalog.backends import ModelCatalogBackend
    from omniman.contrib.catalog.protocols import CatalogItem

    class ShopCatalog(ModelCatalogBackend):
        asked: list[str] = []

        def alternatives(self, sku):
            self.asked.append(sku)
            return [CatalogItem(sku=f"{sku}-B", name=f"{sku} B", category="", price_q=700)]

    level("BEANS", 0)
    level("TEA", 1)
    level("BEANS-B", 5)
    level("TEA-B", 5)
    catalog = ShopCatalog()
    with override_settings(OMNIMAN={**settings.OMNIMAN, "CATALOG_BACKEND": catalog}):
        session = open_basket(stock_channel(), ("BEANS", "2"), ("TEA", "2"), ("BEANS", "1"))
        run("stock.hold")
    assert sorted(catalog.asked) == ["BEANS", "TEA"]  # once per short SKU
    issues = fresh(session).data["issues"]
    assert [(issue["sku"], issue["actions"][-1]["id"]) for issue in issues] == [
        ("BEANS", "replace:BEANS-B"), ("TEA", "replace:TEA-B"), ("BEANS", "replace:BEANS-B")
    ]


# -- the check in the modify's transaction (engine.dispatch_before_commit) ------------------------

DISPATCH_HOLD = {"DISPATCH_ON_COMMIT": ["stock.hold"]}


def _set_qty(session, qty, **kwargs):
    return ModifyService.modify_session(
        session.session_key, session.channel.code, [{"op": "set_qty", "line_id": session.lines[0]["line_id"], "qty": qty}], **kwargs
    )


def _checked_basket(*items):
    """A basket whose first check (rev 1) ran: rev 1, its holds active, the check ok."""
    level("BEANS", 5)
    session = open_basket(stock_channel(), *items)
    run("stock.hold")
    return fresh(session)


def test_a_modify_runs_its_stock_check_in_its_transaction_and_answers_with_it():
    session = _checked_basket(("BEANS", "1"))
    with override_settings(OMNIMAN=DISPATCH_HOLD), CaptureQueriesContext(connection) as queries:
        changed = _set_qty(session, "3")
    # The object returned carries the check: no read after the change (the API's answer, the POS's tap).
    assert changed.rev == 2 and changed.data["checks"]["stock"]["rev"] == 2
    assert changed.data["checks"]["stock"]["status"] == "ok"
    assert fresh(session).data == changed.data
    directive = Directive.objects.get(topic="stock.hold", payload__rev=2)
    assert (directive.status, directive.attempts, directive.last_error) == ("done", 1, "")
    assert directive.started_at is not None
    assert active_holds() == [("BEANS", Decimal(3))]
    sql = [query["sql"] for query in queries.captured_queries]
    session_table = Session._meta.db_table
    assert sum(q.startswith("SELECT") and f'FROM "{session_table}"' in q for q in sql) == 1, sql  # locked once, never re-read
    assert sum(q.upper() == "COMMIT" for q in sql) == 1
    assert not any(q.startswith("RELEASE") for q in sql)  # no savepoint pair that protects nothing
    # BEGIN, lock, sold-out list, UPDATE session, INSERT directive (already done: it runs before the commit), its
    # savepoint, levels, holds of others and own holds (one read), UPDATE hold, UPDATE session (the check), COMMIT.
    # The same on every database: the directive's run writes nothing of its own.
    assert len(sql) == 11, sql


def test_a_failing_inline_check_leaves_the_change_committed_and_its_directive_queued(monkeypatch):
    session = _checked_basket(("BEANS", "1"))
    [kept] = StockHold.objects.filter(status="active")

    def unavailable(self, *args, **kwargs):
        StockHold.objects.update(qty=Decimal(4))  # a write of the check's, undone with it
        raise RuntimeError("stock service down")

    monkeypatch.setattr(DatabaseStockBackend, "replace_holds", unavailable)
    with override_settings(OMNIMAN=DISPATCH_HOLD):
        changed = _set_qty(session, "2")
    # The change committed; the answer shows the check pending, as the row is.
    stored = fresh(session)
    assert stored.rev == changed.rev == 2 and stored.lines[0]["qty"] == "2"
    assert changed.data["checks"] == stored.data["checks"] == {}
    directive = Directive.objects.get(topic="stock.hold", payload__rev=2)
    assert (directive.status, directive.attempts) == ("queued", 1)
    assert directive.last_error.startswith("RuntimeError: stock service down")
    assert directive.available_at > timezone.now()
    assert list(StockHold.objects.values_list("pk", "qty", "status")) == [(kept.pk, Decimal(1), "active")]
    # The workers take it from there.
    monkeypatch.undo()
    Directive.objects.filter(pk=directive.pk).update(available_at=timezone.now())
    run("stock.hold")
    assert fresh(session).data["checks"]["stock"]["rev"] == 2
    assert active_holds() == [("BEANS", Decimal(2))]


def test_a_refused_modify_enqueues_nothing_and_checks_nothing():
    session = _checked_basket(("BEANS", "1"))
    before = (fresh(session).data, list(StockHold.objects.values_list("pk", "qty", "status", "updated_at")))
    with override_settings(OMNIMAN=DISPATCH_HOLD), pytest.raises(OmnimanError) as caught:
        _set_qty(session, "2", expected_rev=0)
    assert caught.value.code == "stale_rev"
    assert fresh(session).rev == 1
    assert (fresh(session).data, list(StockHold.objects.values_list("pk", "qty", "status", "updated_at"))) == before
    assert list(Directive.objects.values_list("payload__rev", "status")) == [(1, "done")]


def test_a_stock_backend_with_outside_effects_is_checked_after_the_commit(monkeypatch):
    from omniman.contrib.stock import handlers

    session = _checked_basket(("BEANS", "1"))
    monkeypatch.setattr(handlers._StockDirectiveHandler, "database_only", False)  # as an ERP backend says
    seen = []
    monkeypatch.setattr(
        handlers.StockHoldHandler, "handle",
        lambda self, *, message, ctx, _handle=handlers.StockHoldHandler.handle: (seen.append(connection.in_atomic_block), _handle(self, message=message, ctx=ctx)),
    )
    with override_settings(OMNIMAN=DISPATCH_HOLD):
        changed = _set_qty(session, "2")
    assert changed.data["checks"] == {}  # not in the change's transaction…
    assert fresh(session).data["checks"]["stock"]["rev"] == 2  # …but right after its commit
    assert Directive.objects.get(topic="stock.hold", payload__rev=2).status == "done"
    assert seen == [True]  # (in the dispatch's own transaction)
    assert active_holds() == [("BEANS", Decimal(2))]


def test_a_modify_inside_dispatch_held_leaves_its_check_queued():
    session = _checked_basket(("BEANS", "1"))
    with override_settings(OMNIMAN=DISPATCH_HOLD), engine.dispatch_held():
        changed = _set_qty(session, "2")
    assert changed.data["checks"] == fresh(session).data["checks"] == {}
    assert Directive.objects.get(topic="stock.hold", payload__rev=2).status == "queued"
    assert active_holds() == [("BEANS", Decimal(1))]


@pytest.mark.postgres
def test_an_inline_check_and_a_workers_check_of_one_session_wait_for_each_other_without_deadlock(monkeypatch):
    """Lock order: the session, then the levels, then the holds — on both paths.

    A worker takes the queued check of rev 1 while a modify (rev 2) holds the
    session locked and is about to run its own check in its transaction. The
    modify waits until the worker is blocked on a lock, then locks the levels.
    Had the worker locked the levels first (and the session only to write its
    check), the two would deadlock; it waits for the session instead, and finds
    it moved on.
    """
    from omniman.contrib.stock import backends

    level("BEANS", 5)
    session = open_basket(stock_channel(), ("BEANS", "1"))  # rev 1: its check queued, for the worker
    old = Directive.objects.get(topic="stock.hold", payload__rev=1)
    modify_holds_session = threading.Event()
    lock_levels = backends._lock_levels
    inline = threading.local()

    def lock_levels_when_the_worker_waits(skus, **kwargs):
        if getattr(inline, "modify", False):
            modify_holds_session.set()
            _wait_for_a_lock_wait()
        return lock_levels(skus, **kwargs)

    monkeypatch.setattr(backends, "_lock_levels", lock_levels_when_the_worker_waits)

    def work(index):
        if index == 0:
            inline.modify = True
            with override_settings(OMNIMAN=DISPATCH_HOLD):
                return _set_qty(session, "2").data["checks"]["stock"]["rev"]
        assert modify_holds_session.wait(timeout=20)
        return str(engine.process(topics=["stock.hold"]))

    results = run_together(work, 2)
    assert results[0] == ("ok", 2)
    assert results[1][0] == "ok" and "done 1" in results[1][1]
    old.refresh_from_db()
    assert (old.status, old.attempts, old.last_error) == ("done", 1, "")  # it found the session moved on
    new = Directive.objects.get(topic="stock.hold", payload__rev=2)
    assert (new.status, new.attempts, new.last_error) == ("done", 1, "")
    assert fresh(session).data["checks"]["stock"]["rev"] == 2
    assert active_holds() == [("BEANS", Decimal(2))]


def _wait_for_a_lock_wait(timeout: float = 10.0) -> None:
    """Until another backend of this database waits on a lock (or ``timeout``)."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.02)


@pytest.mark.postgres
def test_the_live_holds_read_uses_the_active_holds_index_in_a_prepared_generic_plan():
    """A prepared statement's generic plan cannot match a partial index to a parameter: the status must be a literal."""
    from omniman.contrib.stock.backends import _held

    if not connection.settings_dict["OPTIONS"].get("server_side_binding"):
        pytest.skip("prepared statements are off (DATABASE_PREPARED_STATEMENTS=0)")
    level("BEANS", 10**6)
    expires_at = timezone.now() + timedelta(minutes=15)
    StockHold.objects.bulk_create(
        StockHold(sku="BEANS", qty=Decimal(1), requested=Decimal(1), reference=f"S-{i}", status="fulfilled", expires_at=expires_at)
        for i in range(3000)
    )
    StockHold.objects.create(sku="BEANS", qty=Decimal(2), requested=Decimal(2), reference="LIVE", expires_at=expires_at)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE omniman_stock_stockhold")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    for _ in range(3):  # psycopg prepares a statement from its second run
        assert _held(["BEANS"], exclude_reference="MINE") == {"BEANS": Decimal(2)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_prepared_statements WHERE statement LIKE %s AND statement LIKE %s",
            ["%SUM(%", "%omniman_stock_stockhold%"],
        )
        [(name,)] = cursor.fetchall()
        cursor.execute(f"EXPLAIN EXECUTE {name}('BEANS', now(), 'MINE')")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan" not in plan and "Index Scan using stock_hold_active_" in plan, plan  # an index of active holds
