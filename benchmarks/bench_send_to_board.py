"""Kitchen benchmark in the browser: the POS's Send → the ticket on three open boards.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python benchmarks/bench_send_to_board.py

On a scratch PostgreSQL database with the demo café (``seed_demo``), gunicorn
with the repository's ``gunicorn.conf.py`` (2 sync workers, DEBUG off; see
``benchmarks/browser.py``) and Debian's chromium: three kitchen boards (expo,
kitchen, bar; each its own signed-in browser context, polling as shipped) and
a POS page. ``BENCH_SENDS`` times (default 30) per interval, a table's round with an
espresso (bar) and scrambled eggs (kitchen) is prepared through the services
(checks run), its POS screen opened, and its Send button clicked. Each board
page stamps (``performance.timeOrigin + performance.now()``, one clock for
every page of the machine) the first time a card of the new order appears in
its DOM (``MutationObserver``); the POS page stamps the click. Between sends
the benchmark waits a random 0–1.5 s, so the sends fall anywhere in the
boards' poll cycle.

It does so for each poll interval of ``BENCH_POLL_MS`` (default
``2000,1000,500``: the old interval, 1 s and the new default), each with its
own gunicorn (``OMNIMAN_KITCHEN_POLL_MS``), and prints for each Send →
visible p50/p95/max per board and over all boards, the target (p95 ≤ 1 s),
the server time of the Send, of the poll that found nothing (``204``) and of
the one that answered the new board, the polls per second the three boards
cost, and the reference measured in the same run: the browser's ``fetch`` of
``/healthz`` and the machine's reference loop.
"""

from __future__ import annotations

import io
import os
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django  # noqa: E402

django.setup()

from benchmarks import browser as bb  # noqa: E402
from benchmarks.scratch import run_on_scratch_database  # noqa: E402

from django.db import connection  # noqa: E402

SENDS = int(os.environ.get("BENCH_SENDS", "30"))
TARGET_MS = 1000.0
STATIONS = ["expo", "kitchen", "bar"]
PASSWORD = "bench-board-password"

WATCH = """
() => {
  const seen = window.__seen = {};
  const stamp = () => {
    const now = performance.timeOrigin + performance.now();
    document.querySelectorAll("article.card[id^='card-']").forEach((card) => {
      const order = card.id.split("-")[1];
      if (!(order in seen)) { seen[order] = now; }
    });
  };
  stamp();
  new MutationObserver(stamp).observe(document.body, {subtree: true, childList: true});
}
"""

HEALTH = """
async () => {
  const out = [];
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    await (await fetch("/healthz", {cache: "no-store"})).text();
    out.push(performance.now() - t0);
  }
  return out;
}
"""

CLICK_SEND = """
() => {
  const button = document.querySelector("button.btn-commit");
  if (!button || button.disabled) { return null; }
  const at = performance.timeOrigin + performance.now();
  button.click();
  return at;
}
"""


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit(f"bench_send_to_board needs PostgreSQL (DATABASE_URL=postgres://…); this is {connection.vendor}.")
    bb.collect_static()
    run_on_scratch_database(run)


def setup() -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from omniman.contrib.stock.models import StockLevel

    call_command("seed_demo", stdout=io.StringIO())
    # The demo's stock of a dish is a few dozen: a run sends 90 rounds, and a sold-out dish disables Send.
    StockLevel.objects.filter(track=True).update(on_hand=Decimal(10**8))
    for username in ("pos", "kitchen"):
        user = get_user_model().objects.get(username=username)
        user.set_password(PASSWORD)
        user.save()


def prepare_round(table: str) -> str:
    """A table's round with a bar and a kitchen item, its checks run: the URL path of its POS screen."""
    from omniman import engine
    from omniman.services import ModifyService, SessionService

    session = SessionService.open_session("tables", handle_type="table", handle_ref=table)
    ops = [
        {"op": "add_line", "sku": "ESP", "qty": 1, "name": "Espresso", "unit_price_q": 600, "meta": {"station": "bar"}},
        {"op": "add_line", "sku": "EGGS", "qty": 1, "name": "Scrambled eggs", "unit_price_q": 2400, "meta": {"station": "kitchen"}},
    ]
    session = ModifyService.modify_session(session.session_key, "tables", ops)
    while engine.process(limit=50).claimed:
        pass
    return f"/pos/tables/s/{session.session_key}/"


