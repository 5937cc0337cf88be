"""Build the demo café-restaurant. Idempotent: a second run changes nothing."""

from __future__ import annotations

import secrets
import time
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from omniman import engine
from omniman.approvals import set_pin
from omniman.contrib.catalog.models import Category, Option, OptionGroup, Product
from omniman.contrib.demo.history import seed_history
from omniman.contrib.demo.menu import ALTERNATIVES, CATEGORIES, OPTION_GROUPS, PRODUCTS, PT_BR_NAMES
from omniman.contrib.stock.models import StockLevel
from omniman.models import Channel, Session
from omniman.services import CommitService, ExternalOrderService, ModifyService, OrderService, SessionService

STOCK_CHECK = {
    "required_checks_on_commit": ["stock"],
    "checks": {"stock": {"directive_topic": "stock.hold", "label": "Stock"}},
    "on_abandon": ["stock.release_session"],
}

# The café takes every method (issue #15): cash with quick-tender notes, card on its own terminal, Pix, the gateway.
DEMO_PAYMENTS = {
    "methods": ["cash", "card", "pix", "gateway"],
    "pix": {"key": "pix@cafe.example", "merchant_name": "OMNIMAN CAFE", "merchant_city": "SAO PAULO"},
    "card_brands": ["visa", "mastercard", "elo", "amex"],
    "quick_tender": [1000, 2000, 5000, 10000],
}

CHANNELS = [
    {
        "code": "counter",
        "name": "Counter",
        "display_order": 1,
        "config": {
            **STOCK_CHECK,
            "pricing": {},
            "post_commit_directives": ["stock.commit", "refs.assign_ticket"],
            "order_flow": {"auto_transitions": {"on_create": "confirmed"}, "on_enter": {"cancelled": ["stock.release"]}},
            "terminology": {"en": {"session": "Basket", "order": "Order"}, "pt-br": {"session": "Venda", "order": "Pedido"}},
            "icon": "cash-register",
            "payments": DEMO_PAYMENTS,
        },
    },
    {
        "code": "tables",
        "name": "Tables",
        "display_order": 2,
        "config": {
            **STOCK_CHECK,
            "pricing": {},
            # The kernel's automatic service charge (an adjustment, part of the order's total) and the
            # discount a cashier may give without a manager's PIN (docs/api/adjustments.rst).
            "service_charge_percent": 10,
            "discounts": {"approval_over_percent": 10},
            "tables": True,
            "post_commit_directives": ["stock.commit"],
            "order_flow": {"auto_transitions": {"on_create": "confirmed"}, "on_enter": {"cancelled": ["stock.release"]}},
            "terminology": {"en": {"session": "Tab", "order": "Round"}, "pt-br": {"session": "Comanda", "order": "Pedido"}},
            "icon": "utensils",
            "payments": DEMO_PAYMENTS,
        },
    },
    {
        "code": "web",
        "name": "Web shop",
        "display_order": 3,
        "config": {
            **STOCK_CHECK,
            "pricing": {},
            "post_commit_directives": ["stock.commit", "payment.capture", "refs.assign_ticket", "notification.send"],
            "order_flow": {
                "auto_transitions": {"on_payment_confirm": "confirmed"},
                "on_enter": {"cancelled": ["stock.release", "payment.refund"]},
            },
            # Channel policy: a web order reaches the kitchen once it is paid (confirmed), never while new.
            "kitchen_flow": {"admit_statuses": ["confirmed", "processing", "ready"]},
            "notifications": {"backends": [{"backend": "console"}]},
            "terminology": {"en": {"session": "Basket", "order": "Order"}, "pt-br": {"session": "Carrinho", "order": "Pedido"}},
            "icon": "globe",
        },
    },
    {
        "code": "marketplace",
        "name": "Delivery marketplace",
        "display_order": 4,
        "pricing_policy": "external",
        "edit_policy": "locked",
        "config": {
            "post_commit_directives": ["stock.commit"],
            "order_flow": {"auto_transitions": {"on_create": "confirmed"}, "on_enter": {"cancelled": ["stock.release"]}},
            "terminology": {"en": {"session": "Draft", "order": "Order"}, "pt-br": {"session": "Rascunho", "order": "Pedido"}},
            "icon": "motorcycle",
        },
    },
]

ROLES = ("pos", "kitchen", "manager", "integration")
# "integration" is the API client of a marketplace connector (docs/integrations/marketplace.rst).
USERS = [("pos", "pos", False), ("kitchen", "kitchen", False), ("manager", "manager", True), ("integration", "integration", False)]
SUPERUSER = "admin"
MANAGER = "manager"
DEMO_PIN = "1234"  # the demo manager's approval PIN (DEBUG only, like the demo passwords)


def line(sku: str, qty: int | str = 1, **extra) -> dict:
    return {"op": "add_line", "sku": sku, "qty": qty, **extra}


