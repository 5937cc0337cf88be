"""Reports benchmark (issue #18): a month of sales (~150 orders a day) on PostgreSQL; times each report selector and
each admin report page (Django test client, a manager signed in) over the last 7 and the last 30 days, p50/p95 per
report (and each page's CPU time and query count, which move less with the machine's load). Target: every page under
300 ms p95.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/bench_reports.py

The month is seeded in a scratch database (created, migrated, dropped), by ``seed_demo --days 30`` when that
option exists, else by this file's own bulk generator (the same rows the services write: orders and items, kitchen
items and their bump events, bills with discounts and voids, payments with tips, refunds). ``BENCH_DAYS`` (30),
``BENCH_PER_DAY`` (150), ``BENCH_ROUNDS`` (20); ``BENCH_REUSE=1`` runs on the ``DATABASE_URL`` database itself
(migrated, seeded the first time, kept: later runs skip the seeding).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection, transaction  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
DAYS = int(os.environ.get("BENCH_DAYS", "30"))
PER_DAY = int(os.environ.get("BENCH_PER_DAY", "150"))
MENU = [("ESP", "Espresso", 600, "bar"), ("CAP", "Cappuccino", 950, "bar"), ("OJ", "Orange juice", 1200, "bar"),
        ("BURG", "Burger", 3200, "kitchen"), ("FRIES", "Fries", 1400, "kitchen"), ("EGGS", "Scrambled eggs", 2400, "kitchen"),
        ("CRO", "Croissant", 1100, "pastry"), ("BROWNIE", "Brownie", 1300, "pastry")]


def pct(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def report(name, samples, extra=""):
    print(f"{name:<48} p50 {statistics.median(samples):7.2f} ms   p95 {pct(samples, 0.95):7.2f} ms   n={len(samples)}{extra}")
    return pct(samples, 0.95)


@transaction.atomic
def seed_month(today) -> int:
    """A month of sales in bulk: what the services would have written, stamped over the days (returns orders made)."""
    from django.utils import timezone

    from omniman.models import Bill, Channel, KitchenItem, Order, OrderEvent, OrderItem, Payment, Refund

    rng = random.Random(18)
    payments = {"methods": ["cash", "card", "pix"]}
    channels = [Channel.objects.create(code=code, name=code.title(), config={"payments": payments}) for code in ("counter", "tables", "web")]
    actors = ["user:ana", "user:bia", "user:caio", "user:duda"]
    n = 0
    for offset in range(DAYS, 0, -1):
        day = today - timedelta(days=offset - 1)
        orders, items, bills = [], [], []
        for k in range(PER_DAY):
            n += 1
            moment = timezone.make_aware(datetime.combine(day, clock(7 + rng.randint(0, 13), rng.randint(0, 59))))
            lines = rng.sample(MENU, rng.randint(1, 4))
            qtys = [rng.choice([1, 1, 1, 2]) for _ in lines]
            total = sum(price * qty for (_s, _n, price, _st), qty in zip(lines, qtys, strict=True))
            channel = channels[n % 3]
            snapshot = {"_v": 1, "items": [{"line_id": f"L{i}", "sku": sku, "qty": str(q), "line_total_q": price * q}
                                           for i, ((sku, _n, price, _st), q) in enumerate(zip(lines, qtys, strict=True))],
                        "data": {}, "rev": 1, "channel_code": channel.code, "pricing_policy": "external", "total_q": total,
                        "currency": "BRL", "adjustments": []}
            orders.append(Order(ref=f"ORD-{n:07d}", channel=channel, status="completed", snapshot=snapshot, currency="BRL",
                                total_q=total, created_at=moment))
            items.append([(f"L{i}", sku, name, q, price, station) for i, ((sku, name, price, station), q) in enumerate(zip(lines, qtys, strict=True))])
            bills.append((moment, total, channel))
        Order.objects.bulk_create(orders)
        for order, (moment, _t, _c) in zip(orders, bills, strict=True):  # auto_now_add stamped "now"
            order.created_at = moment
        Order._base_manager.bulk_update(orders, ["created_at"], batch_size=500)
        order_items = [OrderItem(order=order, line_id=line_id, sku=sku, name=name, qty=q, unit_price_q=price, line_total_q=price * q)
                       for order, lines in zip(orders, items, strict=True) for line_id, sku, name, q, price, _st in lines]
        OrderItem.objects.bulk_create(order_items)
        by_line = {(item.order_id, item.line_id): item for item in order_items}
        kitchen = [KitchenItem(order=order, item=by_line[(order.pk, line_id)], line_id=line_id, station=station, status="served")
                   for order, lines in zip(orders, items, strict=True) for line_id, _s, _n, _q, _p, station in lines]
        KitchenItem.objects.bulk_create(kitchen)
        events = []
        moments = {order.pk: moment for order, (moment, _t, _c) in zip(orders, bills, strict=True)}
        for item in kitchen:
            item.created_at = moments[item.order_id]
        KitchenItem._base_manager.bulk_update(kitchen, ["created_at"], batch_size=500)
        for item in kitchen:
            ready = moments[item.order_id] + timedelta(seconds=rng.randint(120, 1500))
            events.append(OrderEvent(order_id=item.order_id, type="kitchen.bumped", actor="user:cook",
                                     payload={"items": [item.pk], "station": item.station, "from": "cooking", "to": "ready"}))
            events[-1]._ready = ready
        OrderEvent.objects.bulk_create(events)
        for event in events:
            event.created_at = event._ready
        OrderEvent._base_manager.bulk_update(events, ["created_at"], batch_size=500)
        bill_rows = []
        for order, (moment, total, channel) in zip(orders, bills, strict=True):
            adjustments = []
            if rng.random() < 0.08:
                taken = min(500, total)
                adjustments.append({"id": "d", "kind": "discount", "amount_q": -taken, "reason": "regular", "actor": rng.choice(actors), "line_id": ""})
            bill_rows.append(Bill(ref=f"BIL-{order.ref}", channel=channel, status="settled", currency="BRL", adjustments=adjustments,
                                  total_q=total + sum(a["amount_q"] for a in adjustments), paid_q=0))
            bill_rows[-1].orders_first = order.pk
        Bill.objects.bulk_create(bill_rows)
        pays = []
        for order, bill, (moment, _t, _c) in zip(orders, bill_rows, bills, strict=True):
            bill.opened_at, bill.settled_at, bill.paid_q = moment, moment + timedelta(minutes=35), bill.total_q
            pays.append(Payment(bill=bill, method=rng.choice(["cash", "card", "pix"]), amount_q=max(bill.total_q, 1),
                                tip_q=rng.choice([0, 0, 0, 200]), currency="BRL", actor=rng.choice(actors), idempotency_key="k"))
        for order, bill in zip(orders, bill_rows, strict=True):
            order.bill_id = bill.pk
        Order._base_manager.bulk_update(orders, ["bill_id"])
        Bill._base_manager.bulk_update(bill_rows, ["opened_at", "settled_at", "paid_q"], batch_size=500)
        Payment.objects.bulk_create(pays)
        refunds = [Refund(payment=p, amount_q=min(300, p.amount_q), reason="complaint", actor="user:boss", idempotency_key=f"r{p.pk}")
                   for p in pays if rng.random() < 0.02]
        Refund.objects.bulk_create(refunds)
        for payment in pays:
            payment.created_at = moments[payment.bill.orders_first] + timedelta(minutes=35)
        Payment._base_manager.bulk_update(pays, ["created_at"], batch_size=500)
        for refund in refunds:
            refund.created_at = moments[refund.payment.bill.orders_first] + timedelta(minutes=50)
        Refund._base_manager.bulk_update(refunds, ["created_at"], batch_size=500)
    return n


def run():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from omniman.models import Order
    from omniman.services import REPORTS, report_period

    today = timezone.localdate()
    started = time.perf_counter()
    if Order.objects.filter(created_at__date__lt=today - timedelta(days=DAYS - 2)).exists():
        how = "reused"
    else:
        try:
            call_command("seed_demo", days=DAYS, verbosity=0)
            how = "seed_demo --days"
        except Exception:  # noqa: BLE001 — no --days yet: our own month
            seed_month(today)
            how = "bulk generator"
    print(f"database: {connection.vendor}; {Order.objects.count()} orders over {DAYS} days ({how}, {time.perf_counter() - started:.0f} s); rounds: {ROUNDS}")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
        cursor.execute("SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'omniman_order'")
        live, dead = cursor.fetchone() or (0, 0)
    # Timings move with the machine's load: the load average is printed, and each page's query count and CPU time
    # (this process's, not the database's) beside its wall-clock times.
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores; autovacuum {autovacuum}, "
          f"orders: {live} live row versions, {dead} dead (a dead-heavy table is slower than a vacuumed one)")
    user, _created = get_user_model().objects.get_or_create(username="boss-bench", defaults={"is_staff": True})
    user.groups.add(Group.objects.get_or_create(name="manager")[0])
    client = Client()
    client.force_login(user)
    worst = 0.0
    for preset in ("7d", "30d"):
        period = report_period(preset=preset)
        for name, build in REPORTS.items():
            samples = []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                build(period)
                samples.append((time.perf_counter() - start) * 1000)
            report(f"selector {name} ({preset})", samples)
            samples, cpu = [], []
            for _ in range(ROUNDS):
                start, start_cpu = time.perf_counter(), time.process_time()
                response = client.get(f"/admin/reports/{name}/?preset={preset}")
                samples.append((time.perf_counter() - start) * 1000)
                cpu.append((time.process_time() - start_cpu) * 1000)
                assert response.status_code == 200, response.status_code
            with CaptureQueriesContext(connection) as queries:
                client.get(f"/admin/reports/{name}/?preset={preset}")
            extra = f"   cpu p50 {statistics.median(cpu):6.1f} ms   {len(queries)} queries"
            worst = max(worst, report(f"page /admin/reports/{name}/ ({preset})", samples, extra))
        samples = []
        for _ in range(max(ROUNDS // 2, 3)):
            start = time.perf_counter()
            response = client.get(f"/admin/reports/product/export.xlsx?preset={preset}")
            samples.append((time.perf_counter() - start) * 1000)
        report(f"export product.xlsx ({preset})", samples)
    print(f"worst page p95: {worst:.1f} ms (target < 300 ms); load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if connection.vendor != "postgresql":
        sys.exit("bench_reports needs PostgreSQL: set DATABASE_URL=postgres://...")
    if os.environ.get("BENCH_REUSE"):  # the DATABASE_URL database itself: migrated, seeded once, kept
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        run()
    else:
        run_on_scratch_database(run)
