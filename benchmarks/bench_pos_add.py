"""POS benchmark: server time of the htmx "add item" on a table's tab, with and without the checks in the request.

Run against PostgreSQL (it creates and drops its own test database, as
``bench_kernel.py`` does):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/bench_pos_add.py

The setup is a 5,000-product catalog (25 categories; one product in five has
a tracked stock level), the demo's ``tables`` channel (stock check, pricing with
a 10 % service charge) and a ``pos`` user. For each mode — the checks dispatched
in the request (``DISPATCH_ON_COMMIT``, the project's default) and not — a table's
tab is opened with 50 lines, then the test client, signed in and sending
``HX-Request: true``, POSTs "add item" ``BENCH_ROUNDS`` times (default 200), each
with the session's current ``rev`` read from the database and the SKU alternating
over four products (two tracked, two not). After each add the new line is
removed again through the service (not timed), so every add is on a 50-line tab;
``BENCH_GROW=1`` lets the tab grow instead (50 → 250 lines).
``time.perf_counter`` is taken around ``client.post`` only (the rev read is
outside); five warm-up adds on another tab are not counted.

It prints p50 / p95 / max in milliseconds per mode, the queries of one add at
50 and at 250 lines, and the target "p95 ≤ 30 ms" with PASS or FAIL.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# One log line per add would be console time, not server time.
os.environ.setdefault("LOG_LEVEL", "WARNING")
# The test client speaks plain http: no redirect to https (DEBUG is off here).
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402

django.setup()

from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "200"))
CATALOG = 5000
CATEGORIES = 25
TRACKED_EVERY = 5  # one product in five has a stock level
START_LINES = 50
WARMUP = 5
TARGET_P95_MS = 30.0
DISPATCH = ["stock.hold", "pricing.check", "refs.assign_ticket"]
# Alternating over two tracked (index % 5 == 0) and two untracked products.
ADD_SKUS = ["P00100", "P00101", "P00105", "P00102"]
HX = {"HTTP_HX_REQUEST": "true"}


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit(f"bench_pos_add needs PostgreSQL (DATABASE_URL=postgres://…); this is {connection.vendor}.")
    run_on_scratch_database(run)


def build_catalog() -> None:
    from omniman.contrib.catalog.models import Category, Product
    from omniman.contrib.stock.models import StockLevel

    categories = Category.objects.bulk_create(
        [Category(code=f"cat-{i:02d}", name=f"Category {i}", sort_order=i) for i in range(CATEGORIES)]
    )
    Product.objects.bulk_create(
        [
            Product(
                sku=f"P{i:05d}",
                name=f"Product {i}",
                category=categories[i % CATEGORIES],
                price_q=100 + i,
                station=("bar", "kitchen", "pastry")[i % 3],
                barcode=f"789{i:010d}",
                sort_order=i,
            )
            for i in range(CATALOG)
        ],
        batch_size=1000,
    )
    StockLevel.objects.bulk_create(
        [StockLevel(sku=f"P{i:05d}", on_hand=Decimal("100000"), track=True) for i in range(0, CATALOG, TRACKED_EVERY)],
        batch_size=1000,
    )


def build_channel_and_user():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from omniman.contrib.demo.management.commands.seed_demo import CHANNELS
    from omniman.models import Channel

    spec = next(c for c in CHANNELS if c["code"] == "tables")
    Channel.objects.create(code=spec["code"], **{k: v for k, v in spec.items() if k != "code"})
    user = get_user_model().objects.create_user("pos", password=None)
    user.groups.add(Group.objects.get_or_create(name="pos")[0])
    return user


def open_tab(table: str, lines: int):
    """A table's tab with ``lines`` lines of distinct products (one in five tracked), checks settled."""
    from omniman import engine
    from omniman.services import ModifyService, SessionService

    session = SessionService.open_session("tables", handle_type="table", handle_ref=table)
    if lines:
        ops = [
            {"op": "add_line", "sku": f"P{i:05d}", "qty": 1, "name": f"Product {i}", "unit_price_q": 100 + i}
            for i in range(1000, 1000 + lines)
        ]
        session = ModifyService.modify_session(session.session_key, "tables", ops)
    while engine.process(limit=100).claimed:
        pass
    return session


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[max(int(round(len(ordered) * p)) - 1, 0)]


