"""API fuzz benchmark: schemathesis with every check (``-c all``) over every operation, the full budget.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/omniman_fuzz_bench .venv/bin/python benchmarks/fuzz_api.py

It migrates a scratch database (created and dropped, as the other benchmarks
do), seeds it with the demo (``seed_demo``: real channels, sessions, orders and
a marketplace order), creates a manager with a token, then drives every
operation of ``/api/schema/`` in process (WSGI) through
``tests/integration/api/fuzzing.py`` — positive, negative and real-row runs —
until at least ``FUZZ_REQUESTS`` requests (default 10,000) have been sent.
Every response goes through all of schemathesis' checks. It prints the
requests, the operations, the checks, the time and every failure, and exits 1
if there was any.

``FUZZ_SEED`` (default 0) makes a run repeatable; ``FUZZ_SEED=random`` explores.
"""

from __future__ import annotations

import math
from collections import Counter
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/omniman_fuzz_bench")
os.environ.setdefault("LOG_LEVEL", "ERROR")

import django  # noqa: E402

django.setup()

import logging  # noqa: E402

from benchmarks.scratch import run_on_scratch_database  # noqa: E402

REQUESTS = int(os.environ.get("FUZZ_REQUESTS", "10000"))
SEED = os.environ.get("FUZZ_SEED", "0")


def main() -> int:
    from rest_framework.authtoken.models import Token

    from tests.integration.api import fuzzing
    from tests.integration.api.conftest import make_user

    logging.disable(logging.WARNING)  # django.request logs every 4xx; the failures are printed below
    rows = fuzzing.seed_rows()
    token = Token.objects.create(user=make_user("fuzzer", "manager")).key
    runs = fuzzing.runs()
    operations = fuzzing.operations()
    per_run = math.ceil(REQUESTS / len(runs))
    seed = None if SEED == "random" else int(SEED)
    print(f"{len(operations)} operations, {len(runs)} runs, {per_run} examples each, checks: {', '.join(fuzzing.check_names())}")
    sent = 0
    failures: list[str] = []
    statuses: Counter = Counter()
    started = time.perf_counter()
    # Hypothesis may stop a run early when it has exhausted what a schema can generate: top up round by round.
    round_seed = seed
    while sent < REQUESTS:
        before = sent
        for method, path, mode in runs:
            outcome = fuzzing.fuzz(method, path, mode, token=token, rows=rows, examples=per_run, seed=round_seed)
            sent += outcome.requests
            failures += outcome.failures
            statuses.update(outcome.statuses)
            print(f"  {method:4} {path:55} {mode:9} {outcome.requests:5} requests {len(outcome.failures):3} failures", flush=True)
        if sent == before:
            break
        round_seed = None if round_seed is None else round_seed + 1
    elapsed = time.perf_counter() - started
    print("statuses: " + ", ".join(f"{code} × {count}" for code, count in sorted(statuses.items())))
    print(f"requests: {sent}  operations: {len(operations)}  runs: {len(runs)}  failures: {len(failures)}  ({elapsed:.0f} s)")
    for failure in failures:
        print("-" * 72)
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    status = [0]

    def run():
        status[0] = main()

    run_on_scratch_database(run)
    sys.exit(status[0])