def measure(base: str, port: int, poll_ms: int, rounds: list[int]) -> dict:
    """One gunicorn polling every ``poll_ms``: the sends, their latency per board, the polls' server times."""
    from omniman.models import Order

    latencies: dict[str, list[float]] = {station: [] for station in STATIONS}
    missed = 0
    with bb.gunicorn(port, env={"OMNIMAN_KITCHEN_POLL_MS": str(poll_ms)}) as log, bb.chromium() as chromium:
        boards = {}
        for station in STATIONS:
            context = chromium.new_context(viewport={"width": 1280, "height": 800}, base_url=base)
            page = context.new_page()
            bb.login(page, base, "kitchen", PASSWORD, f"/kitchen/?station={station}")
            page.evaluate(WATCH)
            boards[station] = page
        pos = chromium.new_context(viewport={"width": 1024, "height": 768}, base_url=base).new_page()
        bb.login(pos, base, "pos", PASSWORD, "/pos/")
        health = pos.evaluate(HEALTH)
        since = log.stat().st_size
        start = time.monotonic()
        for n in rounds:
            pos.goto(base + prepare_round(f"B{n}"))
            pos.wait_for_function("() => !document.querySelector('.htmx-request')")
            time.sleep(random.uniform(0, 1.5))  # anywhere in the boards' poll cycle
            clicked = pos.evaluate(CLICK_SEND)
            if clicked is None:
                pos.screenshot(path="/tmp/send_missing.png")
                print(pos.inner_text("main")[:2000])
                sys.exit("the Send button is missing or disabled")
            order = None
            deadline = time.monotonic() + 10
            while order is None and time.monotonic() < deadline:
                order = Order.objects.filter(handle_ref=f"B{n}").values_list("pk", flat=True).first()
                time.sleep(0.02)
            for station, page in boards.items():
                try:
                    page.wait_for_function(f"() => '{order}' in window.__seen", timeout=10_000)
                    latencies[station].append(page.evaluate(f"() => window.__seen['{order}']") - clicked)
                except Exception:  # noqa: BLE001 - a ticket that never showed is counted, not fatal
                    missed += 1
        elapsed = time.monotonic() - start
        health += pos.evaluate(HEALTH)
        time.sleep(0.5)
        polls = bb.server_times(log, r"^/kitchen/board/$", since=since)
        commits = bb.server_times(log, r"/commit/$", since=since)
    return {"latencies": latencies, "missed": missed, "health": health, "polls": polls, "commits": commits, "elapsed": elapsed}


def run() -> None:
    setup()
    port = bb.free_port()
    base = f"http://{bb.HOST}:{port}"
    intervals = [int(ms) for ms in os.environ.get("BENCH_POLL_MS", "2000,1000,500").split(",") if ms.strip()]
    print(
        f"database: PostgreSQL (scratch), demo café; gunicorn.conf.py, {os.environ.get('GUNICORN_WORKERS', '2')} sync workers, "
        f"DEBUG off; chromium headless; boards: {', '.join(STATIONS)}; {SENDS} sends per poll interval "
        f"({', '.join(f'{ms} ms' for ms in intervals)}); load average {bb.load_average()}"
    )
    verdicts = {}
    for i, poll_ms in enumerate(intervals):
        ref_before = bb.reference_ms()
        result = measure(base, port, poll_ms, list(range(i * SENDS, (i + 1) * SENDS)))
        ref_after = bb.reference_ms()
        print(f"\n-- boards polling every {poll_ms} ms (OMNIMAN_KITCHEN_POLL_MS={poll_ms})")
        print(f"machine reference (sum(range(10**6)), best of 5): {ref_before:.1f} ms before, {ref_after:.1f} ms after; load {bb.load_average()}")
        bb.summary("reference: fetch /healthz (browser)", result["health"])
        for station in STATIONS:
            bb.summary(f"Send → visible, {station} board", result["latencies"][station])
        every = [x for xs in result["latencies"].values() for x in xs]
        ok = bb.summary("Send → visible, all boards", every, TARGET_MS)
        polls = result["polls"]
        bb.summary("server: commit (Send)", [ms for _p, _s, ms in result["commits"]])
        bb.summary("server: poll, nothing changed (204)", [ms for _p, status, ms in polls if status == 204])
        bb.summary("server: poll, board changed (200)", [ms for _p, status, ms in polls if status == 200])
        health_p50 = sorted(result["health"])[len(result["health"]) // 2]
        print(
            f"{'':<34} {len(polls) / result['elapsed']:.1f} polls/s for {len(STATIONS)} boards; "
            f"Send → visible p95 / healthz p50: {bb.percentile(every, 0.95) / health_p50:.1f}×; tickets never shown: {result['missed']}"
        )
        verdicts[poll_ms] = ok and not result["missed"]
    bb.close_other_connections()  # the ORM's connection made beside Playwright's loop, before the database is dropped
    print("\noverall:", ", ".join(f"{ms} ms {'PASS' if ok else 'FAIL'}" for ms, ok in verdicts.items()))


if __name__ == "__main__":
    main()
