"""The manager review (django-unfold admin): who may enter, and every action it offers.

Each action goes through the kernel (OrderService, events, SessionService, the
directive engine's claim); the tests assert what changed *and* that a refused
or stale action changed nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from omniman import engine
from omniman.models import Channel, Directive, IdempotencyKey, Order, OrderEvent, OrderItem, Session, WorkerHeartbeat
from omniman.services import BillService, ModifyService, OrderService, PaymentService, SessionService, SessionWriteService, day_totals
from tests.factories import commit, create_order_at, create_session_at, make_channel
from tests.testapp.handlers import AlwaysFails
from tests.testapp.models import Execution

pytestmark = pytest.mark.django_db

BILLS = "/admin/omniman/bill/"
ORDERS = "/admin/omniman/order/"
SESSIONS = "/admin/omniman/session/"
DIRECTIVES = "/admin/omniman/directive/"
CHANNELS = "/admin/omniman/channel/"


def make_user(username: str, *, staff: bool = True, groups: tuple[str, ...] = (), superuser: bool = False):
    user = get_user_model().objects.create_user(
        username=username, password="pw-" + username, is_staff=staff, is_superuser=superuser
    )
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


@pytest.fixture
def manager(client):
    """A staff user in the ``manager`` group (not a superuser)."""
    client.force_login(make_user("manager", groups=("manager",)))
    return client


def texts(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def order_page(order: Order) -> str:
    return f"{ORDERS}{order.pk}/change/"


# -- who may enter ---------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_login(client):
    order = create_order_at("new")
    for url in ("/admin/", ORDERS, order_page(order), DIRECTIVES):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    response = client.post(f"{ORDERS}{order.pk}/transition/", {"status": "confirmed", "expected_status": "new"})
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert Order.objects.get(pk=order.pk).status == "new"


@pytest.mark.parametrize(
    "username, staff, groups",
    [("staff", True, ()), ("pos", False, ("pos",)), ("kitchen", True, ("kitchen",)), ("manager-not-staff", False, ("manager",))],
)
def test_non_managers_are_refused(client, username, staff, groups):
    order = create_order_at("new")
    client.force_login(make_user(username, staff=staff, groups=groups))
    for url in ("/admin/", ORDERS, order_page(order), SESSIONS, DIRECTIVES, CHANNELS, "/admin/omniman_catalog/product/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/"), url
    client.post(f"{ORDERS}{order.pk}/transition/", {"status": "confirmed", "expected_status": "new"})
    client.post(f"{ORDERS}{order.pk}/note/", {"text": "sneaky"})
    assert Order.objects.get(pk=order.pk).status == "new"
    assert not OrderEvent.objects.filter(type="note").exists()


def test_the_admin_login_refuses_staff_without_the_manager_role(client):
    make_user("staff")
    response = client.post("/admin/login/", {"username": "staff", "password": "pw-staff", "next": "/admin/"})
    assert response.status_code == 200
    assert "needs the manager role" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_admin_site_is_the_manager_site_and_the_check_refuses_any_other(monkeypatch):
    from django.contrib import admin
    from django.contrib.admin import AdminSite

    from omniman.admin.checks import check_admin_site
    from omniman.admin.site import ManagerAdminSite, ManagerLoginForm

    assert isinstance(admin.site, ManagerAdminSite) and admin.site.login_form is ManagerLoginForm
    assert check_admin_site() == []
    monkeypatch.setattr(admin, "site", AdminSite())
    assert [e.id for e in check_admin_site()] == ["omniman.E010"]
    bare = ManagerAdminSite()
    monkeypatch.setattr(admin, "site", bare)
    assert [e.id for e in check_admin_site()] == ["omniman.E011"]


def test_the_admin_login_lets_a_manager_in(client):
    make_user("boss", groups=("manager",))
    response = client.post("/admin/login/", {"username": "boss", "password": "pw-boss", "next": "/admin/"})
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_a_manager_group_user_sees_every_screen(manager):
    create_order_at("new")
    for url in ("/admin/", ORDERS, SESSIONS, DIRECTIVES, CHANNELS, "/admin/omniman/idempotencykey/"):
        assert manager.get(url).status_code == 200, url


@pytest.mark.contrib("omniman.contrib.catalog", "omniman.contrib.stock")
def test_a_manager_group_user_sees_the_contrib_apps_screens(manager):
    for url in ("/admin/omniman_catalog/product/", "/admin/omniman_stock/stocklevel/"):
        assert manager.get(url).status_code == 200, url


def test_a_superuser_counts_as_a_manager(admin_client):
    order = create_order_at("new")
    assert admin_client.get(order_page(order)).status_code == 200
    admin_client.post(f"{ORDERS}{order.pk}/transition/", {"status": "confirmed", "expected_status": "new"})
    assert Order.objects.get(pk=order.pk).status == "confirmed"


# -- orders ----------------------------------------------------------------------------------


def _customer_order(channel, phone: str, name: str) -> Order:
    session = create_session_at(channel, data={"customer": {"name": name, "phone": phone}})
    return Order.objects.get(ref=commit(session)["order_ref"])


def test_order_list_filters_by_channel_status_and_date(manager):
    counter, web = make_channel("counter"), make_channel("web")
    new = create_order_at("new", counter)
    confirmed = create_order_at("confirmed", counter)
    other = create_order_at("new", web)
    body = manager.get(f"{ORDERS}?channel__id__exact={counter.pk}").content.decode()
    assert new.ref in body and confirmed.ref in body and other.ref not in body
    body = manager.get(f"{ORDERS}?status=confirmed").content.decode()
    assert confirmed.ref in body and new.ref not in body and other.ref not in body
    today = timezone.localdate()
    body = manager.get(f"{ORDERS}?created_at_from={today}&created_at_to={today}").content.decode()
    assert new.ref in body and other.ref in body
    yesterday = today - timedelta(days=1)
    body = manager.get(f"{ORDERS}?created_at_to={yesterday}").content.decode()
    assert new.ref not in body and other.ref not in body


def test_order_list_searches_ref_handle_external_ref_and_customer_phone(manager):
    channel = make_channel("tables")
    tab = create_session_at(channel, handle_type="table", handle_ref="terrace-9")
    at_table = Order.objects.get(ref=commit(tab)["order_ref"])
    bruno = _customer_order(channel, "+55 11 91234-5678", "Bruno")
    carla = _customer_order(channel, "+55 21 95555-0000", "Carla")
    marketplace = SessionService.open_session(
        channel.code, data={"external_ref": "MKT-1042"},
        items=[{"sku": "X", "qty": 1, "unit_price_q": 500}],
    )
    external = Order.objects.get(ref=commit(marketplace)["order_ref"])
    assert external.external_ref == "MKT-1042"

    def found(term):
        body = manager.get(ORDERS, {"q": term}).content.decode()
        return {o.ref for o in (at_table, bruno, carla, external) if o.ref in body}

    assert found(bruno.ref) == {bruno.ref}
    assert found("terrace-9") == {at_table.ref}
    assert found("MKT-1042") == {external.ref}
    assert found("91234") == {bruno.ref}
    assert found("carla") == {carla.ref}


def test_order_list_shows_status_badges_and_totals_in_currency(manager):
    order = create_order_at("cancelled", make_channel(config={"currency": "EUR"}), lines=2)
    body = manager.get(ORDERS).content.decode()
    assert "€20.00" in body
    assert "bg-red-100" in body and "Cancelled" in body  # the danger badge


def test_order_detail_shows_items_timeline_snapshot_and_the_next_statuses(manager):
    order = create_order_at("confirmed", lines=2)
    body = manager.get(order_page(order)).content.decode()
    assert "SKU-0" in body and "SKU-1" in body and "R$10.00" in body  # items, prices in currency
    assert "status_changed" in body and "new → confirmed" in body  # the timeline
    assert "&quot;_v&quot;: 1" in body  # the snapshot, readable
    assert 'name="expected_status" value="confirmed"' in body
    for status in ("processing", "ready", "cancelled"):
        assert f'name="status" value="{status}"' in body
    assert 'name="status" value="completed"' not in body
    assert 'name="_save"' not in body  # nothing to save: the order is read-only


def test_a_final_order_offers_no_transition(manager):
    order = create_order_at("completed")
    body = manager.get(order_page(order)).content.decode()
    assert 'name="status"' not in body and "final status" in body


def test_a_transition_goes_through_the_service_with_the_expected_status(manager):
    order = create_order_at("new")
    response = manager.post(
        f"{ORDERS}{order.pk}/transition/", {"status": "confirmed", "expected_status": "new", "reason": "paid at the till"}
    )
    assert response.status_code == 302 and response["Location"] == order_page(order)
    order.refresh_from_db()
    assert order.status == "confirmed" and order.confirmed_at is not None
    event = order.events.get(type="status_changed")
    assert event.actor == "user:manager"
    assert event.payload == {"from": "new", "to": "confirmed", "reason": "paid at the till"}
    assert any("New → Confirmed" in text for text in texts(response))


def test_a_stale_transition_changes_nothing_and_says_so(manager):
    order = create_order_at("new")
    page = manager.get(order_page(order)).content.decode()
    assert 'name="expected_status" value="new"' in page
    OrderService.transition(order.ref, "confirmed", actor="kitchen")  # another screen, meanwhile
    events_before = OrderEvent.objects.count()
    response = manager.post(f"{ORDERS}{order.pk}/transition/", {"status": "cancelled", "expected_status": "new"})
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == "confirmed"
    assert OrderEvent.objects.count() == events_before
    assert any("changed meanwhile" in text for text in texts(response))
    followed = manager.get(response["Location"])
    assert "changed meanwhile" in followed.content.decode()


def test_a_transition_the_flow_does_not_allow_changes_nothing(manager):
    order = create_order_at("new")
    response = manager.post(f"{ORDERS}{order.pk}/transition/", {"status": "completed", "expected_status": "new"})
    assert response.status_code == 302
    assert Order.objects.get(pk=order.pk).status == "new"
    assert any("cannot move" in text for text in texts(response))


def test_a_transition_needs_post_and_the_expected_status(manager):
    order = create_order_at("new")
    assert manager.get(f"{ORDERS}{order.pk}/transition/").status_code == 405
    response = manager.post(f"{ORDERS}{order.pk}/transition/", {"status": "confirmed"})
    assert Order.objects.get(pk=order.pk).status == "new"
    assert any("nothing was changed" in text for text in texts(response))
    assert manager.post(f"{ORDERS}999999/transition/", {"status": "confirmed", "expected_status": "new"}).status_code == 404


def test_a_note_is_an_order_event(manager):
    order = create_order_at("new")
    response = manager.post(f"{ORDERS}{order.pk}/note/", {"text": "  Customer called: no sesame.  "})
    assert response.status_code == 302
    note = order.events.get(type="note")
    assert note.actor == "user:manager" and note.payload == {"text": "Customer called: no sesame."}
    assert "Customer called: no sesame." in manager.get(order_page(order)).content.decode()
    manager.post(f"{ORDERS}{order.pk}/note/", {"text": "   "})
    manager.post(f"{ORDERS}{order.pk}/note/", {"text": "x" * 2001})
    assert order.events.filter(type="note").count() == 1


def test_no_admin_form_writes_an_order(manager):
    order = create_order_at("new", lines=2)
    before = (order.status, order.total_q, order.snapshot, list(order.items.values_list("sku", "qty", "line_total_q")))
    response = manager.post(
        order_page(order),
        {"status": "completed", "total_q": "1", "snapshot": "{}", "items-TOTAL_FORMS": "0", "items-INITIAL_FORMS": "2"},
    )
    assert response.status_code == 403
    assert manager.get(f"{ORDERS}add/").status_code == 403
    assert manager.post(f"{ORDERS}{order.pk}/delete/", {"post": "yes"}).status_code == 403
    order = Order.objects.get(pk=order.pk)
    assert (order.status, order.total_q, order.snapshot, list(order.items.values_list("sku", "qty", "line_total_q"))) == before
    assert OrderItem.objects.filter(order=order).count() == 2


# -- sessions --------------------------------------------------------------------------------

STOCK_ISSUE = {
    "id": "stock-1",
    "source": "stock",
    "code": "insufficient_stock",
    "message": "Only 1 Burger left",
    "severity": "blocking",
    "line_id": None,
    "sku": "SKU-0",
    "context": {"available": "1"},
    "actions": [{"id": "reduce", "label": "Reduce to 1", "ops": []}],
}


def _checked_session() -> Session:
    channel = make_channel(
        config={
            "required_checks_on_commit": ["stock", "payment"],
            "checks": {"stock": {"directive_topic": "test.record", "label": "Stock"}},
            "on_abandon": ["test.record"],
        }
    )
    session = create_session_at(channel, lines=1)
    issue = {**STOCK_ISSUE, "line_id": session.items[0]["line_id"]}
    assert SessionWriteService.write_check(
        session.session_key, channel.code, check_code="stock", expected_rev=session.rev,
        result={"held": []}, status="issues", issues=[issue],
    )
    return Session.objects.get(pk=session.pk)


def test_session_list_filters_and_shows_checks_and_issues(manager):
    session = _checked_session()
    abandoned = create_session_at(make_channel())
    SessionService.abandon_session(abandoned.session_key, abandoned.channel.code)
    body = manager.get(f"{SESSIONS}?state__exact=open").content.decode()
    assert session.session_key in body and abandoned.session_key not in body
    assert "stock issues" in body and "payment missing" in body  # Session.check_states()
    assert "1 blocking" in body
    body = manager.get(f"{SESSIONS}?channel__id__exact={abandoned.channel_id}").content.decode()
    assert abandoned.session_key in body and session.session_key not in body


def test_session_detail_shows_items_checks_and_issues(manager):
    session = _checked_session()
    body = manager.get(f"{SESSIONS}{session.pk}/change/").content.decode()
    assert "SKU-0" in body and "R$10.00" in body
    assert "Stock (stock)" in body and "Payment (payment)" in body and "missing" in body
    assert "insufficient_stock" in body and "Only 1 Burger left" in body and "Reduce to 1" in body and "blocking" in body
    assert 'action="/admin/omniman/session/%d/abandon/"' % session.pk in body


def test_a_stale_or_expired_check_says_so(manager):
    session = _checked_session()
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    assert SessionWriteService.write_check(
        session.session_key, session.channel.code, check_code="payment", expected_rev=session.rev,
        result={"expires_at": past},
    )
    body = manager.get(SESSIONS).content.decode()
    assert "payment expired" in body and "stock issues" in body
    ModifyService.modify_session(session.session_key, session.channel.code, [{"op": "set_data", "path": "x", "value": 1}])
    body = manager.get(SESSIONS).content.decode()
    assert "stock missing" in body  # a modification clears the checks of the old rev


def test_abandon_goes_through_the_service(manager):
    session = _checked_session()
    response = manager.post(f"{SESSIONS}{session.pk}/abandon/")
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.state == "abandoned"
    # The service's on_abandon hook ran: proof the service, not a raw save, did it.
    assert Directive.objects.filter(topic="test.record", payload__session_key=session.session_key).exists()
    assert LogEntry.objects.filter(object_id=str(session.pk)).exists()
    assert any("abandoned" in text for text in texts(response))


def test_a_committed_session_cannot_be_abandoned(manager):
    session = create_session_at(make_channel())
    commit(session)
    response = manager.post(f"{SESSIONS}{session.pk}/abandon/")
    assert Session.objects.get(pk=session.pk).state == "committed"
    assert any("was not abandoned" in text for text in texts(response))


def test_bulk_abandon_leaves_sessions_that_are_not_open(manager):
    first, second = create_session_at(make_channel()), create_session_at(make_channel())
    done = create_session_at(make_channel())
    commit(done)
    response = manager.post(SESSIONS, {"action": "abandon_selected", "_selected_action": [first.pk, second.pk, done.pk]})
    assert response.status_code == 302
    states = dict(Session.objects.values_list("pk", "state"))
    assert (states[first.pk], states[second.pk], states[done.pk]) == ("abandoned", "abandoned", "committed")
    assert any("2 sessions abandoned" in text and "1 was not open" in text for text in texts(response))


def test_no_admin_form_writes_a_session(manager):
    session = create_session_at(make_channel(), lines=2)
    before = (session.rev, session.lines, session.total_q, session.state)
    response = manager.post(f"{SESSIONS}{session.pk}/change/", {"rev": "99", "state": "committed", "total_q": "1"})
    assert response.status_code == 403
    fresh = Session.objects.get(pk=session.pk)
    assert (fresh.rev, fresh.lines, fresh.total_q, fresh.state) == before


# -- directives ------------------------------------------------------------------------------


def test_directive_list_filters_and_links_what_it_concerns(manager):
    order = create_order_at("new")
    session = create_session_at(make_channel())
    for_order = Directive.objects.enqueue("test.record", {"order_ref": order.ref})
    for_session = Directive.objects.enqueue("test.fail", {"session_key": session.session_key})
    Directive.objects.filter(pk=for_session.pk).update(status="failed", last_error="ConnectionError: gateway unreachable")
    body = manager.get(DIRECTIVES).content.decode()
    assert f'href="{order_page(order)}"' in body
    assert f'href="{SESSIONS}{session.pk}/change/"' in body
    assert "ConnectionError: gateway unreachable" in body
    body = manager.get(f"{DIRECTIVES}?status__exact=failed").content.decode()
    assert f"{DIRECTIVES}{for_session.pk}/change/" in body and f"{DIRECTIVES}{for_order.pk}/change/" not in body
    body = manager.get(f"{DIRECTIVES}?topic=test.record").content.decode()
    assert f"{DIRECTIVES}{for_order.pk}/change/" in body and f"{DIRECTIVES}{for_session.pk}/change/" not in body
    body = manager.get(DIRECTIVES, {"q": order.ref}).content.decode()
    assert f"{DIRECTIVES}{for_order.pk}/change/" in body and f"{DIRECTIVES}{for_session.pk}/change/" not in body


def test_directive_detail_shows_payload_and_last_error(manager):
    directive = Directive.objects.enqueue("test.fail", {"order_ref": "ORD-GONE", "amount_q": 1250})
    Directive.objects.filter(pk=directive.pk).update(status="failed", last_error="ConnectionError: down\n\nTraceback …")
    body = manager.get(f"{DIRECTIVES}{directive.pk}/change/").content.decode()
    assert "&quot;amount_q&quot;: 1250" in body and "Traceback …" in body
    assert "Order ORD-GONE" in body  # the order does not exist: named, not linked
    assert f'action="{DIRECTIVES}{directive.pk}/retry/"' in body


def test_run_now_runs_one_directive_through_the_engine(manager):
    directive = Directive.objects.enqueue("test.record", {}, available_at=timezone.now() + timedelta(minutes=5))
    body = manager.get(f"{DIRECTIVES}{directive.pk}/change/").content.decode()
    assert f'action="{DIRECTIVES}{directive.pk}/run/"' in body
    response = manager.post(f"{DIRECTIVES}{directive.pk}/run/")
    assert response.status_code == 302
    directive.refresh_from_db()
    assert directive.status == "done" and directive.attempts == 1
    assert list(Execution.objects.values_list("directive_id", "attempt")) == [(directive.pk, 1)]
    assert any("1 done" in text for text in texts(response))


def test_run_now_never_runs_a_directive_a_worker_holds(manager):
    directive = Directive.objects.enqueue("test.record", {})
    assert engine.claim(ids=[directive.pk])  # a worker has it
    response = manager.post(f"{DIRECTIVES}{directive.pk}/run/")
    assert not Execution.objects.exists()
    assert Directive.objects.get(pk=directive.pk).attempts == 1
    assert any("not run" in text for text in texts(response))


def test_run_now_refuses_a_topic_without_handler(manager):
    directive = Directive.objects.enqueue("nobody.handles", {})
    response = manager.post(f"{DIRECTIVES}{directive.pk}/run/")
    assert Directive.objects.get(pk=directive.pk).status == "queued"
    assert any("no handler" in text for text in texts(response))


def test_run_now_in_bulk(manager):
    due = Directive.objects.enqueue("test.record", {})
    waiting = Directive.objects.enqueue("test.record", {}, available_at=timezone.now() + timedelta(hours=1))
    done = Directive.objects.enqueue("test.record", {})
    Directive.objects.filter(pk=done.pk).update(status="done")
    response = manager.post(DIRECTIVES, {"action": "run_selected", "_selected_action": [due.pk, waiting.pk, done.pk]})
    assert response.status_code == 302
    statuses = dict(Directive.objects.values_list("pk", "status"))
    assert statuses[due.pk] == statuses[waiting.pk] == "done"
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted([due.pk, waiting.pk])
    assert any("ran 2: 2 done" in text and "1 not run" in text for text in texts(response))


def test_retry_failed_runs_it_once_more(manager):
    AlwaysFails.runs.clear()
    still_broken = Directive.objects.enqueue("test.fail", {})
    fixed = Directive.objects.enqueue("test.record", {})
    Directive.objects.filter(pk__in=[still_broken.pk, fixed.pk]).update(status="failed", attempts=5, last_error="old")
    manager.post(f"{DIRECTIVES}{fixed.pk}/retry/")
    fixed.refresh_from_db()
    assert (fixed.status, fixed.attempts, fixed.last_error) == ("done", 6, "")
    manager.post(f"{DIRECTIVES}{still_broken.pk}/retry/")
    still_broken.refresh_from_db()
    assert (still_broken.status, still_broken.attempts) == ("failed", 6)
    assert "gateway unreachable (attempt 6)" in still_broken.last_error
    assert AlwaysFails.runs == [(still_broken.pk, 6)]


def test_retry_in_bulk_touches_only_failed_directives(manager):
    failed = [Directive.objects.enqueue("test.record", {}) for _ in range(2)]
    Directive.objects.filter(pk__in=[d.pk for d in failed]).update(status="failed", attempts=5)
    queued = Directive.objects.enqueue("test.record", {})
    response = manager.post(DIRECTIVES, {"action": "retry_selected", "_selected_action": [*(d.pk for d in failed), queued.pk]})
    assert response.status_code == 302
    statuses = dict(Directive.objects.values_list("pk", "status"))
    assert [statuses[d.pk] for d in failed] == ["done", "done"] and statuses[queued.pk] == "queued"
    assert sorted(Execution.objects.values_list("directive_id", flat=True)) == sorted(d.pk for d in failed)
    assert any("2 put back in the queue" in text for text in texts(response))


def test_retry_leaves_a_directive_that_is_not_failed(manager):
    directive = Directive.objects.enqueue("test.record", {})
    Directive.objects.filter(pk=directive.pk).update(status="done")
    manager.post(f"{DIRECTIVES}{directive.pk}/retry/")
    assert Directive.objects.get(pk=directive.pk).status == "done" and not Execution.objects.exists()


def test_no_admin_form_writes_a_directive(manager):
    directive = Directive.objects.enqueue("test.record", {"a": 1})
    response = manager.post(f"{DIRECTIVES}{directive.pk}/change/", {"status": "done", "payload": "{}"})
    assert response.status_code == 403
    assert manager.post(f"{DIRECTIVES}{directive.pk}/delete/", {"post": "yes"}).status_code == 403
    fresh = Directive.objects.get(pk=directive.pk)
    assert (fresh.status, fresh.payload) == ("queued", {"a": 1})


# -- channels --------------------------------------------------------------------------------


def _channel_form(config, **fields) -> dict:
    return {
        "code": "web", "name": "Web", "pricing_policy": "internal", "edit_policy": "open",
        "config": json.dumps(config), "is_active": "on", "display_order": 0, **fields,
    }


@pytest.mark.parametrize(
    "config, problem",
    [
        ({"order_flow": {"transitions": {"new": ["confirmd"], "confirmed": ["completed"]}}}, "order_flow.transitions.new: unknown status &#x27;confirmd&#x27;"),
        ({"order_flow": {"transitions": {"new": ["done"], "done": ["new"]}, "terminal_statuses": ["done"]}}, "terminal status &#x27;done&#x27; has outgoing transitions"),
        ({"required_checks_on_commit": ["stock"]}, "required check &#x27;stock&#x27;: no handler is registered for its directive topic &#x27;check.stock&#x27;"),
        ({"required_checks_on_commit": ["stock"], "checks": {"stock": {"directive_topic": "stock.hodl"}}}, "&#x27;stock.hodl&#x27;"),
        ({"post_commit_directives": ["test.record", "kitchen.print"]}, "post_commit_directives: no handler is registered for the directive topic &#x27;kitchen.print&#x27;"),
        ({"on_abandon": ["nope.release"]}, "on_abandon: no handler is registered for the directive topic &#x27;nope.release&#x27;"),
        ({"order_flow": {"on_enter": {"cancelled": ["payment.refnud"]}}}, "order_flow.on_enter.cancelled: no handler is registered for the directive topic &#x27;payment.refnud&#x27;"),
        ({"checks": ["stock"]}, "checks must be an object"),
    ],
)
def test_channel_config_errors_name_the_problem(manager, config, problem):
    response = manager.post(f"{CHANNELS}add/", _channel_form(config))
    assert response.status_code == 200
    assert problem in response.content.decode()
    assert not Channel.objects.filter(code="web").exists()


def test_a_valid_channel_config_is_saved(manager):
    config = {
        "required_checks_on_commit": ["stock"],
        "checks": {"stock": {"directive_topic": "test.record", "label": "Stock"}},
        "post_commit_directives": ["test.record"],
        "order_flow": {"auto_transitions": {"on_create": "confirmed"}, "on_enter": {"cancelled": ["test.record"]}},
    }
    response = manager.post(f"{CHANNELS}add/", _channel_form(config))
    assert response.status_code == 302
    assert Channel.objects.get(code="web").config == config


def test_editing_a_channel_validates_and_keeps_its_code(manager):
    channel = make_channel("counter", config={"currency": "BRL"})
    page = manager.get(f"{CHANNELS}{channel.pk}/change/").content.decode()
    assert "{\n  &quot;currency&quot;: &quot;BRL&quot;\n}" in page  # indented, readable JSON
    response = manager.post(f"{CHANNELS}{channel.pk}/change/", _channel_form({"post_commit_directives": ["nope"]}, code="other"))
    assert response.status_code == 200 and "&#x27;nope&#x27;" in response.content.decode()
    response = manager.post(f"{CHANNELS}{channel.pk}/change/", _channel_form({"currency": "EUR"}, code="other", name="Counter 2"))
    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.code, channel.name, channel.config) == ("counter", "Counter 2", {"currency": "EUR"})
    assert manager.post(f"{CHANNELS}{channel.pk}/delete/", {"post": "yes"}).status_code == 403


def test_invalid_json_is_a_form_error(manager):
    response = manager.post(f"{CHANNELS}add/", {**_channel_form({}), "config": '{"order_flow": '})
    assert response.status_code == 200 and "Enter a valid JSON" in response.content.decode()


# -- idempotency keys ------------------------------------------------------------------------


def test_idempotency_keys_are_read_only(manager):
    key = IdempotencyKey.objects.create(scope="commit:pos", key="k1", status="done", response_code=201,
                                        response_body={"order_ref": "ORD-1"}, expires_at=timezone.now() + timedelta(hours=1))
    assert "commit:pos" in manager.get("/admin/omniman/idempotencykey/").content.decode()
    assert "ORD-1" in manager.get(f"/admin/omniman/idempotencykey/{key.pk}/change/").content.decode()
    assert manager.get("/admin/omniman/idempotencykey/add/").status_code == 403
    assert manager.post(f"/admin/omniman/idempotencykey/{key.pk}/change/", {"status": "failed"}).status_code == 403
    assert IdempotencyKey.objects.get(pk=key.pk).status == "done"


# -- dashboard -------------------------------------------------------------------------------


def test_dashboard_shows_today_the_queue_and_open_sessions(manager):
    counter, web = make_channel("counter", name="Counter"), make_channel("web", name="Web shop")
    paid = create_order_at("new", counter)
    create_order_at("new", counter)
    create_order_at("confirmed", web)
    create_order_at("cancelled", web)
    create_session_at(counter)
    bill = BillService.open("counter", order_ref=paid.ref)
    PaymentService.tender(bill.ref, method="cash", idempotency_key="dash")
    failed = Directive.objects.enqueue("test.fail", {})
    Directive.objects.filter(pk=failed.pk).update(status="failed", last_error="ConnectionError: gateway down")
    Directive.objects.all().exclude(pk=failed.pk).update(status="done")
    old = Directive.objects.enqueue("test.record", {})
    Directive.objects.filter(pk=old.pk).update(available_at=timezone.now() - timedelta(minutes=12))
    Directive.objects.enqueue("test.record", {}, available_at=timezone.now() + timedelta(hours=1))  # not due

    response = manager.get("/admin/")
    assert response.status_code == 200
    context = response.context
    table = context["orders_today"]
    assert table["total"] == 4
    assert table["columns"] == ["new", "confirmed", "cancelled"]
    rows = {row["channel"].code: [cell["count"] for cell in row["cells"]] for row in table["rows"]}
    assert rows == {"counter": [2, 0, 0], "web": [0, 1, 1]}
    # Sales are the day's settled bills (day_totals): one counter order is paid, nothing of the web's.
    assert {row["channel"].code: row["sales"] for row in table["rows"]} == {"counter": "R$10.00", "web": "—"}
    assert context["money_today"]["sales"] == "R$10.00" and context["money_today"]["totals"] == day_totals()
    directives = context["directives"]
    assert directives["failed"] == 1 and directives["due"] == 1 and directives["queued"] == 2
    assert directives["oldest_wait_text"] == "12 min" and directives["late"]
    assert context["open_sessions"] == 1

    body = response.content.decode()
    assert 'id="orders-today"' in body and "Web shop" in body
    assert f"{DIRECTIVES}?status__exact=failed" in body
    assert "12 min" in body and "ConnectionError: gateway down" in body
    # The counts link to the filtered order list.
    cell = rows and table["rows"][0]["cells"][0]["link"]
    assert cell.startswith(ORDERS) and f"channel__id__exact={counter.pk}" in cell and "status=new" in cell
    assert manager.get(cell).status_code == 200


def test_the_dashboard_says_when_no_worker_was_seen(manager):
    body = manager.get("/admin/").content.decode()
    assert 'id="directive-workers"' in body and "none yet" in body  # no worker ever ran: not an alarm
    now = timezone.now()
    WorkerHeartbeat.objects.create(name="box:41", host="box", pid=41, started_at=now - timedelta(hours=2),
                                   last_seen_at=now - timedelta(minutes=7), processed=120)
    response = manager.get("/admin/")
    workers = response.context["workers"]
    assert workers["missing"] and workers["alive"] == 0 and 7 * 60 <= workers["unseen_seconds"] < 8 * 60
    body = response.content.decode()
    assert "no worker seen for 7 min" in body and "box:41: seen 7 min ago, 120 run" in body
    WorkerHeartbeat.objects.beat("box:42", processed=3)
    response = manager.get("/admin/")
    assert not response.context["workers"]["missing"] and response.context["workers"]["alive"] == 1
    assert "1 alive" in response.content.decode()
    # The rows themselves: read-only.
    listing = manager.get("/admin/omniman/workerheartbeat/")
    assert listing.status_code == 200 and "box:42" in listing.content.decode()
    assert manager.get("/admin/omniman/workerheartbeat/add/").status_code == 403


def test_the_sidebar_lists_the_review_first_and_counts_failed_directives(manager):
    failed = Directive.objects.enqueue("test.fail", {})
    Directive.objects.filter(pk=failed.pk).update(status="failed")
    response = manager.get(ORDERS)
    groups = response.context["sidebar_navigation"]
    review = {str(item["title"]): item for item in groups[0]["items"]}
    assert list(review) == ["Dashboard", "Orders", "Bills", "Shifts", "Sessions", "Directives", "Audit"]
    assert review["Directives"]["badge"] == 1 and review["Orders"]["active"]
    titles = [str(group["title"]) for group in groups]
    assert titles[:3] == ["Review", "Reports", "Setup"]
    assert ("Catalog" in titles) == apps.is_installed("omniman.contrib.catalog")  # a contrib app's group, if installed
    assert "Authentication and Authorization" not in titles  # a manager without auth permissions


# -- bounded queries -------------------------------------------------------------------------


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _populate(n: int) -> None:
    channel = make_channel()
    for index in range(n):
        order = create_order_at("confirmed", channel, lines=2)
        bill = BillService.open(channel.code, order_ref=order.ref)
        payment = PaymentService.tender(bill.ref, method="cash", idempotency_key=f"pop-{index}").payment
        PaymentService.refund(payment.pk, amount_q=100, reason="x", idempotency_key=f"pop-{bill.ref}", roles={"manager"})
        Directive.objects.enqueue("test.record", {"order_ref": order.ref})
        session = create_session_at(channel, lines=2)
        Directive.objects.enqueue("test.record", {"session_key": session.session_key})
        OrderEvent.objects.create(order=order, type="note", actor="t", payload={"text": "x"})
        WorkerHeartbeat.objects.beat(f"host:{order.pk}")


@pytest.mark.parametrize("url", ["/admin/", ORDERS, BILLS, SESSIONS, DIRECTIVES, CHANNELS, "/admin/omniman/idempotencykey/"])
def test_list_pages_run_a_bounded_number_of_queries(manager, url):
    _populate(2)
    few = _queries(manager, url)
    _populate(6)
    assert _queries(manager, url) == few


def test_detail_pages_run_a_bounded_number_of_queries(manager):
    small = create_order_at("confirmed", lines=1)
    large = create_order_at("confirmed", lines=8)
    for _ in range(5):
        OrderEvent.objects.create(order=large, type="note", actor="t", payload={"text": "x"})
    _queries(manager, order_page(small))  # the first page of a model caches its content type
    assert _queries(manager, order_page(large)) == _queries(manager, order_page(small))
    few, many = create_order_at("confirmed", lines=1), [create_order_at("confirmed", lines=3) for _ in range(3)]
    small_bill = BillService.open(few.channel.code, order_ref=few.ref)
    PaymentService.tender(small_bill.ref, method="cash", idempotency_key="small")
    big_bill = BillService.open(many[0].channel.code, order_ref=many[0].ref)
    for index in range(4):
        PaymentService.tender(big_bill.ref, method="cash", amount_q=100, idempotency_key=f"big-{index}")
    BillService.discount(big_bill.ref, amount_q=50, reason="x", roles={"manager"})
    _queries(manager, f"{BILLS}{small_bill.pk}/change/")  # the first page of a model caches its content type
    assert _queries(manager, f"{BILLS}{big_bill.pk}/change/") == _queries(manager, f"{BILLS}{small_bill.pk}/change/")
    s1, s8 = create_session_at(make_channel(), lines=1), create_session_at(make_channel(), lines=8)
    _queries(manager, f"{SESSIONS}{s1.pk}/change/")
    assert _queries(manager, f"{SESSIONS}{s8.pk}/change/") == _queries(manager, f"{SESSIONS}{s1.pk}/change/")


def test_bills_are_read_only_with_their_payments_refunds_adjustments_and_timeline(manager):
    order = create_order_at("confirmed", make_channel("cafe", config={"payments": {"methods": ["cash", "card"]}}), lines=2)
    bill = BillService.open("cafe", order_ref=order.ref)
    BillService.discount(bill.ref, amount_q=200, reason="birthday", actor="user:boss", roles={"manager"})
    payment = PaymentService.tender(bill.ref, method="card", reference="AUTH9", brand="visa", tip_q=100, idempotency_key="a").payment
    PaymentService.refund(payment.pk, amount_q=300, reason="cold soup", idempotency_key="r", actor="user:boss", roles={"manager"})
    listing = manager.get(BILLS)
    assert listing.status_code == 200 and bill.ref in listing.content.decode()
    assert bill.ref in manager.get(f"{BILLS}?q={order.ref}").content.decode()  # found by an order's ref
    page = manager.get(f"{BILLS}{bill.pk}/change/")
    body = page.content.decode()
    assert page.status_code == 200
    for text in ("AUTH9", "birthday", "cold soup", "R$18.00", "R$1.00", "payment.recorded", "bill.settled", order.ref):
        assert text in body, text
    assert manager.get(f"{BILLS}add/").status_code == 403
    assert manager.post(f"{BILLS}{bill.pk}/delete/").status_code == 403
    bill.refresh_from_db()
    assert bill.status == "settled"


def test_the_dashboards_sales_are_the_days_totals_settled_bills_minus_refunds(manager):
    deli = make_channel(
        "deli",
        config={"order_flow": {"transitions": {"new": ["done", "void"]}, "terminal_statuses": ["done", "void"], "cancel_status": "void"}},
    )
    done = create_order_at("done", deli)
    create_order_at("void", deli)
    unpaid = create_order_at("new", deli)
    bill = BillService.open("deli", order_ref=done.ref)
    payment = PaymentService.tender(bill.ref, method="card", reference="A1", tip_q=150, idempotency_key="d").payment
    PaymentService.refund(payment.pk, amount_q=300, reason="cold", idempotency_key="r", roles={"manager"})
    BillService.open("deli", order_ref=unpaid.ref)
    response = manager.get("/admin/")
    table = response.context["orders_today"]
    assert table["columns"] == ["new", "done", "void"]
    assert {row["channel"].code: row["sales"] for row in table["rows"]} == {"deli": "R$7.00"}
    money = response.context["money_today"]
    assert (money["sales"], money["tips"], money["refunds"], money["bills"], money["open_bills"]) == ("R$7.00", "R$1.50", "R$3.00", 1, 1)
    assert money["by_method"] == [{"method": "card", "count": 1, "amount": "R$10.00", "tips": "R$1.50"}]
    body = response.content.decode()
    assert 'id="money-today"' in body and '<dd class="text-lg font-semibold" id="money-sales">R$7.00</dd>' in body


def test_the_dashboards_sales_are_what_the_tables_were_charged_service_included(manager):
    # Issue #15: a table the POS charged R$ 39.60 (36.00 + 10 % service) was R$ 36.00 in the dashboard's sales.
    tables = make_channel("tables", config={"service_charge_percent": 10})
    session = create_session_at(tables, lines=0, handle_type="table", handle_ref="3")
    session = ModifyService.modify_session(
        session.session_key, "tables",
        [{"op": "add_line", "sku": "A", "qty": 1, "unit_price_q": 1000}, {"op": "add_line", "sku": "B", "qty": 2, "unit_price_q": 1300}],
    )
    assert session.total_q == 3960
    order = Order.objects.get(ref=commit(session)["order_ref"])
    assert order.total_q == order.charged_q == 3960
    bill = BillService.open("tables", handle_type="table", handle_ref="3")  # sales are what was paid (day_totals)
    PaymentService.tender(bill.ref, method="cash", idempotency_key="t3")
    table = manager.get("/admin/").context["orders_today"]
    assert {row["channel"].code: row["sales"] for row in table["rows"]} == {"tables": "R$39.60"}
    page = manager.get(reverse("admin:omniman_order_change", args=[order.pk])).content.decode()
    assert "service_charge 10 %: R$3.60" in page  # the timeline names the adjustment


def test_a_manager_sets_someones_approval_pin_in_the_admin(manager):
    from omniman import approvals
    from omniman.models import OperatorPin

    boss = make_user("boss", groups=("manager",))
    add = reverse("admin:omniman_operatorpin_add")
    assert manager.get(add).status_code == 200
    refused = manager.post(add, {"user": boss.pk, "pin": "12ab"})
    assert refused.status_code == 200 and not OperatorPin.objects.exists()  # the form again, with its error
    assert manager.post(add, {"user": boss.pk, "pin": "2468"}).status_code == 302
    row = OperatorPin.objects.get(user=boss)
    assert "2468" not in row.pin_hash and approvals.verify_pin("boss", "2468").username == "boss"
    OperatorPin.objects.filter(pk=row.pk).update(failed_attempts=3)
    change = reverse("admin:omniman_operatorpin_change", args=[row.pk])
    assert manager.post(change, {"pin": "13579"}).status_code == 302
    assert approvals.verify_pin("boss", "13579").username == "boss"
    assert OperatorPin.objects.get(pk=row.pk).failed_attempts == 0
    page = manager.get(change).content.decode()
    assert "13579" not in page and row.pin_hash not in page
