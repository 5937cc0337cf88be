"""Load a small demo: channels, open sessions, a few orders, demo users. Safe to run twice."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from omniman.models import Channel, Order, Session
from omniman.services import CommitService, ModifyService, OrderService, SessionService

CHANNELS = [
    {
        "code": "counter",
        "name": "Counter",
        "display_order": 1,
        "config": {
            "terminology": {"session": "Basket", "order": "Order"},
            "order_flow": {"auto_transitions": {"on_create": "confirmed"}},
            "icon": "cash-register",
        },
    },
    {
        "code": "tables",
        "name": "Tables",
        "display_order": 2,
        "config": {
            "terminology": {"session": "Tab", "order": "Round"},
            "order_flow": {"auto_transitions": {"on_create": "confirmed"}},
            "icon": "utensils",
        },
    },
    {
        "code": "delivery",
        "name": "Delivery marketplace",
        "display_order": 3,
        "pricing_policy": "external",
        "edit_policy": "locked",
        "config": {"terminology": {"session": "Draft", "order": "Pedido"}, "icon": "motorcycle"},
    },
]

MENU = {
    "ESP": ("Espresso", 600),
    "CAP": ("Cappuccino", 950),
    "PDQ": ("Pão de queijo", 700),
    "CRO": ("Croissant", 1100),
    "BURG": ("Burger", 3200),
    "FRIES": ("Fries", 1400),
    "SODA": ("Soda", 700),
}

ROLES = ("pos", "kitchen", "manager")


def line(sku: str, qty: int | str = 1, **extra) -> dict:
    name, price = MENU[sku]
    return {"op": "add_line", "sku": sku, "name": name, "qty": qty, "unit_price_q": price, **extra}


class Command(BaseCommand):
    help = "Load demo channels, open sessions and orders (idempotent), and demo users when DEBUG is on."

    def add_arguments(self, parser):
        parser.add_argument("--no-users", action="store_true", help="Do not create the demo users.")

    def handle(self, *args, **options):
        with transaction.atomic():
            for spec in CHANNELS:
                Channel.objects.get_or_create(code=spec["code"], defaults={k: v for k, v in spec.items() if k != "code"})
            created_sessions = self._sessions()
        self.stdout.write(self.style.SUCCESS(f"Demo data ready: {len(CHANNELS)} channels, {created_sessions} new sessions."))
        if not options["no_users"]:
            self._users()

    def _sessions(self) -> int:
        if Session.objects.filter(channel__code__in=[c["code"] for c in CHANNELS]).exists():
            return 0
        # Table 5: an open tab with a note for the kitchen.
        tab = SessionService.open_session("tables", handle_type="table", handle_ref="5", actor="seed")
        tab = ModifyService.modify_session(
            tab.session_key, "tables", [line("BURG", 2), line("FRIES"), line("SODA", 2)], ctx={"actor": "seed"}
        )
        ModifyService.modify_session(
            tab.session_key,
            "tables",
            [{"op": "set_line_meta", "line_id": tab.items[0]["line_id"], "path": "note", "value": "one without onions"}],
        )
        # Table 2: a round already sent to the kitchen, and the next one being composed.
        sent = SessionService.open_session("tables", handle_type="table", handle_ref="2", actor="seed")
        ModifyService.modify_session(sent.session_key, "tables", [line("CAP", 2), line("PDQ", 2)])
        CommitService.commit(sent.session_key, "tables", idempotency_key=f"seed-{sent.session_key}", actor="seed")
        nxt = SessionService.open_session("tables", handle_type="table", handle_ref="2", actor="seed")
        ModifyService.modify_session(nxt.session_key, "tables", [line("CRO")])
        # The counter: one basket open, two orders on their way.
        basket = SessionService.open_session("counter", actor="seed", data={"customer": {"name": "Ana"}})
        ModifyService.modify_session(basket.session_key, "counter", [line("ESP", 2), line("PDQ", 3)])
        for items, status in (([line("CAP"), line("CRO")], "processing"), ([line("ESP")], "ready")):
            order_session = SessionService.open_session("counter", actor="seed")
            ModifyService.modify_session(order_session.session_key, "counter", items)
            result = CommitService.commit(
                order_session.session_key, "counter", idempotency_key=f"seed-{order_session.session_key}", actor="seed"
            )
            order = Order.objects.get(ref=result["order_ref"])
            for step in ("processing", "ready")[: 1 if status == "processing" else 2]:
                OrderService.transition(order.ref, step, actor="seed")
        # A marketplace order delivered with its own prices, waiting to be committed.
        SessionService.open_session(
            "delivery",
            handle_type="marketplace",
            handle_ref="MKT-1042",
            data={"customer": {"name": "Bruno", "phone": "+55 11 91234-5678"}, "external_ref": "MKT-1042"},
            items=[{"sku": "BURG", "name": "Burger", "qty": 1, "unit_price_q": 3490}, {"sku": "SODA", "name": "Soda", "qty": 1, "unit_price_q": 790}],
            actor="seed",
        )
        return Session.objects.filter(channel__code__in=[c["code"] for c in CHANNELS]).count()

    def _users(self) -> None:
        if not settings.DEBUG:
            self.stdout.write("DEBUG is off: no demo users created (create real ones with createsuperuser).")
            return
        User = get_user_model()
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
        logins = [("manager", "manager", True), ("pos", "pos", False), ("kitchen", "kitchen", False)]
        for username, role, is_staff in logins:
            user, created = User.objects.get_or_create(username=username, defaults={"is_staff": is_staff})
            if created:
                user.set_password(username)
                user.is_superuser = username == "manager"
                user.save()
            user.groups.add(groups[role])
        self.stdout.write(
            "Demo logins (development only): manager/manager (admin), pos/pos, kitchen/kitchen"
        )