class Command(BaseCommand):
    help = (
        "Build the demo café-restaurant: catalog, stock, four channels, open tabs and baskets, "
        "orders in several statuses, and the users pos, kitchen, manager, integration and admin. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("--no-users", action="store_true", help="Do not create the demo users.")
        parser.add_argument(
            "--language",
            default=None,
            help="Names of channels, categories and products: en or pt-br (default: LANGUAGE_CODE). "
            "SKUs, codes and the channels' per-language terminology are the same in both.",
        )
        parser.add_argument(
            "--days",
            type=int,
            default=0,
            help="Also seed N days of history ending yesterday, and today up to now: orders across the channels with "
            "bills, payments (cash, card, Pix, splits, tips), discounts, voids, refunds and kitchen times. "
            "Deterministic; a day already seeded is skipped.",
        )
        parser.add_argument("--orders-per-day", type=int, default=150, help="Orders on an ordinary day with --days (default 150).")
        parser.add_argument("--seed", type=int, default=42, help="The random seed of --days (default 42).")

    def handle(self, *args, **options):
        self.verbosity = options.get("verbosity", 1)
        if options["days"] < 0 or options["days"] > 366:
            raise CommandError("--days must be from 0 to 366.")
        if options["orders_per_day"] < 1 or options["orders_per_day"] > 2000:
            raise CommandError("--orders-per-day must be from 1 to 2000.")
        language = (options.get("language") or settings.LANGUAGE_CODE or "en").lower()
        self.names = PT_BR_NAMES if language.startswith("pt") else {}
        with transaction.atomic():
            products = self._catalog()
            channels = self._channels()
        sessions = self._activity()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo ready: {products} products, {channels} channels, {sessions} new sessions."
            )
        )
        if not options["no_users"]:
            self._users()
        if options["days"]:
            self._history(options["days"], options["orders_per_day"], options["seed"])

    def _history(self, days: int, orders_per_day: int, seed: int) -> None:
        started = time.monotonic()
        log = self.stdout.write if self.verbosity >= 2 else None
        result = seed_history(days, orders_per_day=orders_per_day, seed=seed, log=log)
        skipped = len(result.days) - len(result.created)
        self.stdout.write(
            self.style.SUCCESS(
                f"History: {len(result.created)} days seeded ({skipped} already there), {result.total('orders')} orders, "
                f"{result.total('payments')} payments, {result.total('refunds')} refunds, {result.total('voids')} voids, "
                f"{result.total('discounts')} discounts, {result.total('shifts')} shifts, {result.total('cash_outs')} cash outs "
                f"in {time.monotonic() - started:.1f} s."
            )
        )

    # -- catalog and stock ----------------------------------------------------

    def _catalog(self) -> int:
        categories = {}
        for code, name, order in CATEGORIES:
            name = self.names.get(code, name)
            categories[code], _ = Category.objects.get_or_create(code=code, defaults={"name": name, "sort_order": order})
        for position, (sku, name, category, price_q, station, barcode, on_hand) in enumerate(PRODUCTS):
            Product.objects.get_or_create(
                sku=sku,
                defaults={
                    "name": self.names.get(sku, name),
                    "category": categories[category],
                    "price_q": price_q,
                    "station": station,
                    "barcode": barcode,
                    "sort_order": position,
                },
            )
            if on_hand is not None:
                StockLevel.objects.get_or_create(sku=sku, defaults={"on_hand": Decimal(on_hand), "track": True})
        by_sku = {p.sku: p for p in Product.objects.filter(sku__in=ALTERNATIVES)}
        for sku, alternatives in ALTERNATIVES.items():
            if sku in by_sku and not by_sku[sku].alternatives.exists():
                by_sku[sku].alternatives.set(Product.objects.filter(sku__in=alternatives))
        for position, (code, name, min_choices, max_choices, options, skus) in enumerate(OPTION_GROUPS):
            group, created = OptionGroup.objects.get_or_create(
                code=code,
                defaults={
                    "name": self.names.get(code, name),
                    "min_choices": min_choices,
                    "max_choices": max_choices,
                    "sort_order": position,
                },
            )
            if not created:
                continue  # a manager may have edited it: leave it alone
            for order, (option_code, option_name, price_q, sku) in enumerate(options):
                Option.objects.create(
                    group=group,
                    code=option_code,
                    name=self.names.get(option_code, option_name),
                    price_q=price_q,
                    sku=sku,
                    sort_order=order,
                )
            group.products.add(*Product.objects.filter(sku__in=skus))
        return Product.objects.count()

    def _channels(self) -> int:
        for spec in CHANNELS:
            if Channel.objects.filter(code=spec["code"]).exists():
                continue
            channel = Channel(**{**spec, "name": self.names.get(spec["code"], spec["name"])})
            try:
                channel.full_clean()  # the kernel's rules, handlers included, as the admin applies them
            except ValidationError as exc:
                raise CommandError(f"Demo channel {spec['code']!r} is invalid: {exc.messages}") from exc
            channel.save()
        return len(CHANNELS)

    # -- sessions and orders ---------------------------------------------------

    def _activity(self) -> int:
        codes = [c["code"] for c in CHANNELS]
        if Session.objects.filter(channel__code__in=codes).exists():
            return 0
        ctx = {"actor": "seed"}
        opened = 0

        def session(channel, *ops, handle_type="", handle_ref="", data=None):
            nonlocal opened
            s = SessionService.open_session(channel, handle_type=handle_type, handle_ref=handle_ref, data=data, actor="seed")
            opened += 1
            if ops:
                s = ModifyService.modify_session(s.session_key, channel, list(ops), ctx=ctx)
            return s

        def settle():
            while engine.process(limit=200).claimed:
                pass

        def order(channel, *ops, walk=(), **kwargs):
            s = session(channel, *ops, **kwargs)
            settle()
            result = CommitService.commit(s.session_key, channel, idempotency_key=f"seed:{s.session_key}", actor="seed")
            settle()
            ref = result["order_ref"]
            for status in walk:
                OrderService.transition(ref, status, actor="seed")
            return ref

        # Orders on their way, so the kitchen board has cards in every column.
        order("counter", line("CAP"), line("CRO"), walk=("processing",))
        order("counter", line("ESP", 2), line("PDQ", 3))
        order("counter", line("LATTE"), line("BANANA"), walk=("processing", "ready"))
        order("tables", line("BURG", 2, meta={"modifiers": ["doneness:medium"]}), line("FRIES", 2), line("SODA", 2), handle_type="table", handle_ref="2")
        order("web", line("GRANOLA"), line("OJ"), data={"customer": {"name": "Carla", "email": "carla@example.com"}})
        order("counter", line("ESP"), walk=("ready", "completed"))
        cancelled = order("counter", line("AVO"))
        OrderService.transition(cancelled, "cancelled", actor="seed", reason="customer left")
        # A marketplace order, delivered with its own prices (as the API's ingestion does).
        ExternalOrderService.ingest(
            "marketplace",
            "MKT-1042",
            items=[
                {"sku": "BURG", "name": "Burger", "qty": "1", "unit_price_q": 3490},
                {"sku": "SODA", "name": "Soda can", "qty": "1", "unit_price_q": 790},
            ],
            data={"customer": {"name": "Bruno", "phone": "+55 11 91234-5678"}},
            actor="seed",
        )
        opened += 1

        # Open tabs and baskets for the POS.
        burgers = line("BURG", 2, meta={"modifiers": ["doneness:medium", "extras:cheese"]})
        tab5 = session("tables", burgers, line("FRIES"), line("LEMON", 2), handle_type="table", handle_ref="5")
        ModifyService.modify_session(
            tab5.session_key,
            "tables",
            [{"op": "set_line_meta", "line_id": tab5.lines[0]["line_id"], "path": "note", "value": "one without onions"}],
            ctx=ctx,
        )
        session("tables", line("CRO"), line("CAP", 2), handle_type="table", handle_ref="2")
        session("tables", line("SALMON", 2), line("SALAD"), handle_type="table", handle_ref="9")  # short: an issue
        session("counter", line("ESP", 2), line("PAINCH", 3), data={"customer": {"name": "Ana"}})  # short: an issue
        session("web", line("CHEESE"), data={"customer": {"name": "Dani", "phone": "+55 21 98888-7777"}})
        settle()
        return opened

    # -- users -----------------------------------------------------------------

    def _users(self) -> None:
        User = get_user_model()
        groups = {name: Group.objects.get_or_create(name=name)[0] for name in ROLES}
        show = bool(settings.DEBUG)
        for username, role, is_staff in USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"is_staff": is_staff})
            if created:
                user.set_password(username if show else secrets.token_urlsafe(24))
                user.save()
                if show and role == MANAGER:
                    set_pin(user, DEMO_PIN)  # approves discounts over the limit on a cashier's screen
            user.groups.add(groups[role])
        admin, created = User.objects.get_or_create(
            username=SUPERUSER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(SUPERUSER if show else secrets.token_urlsafe(24))
            admin.save()
        if show:
            self.stdout.write(
                "Demo logins (DEBUG only): pos/pos, kitchen/kitchen, manager/manager, integration/integration (API), "
                f"admin/admin (superuser); the manager's approval PIN is {DEMO_PIN}"
            )
        else:
            self.stdout.write(
                "Users pos, kitchen, manager, integration and admin exist with random passwords (DEBUG is off): "
                "set them with `manage.py changepassword <user>`."
            )
