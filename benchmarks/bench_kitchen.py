"""Kitchen board benchmark: server time of the full board with 200 active orders, and of the
"nothing changed" poll, through the test client (p50/p95 over --rounds requests).

Each request is timed twice: wall-clock, and the CPU time of this process
(``time.process_time``: what the request itself costs, the same on a machine
busy with other work, where the wall-clock figures grow with the load).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/bench_kitchen.py
"""

from __future__ import annotations

import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "200"))
ORDERS = int(os.environ.get("BENCH_ORDERS", "200"))


def pct(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def report(name, samples, cpu=None):
    line = f"{name:<44} p50 {statistics.median(samples):7.2f} ms   p95 {pct(samples, 0.95):7.2f} ms"
    if cpu:
        line += f"   cpu p50 {statistics.median(cpu):7.2f} ms   cpu p95 {pct(cpu, 0.95):7.2f} ms"
    print(f"{line}   n={len(samples)}")
    return pct(samples, 0.95)


def run():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from omniman.models import Channel, Order
    from omniman.services import CommitService, ModifyService, OrderService, SessionService

    print(f"database: {connection.vendor}; active orders: {ORDERS}; rounds: {ROUNDS}")
    channel = Channel.objects.create(code="tables", name="Tables", config={"order_flow": {"auto_transitions": {"on_create": "confirmed"}}})
    for n in range(ORDERS):
        session = SessionService.open_session(channel.code, handle_type="table", handle_ref=str(n))
        ModifyService.modify_session(
            session.session_key,
            channel.code,
            [
                {"op": "add_line", "sku": "BURG", "qty": 2, "name": "Burger", "unit_price_q": 3200, "meta": {"station": "kitchen", "note": "no onions"}},
                {"op": "add_line", "sku": "SODA", "qty": 1, "name": "Soda", "unit_price_q": 700, "meta": {"station": "bar"}},
            ],
        )
        ref = CommitService.commit(session.session_key, channel.code, idempotency_key=f"k{n}")["order_ref"]
        if n % 3 == 1:
            OrderService.transition(ref, "processing")
    user = get_user_model().objects.create_user("cook", password="pw")
    user.groups.add(Group.objects.create(name="kitchen"))
    client = Client()
    client.force_login(user)
    full, poll, full_cpu, poll_cpu = [], [], [], []
    for _ in range(ROUNDS):
        start, cpu = time.perf_counter(), time.process_time()
        response = client.get("/kitchen/")
        full.append((time.perf_counter() - start) * 1000)
        full_cpu.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 200
    version = re.search(rb"&v=([^\"]+)\"", response.content).group(1).decode()
    for _ in range(ROUNDS):
        start, cpu = time.perf_counter(), time.process_time()
        response = client.get(f"/kitchen/board/?station=expo&channel=&v={version}", HTTP_HX_REQUEST="true")
        poll.append((time.perf_counter() - start) * 1000)
        poll_cpu.append((time.process_time() - cpu) * 1000)
        assert response.status_code == 204
    assert Order.objects.count() == ORDERS
    full_p95 = report(f"full board, {ORDERS} active orders", full, full_cpu)
    poll_p95 = report("poll, nothing changed (204)", poll, poll_cpu)
    print(f"ratio full/poll p95: {full_p95 / poll_p95:.1f}x")


def main():
    run_on_scratch_database(run)


if __name__ == "__main__":
    main()