def measure(client, mode: str) -> dict:
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from omniman.models import Session

    def add(session_key: str, sku: str):
        rev = Session.objects.values_list("rev", flat=True).get(session_key=session_key)
        url = reverse("pos:add", args=["tables", session_key])
        start = time.perf_counter()
        response = client.post(url, {"sku": sku, "rev": rev, "qty": "1"}, **HX)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{mode}: add answered {response.status_code}: {response.content[:300]!r}")
        return elapsed

    warm = open_tab(f"warm-{mode}", START_LINES)
    for i in range(WARMUP):
        add(warm.session_key, ADD_SKUS[i % len(ADD_SKUS)])

    session = open_tab(f"bench-{mode}", START_LINES)
    key = session.session_key
    queries = {}
    with CaptureQueriesContext(conn) as captured:
        samples = [add(key, ADD_SKUS[0])]
    queries[START_LINES] = len(captured)
    grow = os.environ.get("BENCH_GROW") == "1"

    def trim():
        from omniman.services import ModifyService

        if not grow:
            last = Session.objects.get(session_key=key).lines[-1]["line_id"]
            ModifyService.modify_session(key, "tables", [{"op": "remove_line", "line_id": last}])

    trim()
    for i in range(1, ROUNDS - 1):
        samples.append(add(key, ADD_SKUS[i % len(ADD_SKUS)]))
        trim()
    with CaptureQueriesContext(conn) as captured:
        samples.append(add(key, ADD_SKUS[(ROUNDS - 1) % len(ADD_SKUS)]))
    queries[len(Session.objects.get(session_key=key).lines)] = len(captured)

    final = Session.objects.get(session_key=key)
    expected = START_LINES + ROUNDS if grow else START_LINES + 1
    assert len(final.lines) == expected, (len(final.lines), expected)
    checks = final.data.get("checks") or {}
    stock_rev = (checks.get("stock") or {}).get("rev")
    return {
        "samples": samples,
        "queries": queries,
        "lines": len(final.lines),
        "stock_checked_at_last_rev": stock_rev == final.rev,
    }


def report(mode: str, result: dict) -> bool:
    samples = result["samples"]
    p50, p95, worst = statistics.median(samples), percentile(samples, 0.95), max(samples)
    first, last = samples[: len(samples) // 4], samples[-(len(samples) // 4) :]
    ok = p95 <= TARGET_P95_MS
    queries = ", ".join(f"{q} at {n} lines" for n, q in result["queries"].items())
    print(
        f"{mode:<28} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   max {worst:7.2f} ms   n={len(samples)}   "
        f"target p95 ≤ {TARGET_P95_MS:.0f} ms: {'PASS' if ok else 'FAIL'}"
    )
    print(
        f"{'':<28} p95 of the first quarter {percentile(first, 0.95):6.2f} ms, "
        f"of the last {percentile(last, 0.95):6.2f} ms (tab of {result['lines']} lines at the end)"
    )
    print(f"{'':<28} queries per add: {queries}; stock check written for the last rev: {result['stock_checked_at_last_rev']}")
    return ok


def run() -> None:
    from django.conf import settings
    from django.test import Client, override_settings

    build_catalog()
    user = build_channel_and_user()
    client = Client()
    client.force_login(user)
    print(
        f"database: {connection.vendor}; catalog: {CATALOG} products, {CATEGORIES} categories, "
        f"{CATALOG // TRACKED_EVERY} stock levels; tab: {START_LINES} lines + {ROUNDS} adds; SKUs {', '.join(ADD_SKUS)}"
    )
    results = {}
    for mode, dispatch in (("checks in the request (on)", DISPATCH), ("checks queued (off)", [])):
        with override_settings(OMNIMAN={**settings.OMNIMAN, "DISPATCH_ON_COMMIT": dispatch}):
            results[mode] = measure(client, mode)
    verdicts = [report(mode, result) for mode, result in results.items()]
    print("overall:", "PASS" if all(verdicts) else "FAIL")


if __name__ == "__main__":
    main()
