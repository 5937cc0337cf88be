#!/usr/bin/env python
"""The reference for benchmarks/bench_directives.py: a bare ``SKIP LOCKED`` loop, one job per transaction.

No framework, no ORM: psycopg and four statements per job, the textbook queue
worker that runs a job inside the transaction that marks it done (at least
once, effects and done mark committed together)::

    BEGIN;
    SELECT id, payload FROM bench_bare_job WHERE status = 'queued'
        ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED;
    -- the job (a no-op, as for every system in the benchmark)
    UPDATE bench_bare_job SET status = 'done', done_at = clock_timestamp() WHERE id = %s;
    COMMIT;

One row version per job and one commit per job. The table
(:data:`TABLE_SQL`) has the primary key and a partial index on queued rows.
When nothing is queued it sleeps ``IDLE`` seconds. SIGTERM stops it after the
job in hand. ``DATABASE_URL`` says where; ``PGAPPNAME`` names the connection.
"""

from __future__ import annotations

import os
import signal
import time

TABLE = "bench_bare_job"
TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id bigserial PRIMARY KEY,
    status text NOT NULL DEFAULT 'queued',
    payload jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    done_at timestamptz
);
CREATE INDEX IF NOT EXISTS {TABLE}_queued ON {TABLE} (id) WHERE status = 'queued';
"""
CLAIM_SQL = f"SELECT id, payload FROM {TABLE} WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
DONE_SQL = f"UPDATE {TABLE} SET status = 'done', done_at = clock_timestamp() WHERE id = %s"
IDLE = 0.005


def main() -> int:
    import psycopg

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        with conn.cursor() as cursor:
            while not stopping:
                with conn.transaction():
                    row = cursor.execute(CLAIM_SQL, prepare=True).fetchone()
                    if row is not None:
                        cursor.execute(DONE_SQL, [row[0]], prepare=True)
                if row is None:
                    time.sleep(IDLE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
