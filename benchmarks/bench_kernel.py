"""Kernel benchmark: latency of open → modify → commit → transition, and basket-size scaling.

Run against a scratch database (it creates its own tables with a test DB):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/bench_kernel.py
    DATABASE_URL=sqlite:///bench.sqlite3 DEBUG=1 .venv/bin/python benchmarks/bench_kernel.py

It prints per-operation medians and p95 in milliseconds, and how modify and
commit grow with the basket: 5 → 50 → 200 lines, the time of each size and its
ratio to the 5-line basket, with the query count of each (constant: asserted by
tests/integration/test_query_counts.py) and the verdict on growth being
sub-linear (200 lines, 40× the 5-line basket, must cost far less than 40×).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "200"))


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return (time.perf_counter() - start) * 1000, result


def summary(name, samples):
    samples = sorted(samples)
    p95 = samples[int(len(samples) * 0.95) - 1]
    print(f"{name:<34} median {statistics.median(samples):7.2f} ms   p95 {p95:7.2f} ms   n={len(samples)}")
    return statistics.median(samples)


def main() -> None:
    run_on_scratch_database(run)


def run() -> None:
    from omniman.models import Channel
    from omniman.services import CommitService, ModifyService, OrderService, SessionService

    print(f"database: {connection.vendor}; rounds: {ROUNDS}")
    Channel.objects.create(
        code="bench",
        name="Bench",
        config={"post_commit_directives": ["notification.send"], "order_flow": {"auto_transitions": {"on_create": "confirmed"}}},
    )
    opens, modifies, commits, transitions = [], [], [], []
    for i in range(ROUNDS):
        ms, session = timed(lambda: SessionService.open_session("bench", handle_type="table", handle_ref=str(i)))
        opens.append(ms)
        ms, session = timed(
            lambda: ModifyService.modify_session(
                session.session_key, "bench", [{"op": "add_line", "sku": "A", "qty": 2, "unit_price_q": 990}], expected_rev=session.rev
            )
        )
        modifies.append(ms)
        ms, result = timed(lambda: CommitService.commit(session.session_key, "bench", idempotency_key=uuid.uuid4().hex))
        commits.append(ms)
        ms, _ = timed(lambda: OrderService.transition(result["order_ref"], "processing", expected_status="confirmed"))
        transitions.append(ms)
    summary("open_session", opens)
    summary("modify_session (1 op)", modifies)
    summary("commit", commits)
    summary("transition", transitions)

    def basket(lines):
        from django.test.utils import CaptureQueriesContext

        mods, coms = [], []
        queries = {}
        for _ in range(max(ROUNDS // 4, 10)):
            session = SessionService.open_session("bench")
            ops = [{"op": "add_line", "sku": f"S{n}", "qty": 1, "unit_price_q": 100} for n in range(lines)]
            session = ModifyService.modify_session(session.session_key, "bench", ops)
            with CaptureQueriesContext(connection) as modify_queries:
                ms, session = timed(
                    lambda: ModifyService.modify_session(
                        session.session_key, "bench", [{"op": "set_qty", "line_id": session.lines[0]["line_id"], "qty": 3}]
                    )
                )
            mods.append(ms)
            with CaptureQueriesContext(connection) as commit_queries:
                ms, _ = timed(lambda: CommitService.commit(session.session_key, "bench", idempotency_key=uuid.uuid4().hex))
            coms.append(ms)
            queries = {"modify": len(modify_queries), "commit": len(commit_queries)}
        return (
            summary(f"modify, basket of {lines}", mods),
            summary(f"commit, basket of {lines}", coms),
            queries,
        )

    sizes = (5, 50, 200)
    growth = {lines: basket(lines) for lines in sizes}
    m5, c5, _ = growth[sizes[0]]
    print(f"growth with the basket (ratio to {sizes[0]} lines; linear would be the line ratio):")
    sublinear = True
    for lines, (m, c, queries) in growth.items():
        factor = lines / sizes[0]
        print(
            f"  {lines:>3} lines ({factor:4.0f}x): modify {m / m5:5.2f}x, commit {c / c5:5.2f}x; "
            f"queries modify {queries['modify']}, commit {queries['commit']}"
        )
        sublinear = sublinear and (lines == sizes[0] or (m / m5 < factor and c / c5 < factor))
    print("sub-linear in time:", "PASS" if sublinear else "FAIL")


if __name__ == "__main__":
    main()
