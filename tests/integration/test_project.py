"""The project around the kernel: migrations, the demo, the admin, login."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import override_settings

from omniman.models import Channel, Order, Session

pytestmark = pytest.mark.django_db


def test_no_missing_migrations():
    out = io.StringIO()
    call_command("makemigrations", "omniman", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def _counts():
    from omniman.contrib.catalog.models import Product
    from omniman.models import Directive, OrderEvent

    return (
        Channel.objects.count(),
        Product.objects.count(),
        Session.objects.count(),
        Order.objects.count(),
        OrderEvent.objects.count(),
        Directive.objects.count(),
        get_user_model().objects.count(),
    )


@override_settings(DEBUG=True)
@pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock")
def test_seed_demo_builds_the_cafe_and_is_idempotent():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    counts = _counts()
    assert counts[:2] == (4, 41)
    assert sorted(Channel.objects.values_list("code", flat=True)) == ["counter", "marketplace", "tables", "web"]
    assert Session.objects.filter(state="open").count() == 5
    statuses = sorted(Order.objects.values_list("status", flat=True))
    assert {"confirmed", "processing", "ready", "completed", "cancelled"} <= set(statuses)
    # The stock checks ran: two open sessions are short of stock and show it.
    issues = [i["code"] for s in Session.objects.filter(state="open") for i in s.data.get("issues", [])]
    assert issues.count("insufficient_stock") == 2
    tab = Session.objects.get(channel__code="tables", handle_ref="5", state="open")
    assert tab.items[0]["meta"]["note"] == "one without onions"
    assert tab.items[0]["unit_price_q"] == 3600  # priced from the catalog: the burger 32.00 + extra cheese 4.00
    totals = tab.totals  # the tables' 10 % service charge, part of what the tab owes
    assert totals["service_q"] == (totals["items_q"] * 10 + 50) // 100 and tab.total_q == totals["items_q"] + totals["service_q"]
    round_two = Order.objects.get(channel__code="tables", handle_ref="2")
    assert round_two.total_q == round_two.charged_q and round_two.totals["service_q"] > 0
    marketplace = Order.objects.get(channel__code="marketplace")
    assert marketplace.external_ref == "MKT-1042" and marketplace.total_q == 4280
    assert "pos/pos" in out.getvalue() and "admin/admin" in out.getvalue()
    User = get_user_model()
    assert User.objects.get(username="kitchen").groups.filter(name="kitchen").exists()
    assert User.objects.get(username="integration").groups.filter(name="integration").exists()
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="pos").check_password("pos")
    call_command("seed_demo", stdout=io.StringIO())
    assert _counts() == counts


@override_settings(DEBUG=False)
@pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock")
def test_seed_demo_prints_no_passwords_in_production():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    User = get_user_model()
    assert set(User.objects.values_list("username", flat=True)) == {"pos", "kitchen", "manager", "integration", "admin"}
    assert not User.objects.get(username="pos").check_password("pos")
    assert not User.objects.get(username="admin").check_password("admin")
    assert "pos/pos" not in out.getvalue() and "changepassword" in out.getvalue()


def test_admin_requires_login(client):
    response = client.get("/admin/omniman/order/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get("/").status_code == 302


@override_settings(DEBUG=True)
@pytest.mark.contrib("omniman.contrib.demo", "omniman.contrib.catalog", "omniman.contrib.pricing", "omniman.contrib.stock")
def test_admin_shows_orders_read_only(admin_client):
    call_command("seed_demo", "--no-users", stdout=io.StringIO())
    order = Order.objects.first()
    listing = admin_client.get("/admin/omniman/order/")
    assert listing.status_code == 200 and order.ref in listing.content.decode()
    detail = admin_client.get(f"/admin/omniman/order/{order.pk}/change/")
    assert detail.status_code == 200
    body = detail.content.decode()
    assert order.ref in body and 'name="_save"' not in body
    before = Order.objects.get(pk=order.pk).status
    posted = admin_client.post(f"/admin/omniman/order/{order.pk}/change/", {"status": "cancelled"})
    assert posted.status_code == 403
    assert Order.objects.get(pk=order.pk).status == before
    for model in ("session", "directive", "idempotencykey", "channel"):
        assert admin_client.get(f"/admin/omniman/{model}/").status_code == 200


def test_admin_channel_config_is_validated(admin_client):
    response = admin_client.post(
        "/admin/omniman/channel/add/",
        {
            "code": "web",
            "name": "Web",
            "pricing_policy": "internal",
            "edit_policy": "open",
            "config": '{"order_flow": {"transitions": {"new": ["done"], "done": ["new"]}, "terminal_statuses": ["done"]}}',
            "is_active": "on",
            "display_order": 0,
        },
    )
    assert response.status_code == 200
    assert "terminal status &#x27;done&#x27; has outgoing transitions" in response.content.decode()
    assert not Channel.objects.filter(code="web").exists()


def test_login_page_renders(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert "csrfmiddlewaretoken" in response.content.decode()


def test_signing_in_without_next_lands_on_the_role_home(client, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("cook", password="a-long-kitchen-password")
    user.groups.add(Group.objects.get_or_create(name="kitchen")[0])
    response = client.post("/accounts/login/", {"username": "cook", "password": "a-long-kitchen-password"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/")["Location"].startswith("/kitchen/")
