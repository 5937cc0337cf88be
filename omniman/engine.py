"""The directive engine: claim due rows, run their handlers, record the outcome.

At least once, never twice at the same time:

* **claim** — one short statement marks up to ``limit`` due rows ``running``
  (``attempts + 1``), taking them with ``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL, so overlapping passes and workers never claim the same row;
* **run** — ``started_at`` is stamped when the directive actually starts,
  then the handler runs inside a transaction that also marks it ``done``,
  guarded by the fence ``status='running' AND attempts=<claimed attempt>``:
  a run presumed dead and re-queued can never overwrite the newer attempt —
  its own writes roll back with the refused ``done``;
* **fail** — ``last_error`` (with the exception type) and a re-queue with
  exponential backoff plus up to 10 % jitter, or ``failed`` once
  ``DIRECTIVE_MAX_ATTEMPTS`` runs have failed;
* **stuck** — rows ``running`` for longer than
  ``DIRECTIVE_STUCK_AFTER_SECONDS`` (a crashed worker) are re-queued by the
  next pass, or ``failed`` when they have no attempts left;
* **database-only batches** — directives of ``database_only`` handlers are
  claimed and marked ``done`` by the first statement of a batch transaction
  that runs their handlers and commits once (:func:`_run_claimed_batch`):
  one row version each; a worker that dies mid-batch leaves them ``queued``;
* **lost connection** — a run cut off by the database going away is not a
  handler failure: :func:`execute` re-raises, and the :class:`Worker`
  reconnects and gives the rows it held back (:func:`requeue_interrupted`)
  at once, without waiting for the stuck timeout.

Settings are read at call time. The kernel knows nothing of HTTP.
"""

from __future__ import annotations

import logging
import random
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from omniman import conf, registry
from omniman.models import Directive, WorkerHeartbeat
from omniman.models.directive import DirectiveManager
from omniman.models.worker import worker_name
from omniman.signals import directive_enqueued

logger = logging.getLogger("omniman.directives")

NOTIFY_CHANNEL = "omniman_directives"
MAX_ERROR_LENGTH = 4000
# What a lost or refused database connection raises (Django wraps the driver's errors in these).
DATABASE_ERRORS = (OperationalError, InterfaceError)


class _Fenced(Exception):
    """The directive moved on (re-queued, or finished by a newer attempt) while this run worked."""


@dataclass
class PassResult:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    fenced: int = 0
    released: int = 0
    stuck_requeued: int = 0
    stuck_failed: int = 0
    outcomes: list[tuple[int, str]] = field(default_factory=list)

    def add(self, directive_id: int, outcome: str) -> None:
        self.outcomes.append((directive_id, outcome))
        setattr(self, outcome, getattr(self, outcome) + 1)

    def __str__(self) -> str:
        parts = [f"{name} {getattr(self, name)}" for name in ("claimed", "done", "retried", "failed", "fenced", "released", "stuck_requeued", "stuck_failed") if getattr(self, name)]
        return ", ".join(parts) or "nothing due"


def backoff_seconds(attempts: int) -> float:
    """Delay before the next run after ``attempts`` failed runs: ``min(BASE·2^(attempts−1), MAX)`` + ≤10 % jitter."""
    base = float(conf.get("DIRECTIVE_BACKOFF_BASE_SECONDS"))
    cap = float(conf.get("DIRECTIVE_BACKOFF_MAX_SECONDS"))
    delay = min(base * (2 ** max(attempts - 1, 0)), cap)
    return delay + delay * random.uniform(0, 0.1)


def _runnable_topics(topics: Iterable[str] | None) -> list[str]:
    registered = set(registry.get_directive_handlers())
    if topics:
        registered &= set(topics)
    return sorted(registered)


def requeue_stuck() -> tuple[int, int]:
    """Re-queue rows stuck in ``running`` (attempts left) or fail them; returns (requeued, failed)."""
    now = timezone.now()
    stuck_after = float(conf.get("DIRECTIVE_STUCK_AFTER_SECONDS"))
    cutoff = now - timedelta(seconds=stuck_after)
    max_attempts = int(conf.get("DIRECTIVE_MAX_ATTEMPTS"))
    stuck = Directive.objects.filter(
        Q(status=Directive.Status.RUNNING)
        & (Q(started_at__lt=cutoff) | Q(started_at__isnull=True, updated_at__lt=cutoff))
    )
    message = f"stuck: running for more than {stuck_after:g} s (the worker died or hung); re-queued"
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # A row locked right now is in a live batch transaction (marked done, about to commit):
            # not stuck, and not worth waiting for.
            stuck = Directive.objects.filter(pk__in=stuck.select_for_update(skip_locked=True).values("pk"))
        requeued = stuck.filter(attempts__lt=max_attempts).update(
            status=Directive.Status.QUEUED, available_at=now, last_error=message, updated_at=now
        )
        failed = stuck.filter(attempts__gte=max_attempts).update(
            status=Directive.Status.FAILED,
            last_error=f"stuck: running for more than {stuck_after:g} s on its last attempt ({max_attempts}); failed",
            updated_at=now,
        )
    if requeued or failed:
        logger.warning("stuck directives", extra={"requeued": requeued, "failed": failed})
    return requeued, failed


def claim(
    *,
    topics: Iterable[str] | None = None,
    limit: int = 50,
    ids: Iterable[int] | None = None,
    start: bool = False,
    done: bool = False,
    peek: Iterable[str] = (),
) -> list[Directive]:
    """Mark up to ``limit`` due, queued rows of runnable topics ``running`` and return them.

    One ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)
    RETURNING …`` statement: in autocommit it is its own transaction (no
    ``BEGIN``/``COMMIT`` round trips). ``start`` stamps ``started_at`` in it
    (a run that starts at once); otherwise each run stamps its own start.

    ``done`` marks the rows ``done`` instead (``started_at`` stamped,
    ``last_error`` cleared): the claim of a batch that runs its handlers in the
    caller's open transaction and commits once (:func:`_run_claimed_batch`) —
    one row version per directive. Never in autocommit: the rows would be
    ``done`` before their handlers ran.

    ``peek`` (topics): also tell whether a row of those topics is due — on
    PostgreSQL in the same statement — by setting the returned list's
    ``peeked`` attribute (see :func:`process`).
    """
    runnable = _runnable_topics(topics)
    peek = list(peek)
    if not runnable or limit <= 0:
        return _Claimed([], peeked=_due_exists(peek)) if peek else []
    table = Directive._meta.db_table
    now = timezone.now()
    status = Directive.Status.DONE if done else Directive.Status.RUNNING
    params: list = [status, now if (start or done) else None, now, Directive.Status.QUEUED, now]
    topic_marks = ", ".join(["%s"] * len(runnable))
    params.extend(runnable)
    id_filter = ""
    if ids is not None:
        ids = list(ids)
        if not ids:
            return []
        id_filter = f" AND id IN ({', '.join(['%s'] * len(ids))})"
        params.extend(ids)
    params.append(int(limit))
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    due = (
        f"SELECT id FROM {table} WHERE status = %s AND available_at <= %s "
        f"AND topic IN ({topic_marks}){id_filter} ORDER BY available_at, id LIMIT %s{lock}"
    )
    # On PostgreSQL the due ids are an array computed once (an InitPlan), then found by primary key:
    # with "id IN (subquery)" the planner may hash-join the subquery against a scan of the whole table.
    which = f"id = ANY(ARRAY({due}))" if connection.vendor == "postgresql" else f"id IN ({due})"
    clear = ", last_error = ''" if done else ""
    columns = "id, topic, payload, attempts, available_at, started_at, dedupe_key, created_at"
    sql = (
        f"UPDATE {table} SET status = %s, attempts = attempts + 1, started_at = %s, updated_at = %s{clear} "
        f"WHERE {which} RETURNING {columns}"
    )
    peeked = None
    if peek and connection.vendor == "postgresql":
        # One statement: the claim, and one more row (its id NULL) if a row of the peeked topics is due.
        sql = (
            f"WITH claimed AS ({sql}) SELECT {columns} FROM claimed UNION ALL "
            f"SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL WHERE EXISTS ("
            f"SELECT 1 FROM {table} WHERE status = %s AND available_at <= %s "
            f"AND topic IN ({', '.join(['%s'] * len(peek))}) ORDER BY available_at, id LIMIT 1)"
        )  # the ORDER BY keeps the look on the due index (without it the planner may scan the table)
        params += [Directive.Status.QUEUED, now, *peek]
        rows = list(Directive.objects.raw(sql, params))
        claimed = [row for row in rows if row.pk is not None]
        peeked = len(claimed) < len(rows)
    else:
        claimed = list(Directive.objects.raw(sql, params))
        if peek:
            peeked = _due_exists(peek)
    for directive in claimed:
        directive.status = status
    claimed.sort(key=lambda d: (d.available_at, d.pk))
    return _Claimed(claimed, peeked=peeked) if peek else claimed


class _Claimed(list):
    """Claimed rows, and whether a row of the peeked topics was due (:func:`claim`'s ``peek``)."""

    def __init__(self, rows, *, peeked: bool):
        super().__init__(rows)
        self.peeked = peeked


def _due_exists(topics: list[str]) -> bool:
    return Directive.objects.filter(
        status=Directive.Status.QUEUED, available_at__lte=timezone.now(), topic__in=topics
    ).exists()


def _fence(directive: Directive):
    return Directive.objects.filter(pk=directive.pk, status=Directive.Status.RUNNING, attempts=directive.attempts)


# The two statements every run makes, written out: this is the hot path, and
# the ORM's query building cost as much as the round trips.
_STARTED_SQL = "UPDATE {table} SET started_at = %s, updated_at = %s WHERE id = %s AND status = 'running' AND attempts = %s"
_DONE_SQL = "UPDATE {table} SET status = 'done', last_error = '', updated_at = %s WHERE id = %s AND status = 'running' AND attempts = %s"
# "This one is done, the next one starts", in one statement (one round trip), each row under its own fence.
_DONE_AND_START_SQL = (
    "UPDATE {table} SET "
    "status = CASE WHEN id = %s THEN 'done' ELSE status END, "
    "last_error = CASE WHEN id = %s THEN '' ELSE last_error END, "
    "started_at = CASE WHEN id = %s THEN %s ELSE started_at END, "
    "updated_at = %s "
    "WHERE (id = %s AND status = 'running' AND attempts = %s) OR (id = %s AND status = 'running' AND attempts = %s) "
    "RETURNING id"
)


def _fenced_update(template: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(template.format(table=Directive._meta.db_table), params)
        return cursor.rowcount


def _done_and_start(directive: Directive, then: Directive, now) -> tuple[bool, bool]:
    """Mark ``directive`` done and stamp ``then``'s start; returns which of the two fences held."""
    with connection.cursor() as cursor:
        cursor.execute(
            _DONE_AND_START_SQL.format(table=Directive._meta.db_table),
            [directive.pk, directive.pk, then.pk, now, now, directive.pk, directive.attempts, then.pk, then.attempts],
        )
        matched = {row[0] for row in cursor.fetchall()}
    return directive.pk in matched, then.pk in matched


def execute(directive: Directive, *, then: Directive | None = None) -> str:
    """Run one claimed directive; returns ``done``, ``retried``, ``failed``, ``fenced`` or ``released``.

    ``then`` is the next directive of the batch: its ``started_at`` is stamped
    in this run's transaction, just before the commit that ends this run, so a
    batch costs one commit per directive instead of two (the commit, with its
    WAL flush, is what a directive costs). If this run fails, ``then`` stamps
    itself when it starts.

    A handler's exception is recorded on the row (retry or ``failed``); the
    database connection itself being lost is re-raised instead (``OperationalError``
    or ``InterfaceError``): the row is still ``running`` under this attempt, for
    the caller to give back once it reconnects.
    """
    handler = registry.get_directive_handler(directive.topic)
    if handler is None:  # unregistered since the claim: give the row back untouched
        _fence(directive).update(status=Directive.Status.QUEUED, attempts=directive.attempts - 1, started_at=None, updated_at=timezone.now())
        return "released"
    if directive.started_at is None:
        started_at = timezone.now()
        if not _fenced_update(_STARTED_SQL, [started_at, started_at, directive.pk, directive.attempts]):
            return "fenced"
        directive.started_at = started_at
    raw = connection.connection  # the driver's connection this run is on
    ctx = {"attempt": directive.attempts, "max_attempts": int(conf.get("DIRECTIVE_MAX_ATTEMPTS")), "actor": f"directive:{directive.topic}"}
    try:
        with transaction.atomic():
            handler.handle(message=directive, ctx=ctx)
            finished_at = timezone.now()
            if then is not None and registry.get_directive_handler(then.topic) is not None:
                done, started = _done_and_start(directive, then, finished_at)
                if not done:
                    raise _Fenced()
                if started:
                    then.started_at = finished_at
            elif not _fenced_update(_DONE_SQL, [finished_at, directive.pk, directive.attempts]):
                raise _Fenced()
    except _Fenced:
        logger.warning(
            "directive fenced out",
            extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts},
        )
        return "fenced"
    except Exception as exc:  # the handler failed: record it, never crash the worker
        if then is not None:
            then.started_at = None  # the stamp rolled back with this run
        if isinstance(exc, DATABASE_ERRORS) and _connection_lost(raw, exc):
            # Not the handler's fault: the database went away (its transaction with it).
            # The caller gives the row back once it reconnects (Worker → requeue_interrupted).
            raise
        return _record_failure(directive, exc)
    directive.status = Directive.Status.DONE
    logger.info("directive done", extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts})
    return "done"


# SQLSTATEs of a connection cut off by the server or a pooler: class 08 (connection exception, also
# what PgBouncer answers when its server connection died) and 57P01-57P03 (shutdown, crash, starting up).
LOST_CONNECTION_SQLSTATES = ("57P01", "57P02", "57P03")


def _connection_lost(raw, exc: BaseException) -> bool:
    """True when the run lost its database connection rather than failed: the driver connection
    ``raw`` it was on is closed or replaced (Django reconnects when it restores autocommit after
    the failed transaction), or the server or a pooler said the connection was cut off."""
    if raw is None or connection.connection is not raw or bool(getattr(raw, "closed", False)):
        return True
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    return sqlstate.startswith("08") or sqlstate in LOST_CONNECTION_SQLSTATES


def _record_failure(directive: Directive, exc: BaseException) -> str:
    outcome, fields = _failure_fields(directive, exc, int(conf.get("DIRECTIVE_MAX_ATTEMPTS")))
    if not _fence(directive).update(**fields):
        return "fenced"
    _log_failure(directive, outcome, exc)
    return outcome


def release(directives: Iterable[Directive]) -> int:
    """Give claimed rows that did not run back (a worker stopping), as if never claimed."""
    released = 0
    for directive in directives:
        released += _fence(directive).update(
            status=Directive.Status.QUEUED, attempts=directive.attempts - 1, started_at=None, updated_at=timezone.now()
        )
    return released


# A batch transaction holds at most this many directives (each in its own savepoint: PostgreSQL keeps
# 64 subtransactions per backend in shared memory, past that every snapshot gets slower)…
BATCH_MAX_DIRECTIVES = 50
# …and commits once it has run this long: the locks its handlers took (a stock level, a session row)
# and its done marks are held until then, so a request waiting on one waits at most about this long.
BATCH_MAX_SECONDS = 0.1
BATCH_MAX_SAVEPOINTS = 60  # the batch's and its handlers' own, below PostgreSQL's 64 cached subtransactions


def runs_in_batch(handler) -> bool:
    """Whether a handler may share the pass's batch transaction (the default).

    A handler with ``own_transaction = True`` — one that calls an outside
    service (a payment provider, a webhook) — runs in a transaction of its own
    that commits before the next directive starts, as :func:`execute` does: its
    outside effect is never followed by a wait for other directives' work, nor
    undone with a batch that could not commit.
    """
    return not getattr(handler, "own_transaction", False)


def claims_in_batch(handler) -> bool:
    """Whether a handler's directives are claimed inside the batch transaction (``database_only = True``).

    Such a handler says its effects are **all in the database** (rolled back
    with the batch, nothing sent outside) and that it is **quick**: the worker
    claims its due rows and marks them ``done`` in one statement inside the
    batch transaction, runs the handlers, and commits once — one row version
    and a share of one commit per directive, no committed ``running`` claim.
    A worker that dies mid-batch takes the claim down with its effects: the
    rows are ``queued`` again at once, with the attempt not counted. That is
    why only such handlers qualify: a handler with outside effects (a payment,
    an email, a printer) or a slow one (it holds the batch's locks while it
    runs, and a run that kills its worker would be retried with no attempt
    ever recorded) keeps the committed ``running`` claim.
    """
    return bool(getattr(handler, "database_only", False)) and runs_in_batch(handler)


def process(
    *,
    topics: Iterable[str] | None = None,
    limit: int = 50,
    should_stop: Callable[[], bool] = lambda: False,
    requeue: bool = True,
    held: list[Directive] | None = None,
) -> PassResult:
    """One pass: re-queue stuck rows (unless ``requeue`` is false), then claim and run up to ``limit`` due
    directives of ordinary (and ``own_transaction``) handlers, then up to ``limit`` of ``database_only`` ones.

    The database-only ones (:func:`claims_in_batch`) are claimed inside their
    batch transaction (:func:`_run_claimed_batch`), and only if the first
    claim's statement saw one due (its ``peek``). For the others the claim is committed first (the rows are ``running``, ``started_at`` is the
    claim's time), so a worker killed mid-pass leaves them for the stuck pass.
    Then the claimed directives run in **batch transactions**: each handler in a
    savepoint followed by its fenced ``done``; a handler that fails rolls back to
    its savepoint and its row is marked for retry (or ``failed``) in the same
    transaction; a fenced run rolls back to its savepoint too. The batch commits
    once — after ``BATCH_MAX_DIRECTIVES`` directives, ``BATCH_MAX_SECONDS``, the
    end of the pass or a stop — so a directive costs two row versions (claimed,
    done) and a share of one commit. Handlers with ``own_transaction`` run on
    their own (:func:`runs_in_batch`).

    ``held`` (a worker's list) holds the claimed rows whose outcome is not
    committed yet: if the database connection is lost mid-pass, the worker
    gives them back with :func:`requeue_interrupted` once it is back.
    """
    result = PassResult()
    if requeue:
        result.stuck_requeued, result.stuck_failed = requeue_stuck()
    runnable = _runnable_topics(topics)
    in_batch = [topic for topic in runnable if claims_in_batch(registry.get_directive_handler(topic))]
    others = [topic for topic in runnable if topic not in in_batch]
    batch_due = bool(in_batch)
    if others:
        claimed = claim(topics=others, limit=limit, start=True, peek=in_batch)
        if in_batch:
            batch_due = claimed.peeked
        _run_committed_claims(claimed, result, held, should_stop)
    if batch_due and not should_stop():
        _run_claimed_batch(in_batch, limit, result, should_stop)
    return result


def _run_committed_claims(
    claimed: list[Directive], result: PassResult, held: list[Directive] | None, should_stop: Callable[[], bool]
) -> None:
    """Run rows whose ``running`` claim is committed: in batch transactions, or alone (``own_transaction``)."""
    result.claimed = len(claimed)
    if held is None:
        held = []
    held[:] = claimed
    claimed_at = {}
    for directive in claimed:
        # In memory, "started" means its handler ran (requeue_interrupted gives an unstarted row its attempt back).
        claimed_at[directive.pk], directive.started_at = directive.started_at, None
    batch = _Batch(result, held)
    try:
        for index, directive in enumerate(claimed):
            if should_stop():
                batch.commit()
                result.released += release(claimed[index:])
                held.clear()
                break
            handler = registry.get_directive_handler(directive.topic)
            directive.started_at = claimed_at[directive.pk]
            if handler is None or not runs_in_batch(handler):
                batch.commit()
                result.add(directive.pk, execute(directive))
                held.remove(directive)
                continue
            batch.run(directive, handler)
        batch.commit()
    except BaseException:
        batch.abandon()
        raise


class _HandlerFailed(Exception):
    """A handler of a batch claimed in its transaction raised (or left it marked for rollback)."""

    def __init__(self, directive: Directive, error: BaseException):
        super().__init__(f"{type(error).__name__}: {error}")
        self.directive, self.error = directive, error


def _run_claimed_batch(topics: list[str], limit: int, result: PassResult, should_stop: Callable[[], bool]) -> None:
    """Claim up to ``limit`` due directives of ``database_only`` topics, run them, commit once.

    **Optimistic**: one transaction; its first statement claims the rows and
    marks them ``done`` (``attempts + 1``, ``FOR UPDATE SKIP LOCKED``), the
    handlers run back to back with no savepoint, then the commit — a directive
    costs one row version, its handler's own statements and a share of two.
    If a handler raises, everything rolls back (the claim too: the rows are
    ``queued`` as before) and the batch runs **carefully**: the same rows are
    claimed again in a new transaction, each handler runs in its own savepoint,
    a handler that raises rolls back to it and its row is updated for retry
    (backoff, ``last_error``) or ``failed`` in the same transaction; the
    handler that failed first is not run again, its failure is recorded. The
    batch stops taking directives after ``BATCH_MAX_SECONDS``,
    ``BATCH_MAX_SAVEPOINTS`` or a stop signal: the rows it did not run are
    given back (``queued``, their attempt as before) before it commits.

    No fence is needed: until the commit the rows are locked by this
    transaction and nobody else can take them; if the process dies, the claim
    dies with the effects. A lost connection is re-raised (nothing to give back).
    """
    max_attempts = int(conf.get("DIRECTIVE_MAX_ATTEMPTS"))
    claimed: list[Directive] = []
    ran: list[tuple[Directive, str]] = []
    failed: _HandlerFailed | None = None
    committing = False
    pace_key = tuple(topics)
    try:
        with transaction.atomic():
            claimed = claim(topics=topics, limit=_batch_size(pace_key, limit), done=True)
            result.claimed += len(claimed)
            started = time.monotonic()
            try:
                ran = _run_batch_handlers(claimed, should_stop, max_attempts, careful=False)
            except _HandlerFailed as exc:
                failed = exc
                raise
            _record_pace(pace_key, time.monotonic() - started, sum(outcome == "done" for _, outcome in ran))
            committing = True
    except _HandlerFailed:
        pass
    except Exception as exc:
        if not committing or (isinstance(exc, DATABASE_ERRORS) and _connection_lost(connection.connection, exc)):
            raise
        ran = _run_one_by_one(claimed, exc)  # the commit was refused: nothing stayed, each runs alone
    if failed is not None:
        logger.info("batch rolled back (%s); running its directives again, each in a savepoint", type(failed.error).__name__)
        ran = _run_claimed_carefully(claimed, failed, topics, should_stop, max_attempts)
    for directive, outcome in ran:
        result.add(directive.pk, outcome)
        if outcome == "done":
            logger.info("directive done", extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts})
    # Rows another worker took between the two attempts of a redone batch: not run here.
    result.released += len(claimed) - len(ran)


# Seconds per directive of the last database-only batches, by topics (this process's own worker).
_BATCH_PACE: dict[tuple[str, ...], float] = {}


def _batch_size(key: tuple[str, ...], limit: int) -> int:
    """How many rows a database-only batch claims: ``limit``, or fewer when its handlers have been slow
    enough that ``limit`` of them would pass ``BATCH_MAX_SECONDS`` — the rows past the bound would only be
    given back (a second row version each) and claimed again."""
    pace = _BATCH_PACE.get(key)
    if not pace:
        return limit
    return max(1, min(limit, int(BATCH_MAX_SECONDS / pace) + 1))


def _record_pace(key: tuple[str, ...], seconds: float, ran: int) -> None:
    if ran:
        pace = seconds / ran
        previous = _BATCH_PACE.get(key)
        _BATCH_PACE[key] = pace if previous is None else 0.5 * previous + 0.5 * pace


def _run_batch_handlers(
    claimed: list[Directive], should_stop: Callable[[], bool], max_attempts: int, *, careful: bool, failed: _HandlerFailed | None = None
) -> list[tuple[Directive, str]]:
    """Run the handlers of rows claimed ``done`` in the open transaction; their outcomes.

    Optimistic (``careful`` false): back to back, the first failure raises
    :class:`_HandlerFailed`. Careful: each in a savepoint, a failure rolls back
    to it and re-marks its row for retry; ``failed``'s directive is not run,
    its failure is recorded. Rows not run (the batch's bounds, a stop) are
    given back, and reported ``released``.
    """
    deadline = time.monotonic() + BATCH_MAX_SECONDS
    savepoints_at = connection.savepoint_state
    ran: list[tuple[Directive, str]] = []
    for index, directive in enumerate(claimed):
        bounded = time.monotonic() >= deadline or connection.savepoint_state - savepoints_at >= BATCH_MAX_SAVEPOINTS
        if index and (bounded or should_stop()):
            _give_back_in_batch(claimed[index:])
            ran += [(rest, "released") for rest in claimed[index:]]
            break
        handler = registry.get_directive_handler(directive.topic)
        if failed is not None and directive.pk == failed.directive.pk:
            ran.append((directive, _mark_failure_in_batch(directive, failed.error, max_attempts)))
            continue
        ctx = {"attempt": directive.attempts, "max_attempts": max_attempts, "actor": f"directive:{directive.topic}"}
        raw = connection.connection
        try:
            # Careful: its savepoint, so a failure undoes its writes and on_commit callbacks alone.
            with transaction.atomic() if careful else nullcontext():
                handler.handle(message=directive, ctx=ctx)
                if connection.needs_rollback:
                    raise _LeftForRollback("the handler left the transaction marked for rollback")
        except Exception as exc:
            if isinstance(exc, DATABASE_ERRORS) and _connection_lost(raw, exc):
                raise
            if not careful:
                raise _HandlerFailed(directive, exc) from exc
            ran.append((directive, _mark_failure_in_batch(directive, exc, max_attempts)))
            continue
        ran.append((directive, "done"))
    return ran


def _run_claimed_carefully(
    claimed: list[Directive], failed: _HandlerFailed, topics: list[str], should_stop: Callable[[], bool], max_attempts: int
) -> list[tuple[Directive, str]]:
    """The careful run of a batch whose optimistic attempt failed (see :func:`_run_claimed_batch`)."""
    ids = [directive.pk for directive in claimed]
    committing = False
    again: list[Directive] = []
    try:
        with transaction.atomic():
            again = claim(topics=topics, ids=ids, limit=len(ids), done=True)  # what another worker did not take meanwhile
            ran = _run_batch_handlers(again, should_stop, max_attempts, careful=True, failed=failed)
            committing = True
    except Exception as exc:
        if not committing or (isinstance(exc, DATABASE_ERRORS) and _connection_lost(connection.connection, exc)):
            raise
        return _run_one_by_one(again, exc)
    return ran


def _give_back_in_batch(directives: list[Directive]) -> None:
    """Rows claimed ``done`` in the open transaction that will not run in it: ``queued`` again, attempt as before."""
    Directive.objects.filter(pk__in=[directive.pk for directive in directives]).update(
        status=Directive.Status.QUEUED, attempts=F("attempts") - 1, started_at=None, updated_at=timezone.now()
    )
    for directive in directives:
        directive.status, directive.attempts, directive.started_at = Directive.Status.QUEUED, directive.attempts - 1, None


def _failure_fields(directive: Directive, exc: BaseException, max_attempts: int) -> tuple[str, dict]:
    """The outcome (``retried`` or ``failed``) and the row's fields after ``directive``'s run raised ``exc``."""
    now = timezone.now()
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
    error = f"{type(exc).__name__}: {exc}\n\n{detail}"[:MAX_ERROR_LENGTH]
    if directive.attempts >= max_attempts:
        return "failed", {"status": Directive.Status.FAILED, "last_error": error, "updated_at": now}
    return "retried", {
        "status": Directive.Status.QUEUED,
        "last_error": error,
        "available_at": now + timedelta(seconds=backoff_seconds(directive.attempts)),
        "updated_at": now,
    }


def _log_failure(directive: Directive, outcome: str, exc: BaseException) -> None:
    log = logger.error if outcome == "failed" else logger.warning
    log(
        "directive %s", outcome,
        extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts, "error": f"{type(exc).__name__}: {exc}"},
    )


def _mark_failure_in_batch(directive: Directive, exc: BaseException, max_attempts: int) -> str:
    """A row claimed ``done`` in the open transaction whose handler raised: retry (backoff) or ``failed``, in the batch."""
    outcome, fields = _failure_fields(directive, exc, max_attempts)
    Directive.objects.filter(pk=directive.pk).update(**fields)
    directive.status = fields["status"]
    _log_failure(directive, outcome, exc)
    return outcome


def _run_one_by_one(directives: list[Directive], why: BaseException) -> list[tuple[Directive, str]]:
    """A batch's commit was refused, so nothing of it stayed: each directive runs alone, in one
    transaction of its own (as a request's dispatch does), its failure recorded with its attempt."""
    logger.warning(
        "batch commit refused (%s); running its %d directives one by one", type(why).__name__, len(directives),
        extra={"error": f"{type(why).__name__}: {why}"[:500]},
    )
    ran = []
    for directive in directives:
        handler = registry.get_directive_handler(directive.topic)
        outcome = _dispatch_in_one_transaction(directive.pk, directive.topic, handler) if handler is not None else None
        ran.append((directive, outcome or "released"))  # None: another worker took it meanwhile
    return ran


class _Redo(Exception):
    """The batch's optimistic attempt did not hold (a handler failed, a row was fenced): roll it back."""


class _Batch:
    """The open batch transaction of a pass: directives run, their outcomes known once it commits.

    A batch first runs **optimistically**: the handlers one after the other with
    no savepoint, then one fenced ``UPDATE … SET status = 'done'`` for all of
    them, and the commit — a directive costs its handler's own statements and a
    share of three. If a handler raises (or leaves the transaction marked for
    rollback), or a row turns out fenced, the whole attempt rolls back (its
    writes and its ``on_commit`` callbacks with it) and the same directives run
    again **carefully**, each in its own savepoint (:func:`_run_in_savepoint`),
    where a failure is recorded for that directive alone. Handlers are
    idempotent and at least once: running one again after a rollback is allowed,
    and handlers with outside effects do not come here (``own_transaction``).
    """

    def __init__(self, result: PassResult, held: list[Directive]):
        self.result = result
        self.held = held
        self.atomic = None
        self.items: list[tuple[Directive, object]] = []  # (directive, handler) run in the open transaction
        self.ran: list[tuple[Directive, str]] = []  # their outcomes (optimistic: "done", pending the final mark)
        self.careful = False
        self.deadline = 0.0
        self.savepoints_at = 0
        self.open_savepoint: str | None = None  # the last directive's, released by the next one's first statement
        self.max_attempts = int(conf.get("DIRECTIVE_MAX_ATTEMPTS"))

    def _open(self) -> None:
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.savepoints_at = connection.savepoint_state
        self.open_savepoint = None

    def run(self, directive: Directive, handler) -> None:
        if self.atomic is None:
            self._open()
            self.deadline = time.monotonic() + BATCH_MAX_SECONDS
            self.careful = False
        self.items.append((directive, handler))
        if self.careful:
            self._run_carefully(directive, handler)
        else:
            raw = connection.connection
            ctx = {"attempt": directive.attempts, "max_attempts": self.max_attempts, "actor": f"directive:{directive.topic}"}
            try:
                handler.handle(message=directive, ctx=ctx)
                if connection.needs_rollback:
                    raise _Redo("the handler left the transaction marked for rollback")
            except Exception as exc:  # noqa: BLE001 - recorded by the careful run
                if isinstance(exc, DATABASE_ERRORS) and _connection_lost(raw, exc):
                    raise
                self._redo(exc, failed=directive)
            else:
                self.ran.append((directive, "done"))
        # Savepoints made by the batch and its handlers (each may take a subtransaction id).
        savepoints = connection.savepoint_state - self.savepoints_at
        if len(self.items) >= BATCH_MAX_DIRECTIVES or savepoints >= BATCH_MAX_SAVEPOINTS or time.monotonic() >= self.deadline:
            self.commit()

    def _run_carefully(self, directive: Directive, handler) -> None:
        outcome, self.open_savepoint = _run_in_savepoint(directive, handler, self.max_attempts, release=self.open_savepoint)
        self.ran.append((directive, outcome))

    def _redo(self, why: BaseException, *, failed: Directive | None = None) -> None:
        """Roll the optimistic attempt back and run its directives again, each in a savepoint;
        ``failed``, whose handler raised ``why``, is not run again: its failure is recorded."""
        logger.info("batch rolled back (%s); running its directives again, each in a savepoint", type(why).__name__)
        atomic, self.atomic = self.atomic, None
        atomic.__exit__(_Redo, _Redo(), None)  # rolls back (and drops the on_commit callbacks)
        self._open()
        self.careful = True
        items, self.items, self.ran = self.items, [], []
        for directive, handler in items:
            self.items.append((directive, handler))
            if directive is failed:
                self.ran.append((directive, _record_failure(directive, why)))
            else:
                self._run_carefully(directive, handler)

    def _mark_done(self) -> None:
        """The optimistic attempt's end: all its rows ``done`` in one statement, each under its fence."""
        if not self.ran:
            return
        rows = [directive for directive, _ in self.ran]
        table = Directive._meta.db_table
        fences = " OR ".join(["(id = %s AND attempts = %s)"] * len(rows))
        params: list = [timezone.now()]
        for directive in rows:
            params += [directive.pk, directive.attempts]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET status = 'done', last_error = '', updated_at = %s "
                f"WHERE status = 'running' AND ({fences}) RETURNING id",
                params,
            )
            marked = {row[0] for row in cursor.fetchall()}
        if len(marked) != len(rows):
            self._redo(_Fenced())

    def commit(self) -> None:
        if self.atomic is None:
            return
        raw = connection.connection
        if not self.careful:
            self._mark_done()
        atomic, self.atomic = self.atomic, None
        ran, self.ran, self.items = self.ran, [], []
        try:
            atomic.__exit__(None, None, None)
        except Exception as exc:  # noqa: BLE001 - the commit itself was refused
            if isinstance(exc, DATABASE_ERRORS) and _connection_lost(raw, exc):
                raise  # the rows stay held: the worker gives them back once it reconnects
            # Nothing of the batch stays (done marks, retries, effects): each directive runs again, alone.
            logger.warning(
                "batch commit refused (%s); running its %d directives one by one", type(exc).__name__, len(ran),
                extra={"error": f"{type(exc).__name__}: {exc}"[:500]},
            )
            ran = [(directive, execute(directive)) for directive, _ in ran]
        for directive, outcome in ran:
            self.result.add(directive.pk, outcome)
            if outcome == "done":
                directive.status = Directive.Status.DONE
                logger.info("directive done", extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts})
            if directive in self.held:
                self.held.remove(directive)

    def abandon(self) -> None:
        """An exception leaves the pass: the open batch rolls back (its rows stay held)."""
        if self.atomic is not None:
            atomic, self.atomic = self.atomic, None
            self.ran, self.items = [], []
            try:
                atomic.__exit__(*sys.exc_info())
            except Exception:  # noqa: BLE001, S110 - the connection is likely gone; the original error is raised
                pass


def _run_in_savepoint(directive: Directive, handler, max_attempts: int, *, release: str | None) -> tuple[str, str]:
    """Run one directive inside the open batch transaction; ``(outcome, its savepoint)``.

    One statement (one round trip on PostgreSQL) releases the previous
    directive's savepoint (``release``), opens this one's and marks the row
    ``done`` under its fence; then the handler runs. A handler that raises rolls
    back to the savepoint — its writes and the ``done`` mark — and the failure
    is recorded (retry or ``failed``) in the batch. A fenced row (re-queued or
    finished by a newer attempt) is not run. The outcomes take effect when the
    batch commits; until then the rows marked done stay locked, so the stuck
    pass (``SKIP LOCKED``) leaves them alone. A lost connection is re-raised, as
    in :func:`execute`.
    """
    raw = connection.connection
    connection.savepoint_state += 1
    sid = f"omniman_d{connection.savepoint_state}"
    ops = connection.ops
    statements = [ops.savepoint_commit_sql(release)] if release else []
    statements += [ops.savepoint_create_sql(sid), _DONE_SQL.format(table=Directive._meta.db_table)]
    params = [timezone.now(), directive.pk, directive.attempts]
    ctx = {"attempt": directive.attempts, "max_attempts": max_attempts, "actor": f"directive:{directive.topic}"}
    connection.savepoint_ids.append(sid)  # on_commit callbacks registered by the handler belong to it
    try:
        try:
            if not _execute_last(statements, params):
                logger.warning("directive fenced out", extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts})
                return "fenced", sid
            handler.handle(message=directive, ctx=ctx)
        except Exception as exc:  # the handler failed: undo its writes, record it (in the batch)
            if isinstance(exc, DATABASE_ERRORS) and _connection_lost(raw, exc):
                raise
            connection.savepoint_rollback(sid)  # also drops the on_commit callbacks it registered
            connection.needs_rollback = False  # a nested atomic(savepoint=False) that failed asked for this rollback
            return _record_failure(directive, exc), sid
    finally:
        connection.savepoint_ids.remove(sid)
    return "done", sid


def _client_side_binding(cursor) -> bool:
    """Django's default psycopg cursor binds parameters client-side; ``server_side_binding`` does not
    (and then takes one statement at a time)."""
    import psycopg

    return isinstance(cursor, psycopg.ClientCursor)


def _execute_last(statements: list[str], params: list) -> int:
    """Run ``statements`` (only the last takes ``params``); the last one's row count.
    On PostgreSQL in one round trip (psycopg's client-side binding accepts several statements)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and _client_side_binding(cursor.cursor):
            cursor.execute("; ".join(statements), params)
            raw = cursor.cursor
            while raw.nextset():
                pass
            return raw.rowcount
        for statement in statements[:-1]:
            cursor.execute(statement)
        cursor.execute(statements[-1], params)
        return cursor.rowcount


def process_once(*, topics: Iterable[str] | None = None, limit: int = 50) -> PassResult:
    """``process_directives`` without ``--watch`` (a cron pass): one :func:`process`, and the host's
    ``host:pass`` heartbeat row, so ``/healthz`` and the admin see cron-only deployments too."""
    result = process(topics=topics, limit=limit)
    WorkerHeartbeat.objects.beat(worker_name("pass"), processed=result.claimed - result.released)
    return result


def requeue_interrupted(directives: Iterable[Directive], *, reason: str) -> int:
    """Give back rows whose run was cut off (the connection was lost): queued again, due now.

    Each row under its fence: a row whose run did commit (``done``), or that
    another pass re-queued meanwhile, is left alone. A row that never started
    gets its attempt back (as :func:`release`); one that started keeps it — its
    handler may have had effects outside the database — and is ``failed`` if
    that was its last attempt.
    """
    now = timezone.now()
    max_attempts = int(conf.get("DIRECTIVE_MAX_ATTEMPTS"))
    requeued = 0
    for directive in directives:
        if directive.started_at is None:
            requeued += _fence(directive).update(
                status=Directive.Status.QUEUED, attempts=directive.attempts - 1, started_at=None, updated_at=now
            )
        elif directive.attempts >= max_attempts:
            _fence(directive).update(
                status=Directive.Status.FAILED, last_error=f"{reason}; it was the last attempt ({max_attempts}): failed", updated_at=now
            )
        else:
            requeued += _fence(directive).update(
                status=Directive.Status.QUEUED, available_at=now, last_error=f"{reason}; re-queued", updated_at=now
            )
    return requeued


_dispatch_held: ContextVar[bool] = ContextVar("omniman_dispatch_held", default=False)


@contextmanager
def dispatch_held() -> Iterator[None]:
    """Inside this block ``DISPATCH_ON_COMMIT`` runs nothing: what is enqueued stays queued.

    For a caller that runs the directives itself a moment later — the POS
    answers a change at once and the browser asks for the checks in a second
    request — or leaves them to cron and workers.
    """
    token = _dispatch_held.set(True)
    try:
        yield
    finally:
        _dispatch_held.reset(token)


def dispatch_is_held() -> bool:
    return _dispatch_held.get()


class BeforeCommit:
    """The open :func:`dispatch_before_commit` block: the directives it runs at its end, and what it shares.

    ``share(**objects)`` hands the block's handlers rows the enqueuing
    transaction has locked and holds in memory (``ctx["locked"]``, by name), so
    they need not read them again. ``outcomes`` lists ``(directive id,
    outcome)`` once the block has run them: ``done``, ``retried``, ``failed``
    or ``skipped`` (its row gone with a rolled-back savepoint, or not due yet).
    """

    def __init__(self):
        # (directive, handler, marker): the marker of a row inserted done (see _BeforeCommitRuns), else None.
        self.pending: list[tuple[Directive, object, _Marker | None]] = []
        self.shared: dict[str, object] = {}
        self.outcomes: list[tuple[int, str]] = []

    def share(self, **objects) -> None:
        self.shared.update(objects)

    def _run(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        if connection.needs_rollback:  # a transaction that can only roll back (the rows inserted done with it)
            _give_back(pending)
            return
        max_attempts = int(conf.get("DIRECTIVE_MAX_ATTEMPTS"))
        release = None
        token = _before_commit.set(None)  # what the handlers enqueue takes the after-commit way
        ran = 0
        try:
            for directive, handler, marker in pending:
                ran += 1
                outcome, release = _run_before_commit(directive, handler, marker, self.shared, max_attempts, release=release)
                self.outcomes.append((directive.pk, outcome))
        except BaseException:
            _give_back(pending[ran:])
            raise
        finally:
            _before_commit.reset(token)
        # The last savepoint is not released: the commit ends it with the transaction (one round trip less).


_before_commit: ContextVar[BeforeCommit | None] = ContextVar("omniman_before_commit", default=None)
# Rows inserted done that wait for their block's run, by (topic, dedupe key): the active rows of their keys.
_waiting: ContextVar[dict[tuple[str, str], tuple[Directive, _Marker]] | None] = ContextVar("omniman_before_commit_waiting", default=None)


class _Marker:
    """A no-op ``on_commit`` callback registered where a row was inserted done: Django drops the callbacks of a
    rolled-back savepoint, so while it is there, so is the row (:func:`_marker_stands`)."""

    __slots__ = ()

    def __call__(self) -> None:
        pass


def _marker_stands(marker: _Marker, *, take: bool = False) -> bool:
    """Whether the savepoints ``marker`` was registered in still stand (not rolled back); ``take`` removes it."""
    callbacks = connection.run_on_commit
    for index in range(len(callbacks) - 1, -1, -1):
        if callbacks[index][1] is marker:
            if take:
                del callbacks[index]
            return True
    return False


def _stop_waiting(directive: Directive) -> None:
    waiting = _waiting.get()
    key = (directive.topic, directive.dedupe_key)
    if waiting and directive.dedupe_key and waiting.get(key, (None,))[0] is directive:
        del waiting[key]


def _give_back(pending: list[tuple[Directive, object, _Marker | None]]) -> None:
    """Rows inserted done whose run will not come (the block raised): ``queued`` again, as if enqueued the
    ordinary way (announced to the workers, as the INSERT trigger announces a queued row) — unless the transaction can only roll back (then they go with it: every savepoint it can
    roll back to was taken before they were inserted), or a savepoint's rollback took them already."""
    rows = []
    for directive, _, marker in pending:
        if marker is not None and _marker_stands(marker, take=True):
            _stop_waiting(directive)
            rows.append(directive)
    if not rows or connection.needs_rollback or _transaction_aborted():
        return
    Directive.objects.filter(pk__in=[directive.pk for directive in rows], status=Directive.Status.DONE).update(
        status=Directive.Status.QUEUED, attempts=0, started_at=None, updated_at=timezone.now()
    )
    for directive in rows:
        directive.status, directive.attempts, directive.started_at = Directive.Status.QUEUED, 0, None
    if connection.vendor == "postgresql":  # what the INSERT trigger would have announced for a queued row
        with connection.cursor() as cursor:
            for topic in sorted({directive.topic for directive in rows}):
                cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, topic])


def _transaction_aborted() -> bool:
    """PostgreSQL's transaction is in error (only a rollback, to a savepoint or whole, gets out of it)."""
    raw = connection.connection
    if connection.vendor != "postgresql" or raw is None:
        return False
    from psycopg import pq

    return raw.info.transaction_status == pq.TransactionStatus.INERROR


class _BeforeCommitRuns:
    """The manager's side of :func:`dispatch_before_commit` (``models.directive.BeforeCommitRuns``).

    A directive it ``takes`` (enqueued in an open block, due now, of a
    ``DISPATCH_ON_COMMIT`` topic whose handler is ``database_only``, not
    held) is inserted already ``done`` — ``attempts`` 1, ``started_at`` — and
    handed to the block (``inserted``), which at its end only opens the
    row's savepoint and runs the handler: the run writes nothing of its own.
    Until then the row stands for the ``queued`` one: a dedupe key enqueued
    again in this transaction answers it (``pending``).
    """

    def takes(self, topic: str) -> bool:
        if _before_commit.get() is None or topic not in (conf.get("DISPATCH_ON_COMMIT") or ()) or dispatch_is_held():
            return False
        handler = registry.get_directive_handler(topic)
        return handler is not None and claims_in_batch(handler)

    def pending(self, topic: str, dedupe_key: str) -> Directive | None:
        waiting = _waiting.get()
        entry = waiting.get((topic, dedupe_key)) if waiting else None
        if entry is None:
            return None
        if _marker_stands(entry[1]):
            return entry[0]
        del waiting[(topic, dedupe_key)]  # rolled back with a savepoint
        return None

    def inserted(self, directive: Directive) -> None:
        block = _before_commit.get()
        marker = _Marker()
        transaction.on_commit(marker)
        block.pending.append((directive, registry.get_directive_handler(directive.topic), marker))
        if directive.dedupe_key:
            _waiting.get()[(directive.topic, directive.dedupe_key)] = (directive, marker)


DirectiveManager.before_commit = _BeforeCommitRuns()


@contextmanager
def dispatch_before_commit() -> Iterator[BeforeCommit]:
    """Run the ``DISPATCH_ON_COMMIT`` directives enqueued in this block before the transaction commits.

    Open it inside the service's ``transaction.atomic()``. A directive enqueued
    in the block whose topic is in ``DISPATCH_ON_COMMIT`` and whose handler is
    ``database_only`` (:func:`claims_in_batch`: its effects are rows of this
    database, quick) gets no after-commit dispatch: its row is inserted already
    ``done`` (``attempts`` 1, ``started_at``), and at the block's normal exit
    each runs in a savepoint of its own — one statement opens it (and releases
    the previous one), then the handler runs — all in the service's
    transaction, which commits it with the service's own work: one commit
    instead of two, no claim of its own, one write of its row. (A directive
    enqueued with an ``available_at`` of its own is inserted ``queued``; its
    run marks it ``done`` in its savepoint's statement, if it is due.)

    A handler that raises (or leaves the transaction marked for rollback) is
    rolled back to its savepoint, with its ``on_commit`` callbacks; the
    directive is ``queued`` again for the workers with the failure recorded as
    the engine records failures (``attempts``, ``last_error``, backoff, or
    ``failed`` after the last attempt), the objects it was shared are read
    again, and the service's own work still commits. Nothing runs if the block
    raises (its rows inserted done are ``queued`` again, if the transaction is
    to commit at all), nor inside :func:`dispatch_held`. A directive whose row a
    savepoint's rollback took is ``skipped``. Other handlers
    (``own_transaction``, or not ``database_only``) keep the after-commit
    :func:`dispatch`. At least once: a process that dies before the commit
    takes the directive row down with the change that enqueued it.

    Handlers get ``ctx["locked"]``: the objects the service shared with
    :meth:`BeforeCommit.share` (rows it holds locked, as this transaction left
    them). A handler that changes one writes its row and the object alike.
    Directives its handlers enqueue take the after-commit way.
    """
    if not connection.in_atomic_block:
        raise transaction.TransactionManagementError("dispatch_before_commit() runs inside transaction.atomic()")
    block = BeforeCommit()
    token = _before_commit.set(block)
    waiting = _waiting.set({}) if _waiting.get() is None else None  # the outermost block's
    try:
        try:
            yield block
        except BaseException:
            pending, block.pending = block.pending, []
            _give_back(pending)
            raise
        finally:
            _before_commit.reset(token)
        block._run()  # only at a normal exit: an exception leaves the block above
    finally:
        if waiting is not None:
            _waiting.reset(waiting)


# Open a directive's savepoint and mark it done (claimed from queued, due) in one round trip.
_BEFORE_COMMIT_DONE_SQL = (
    "UPDATE {table} SET status = 'done', attempts = attempts + 1, started_at = %s, updated_at = %s, last_error = '' "
    "WHERE id = %s AND status = 'queued' AND available_at <= %s"
)


def _run_before_commit(
    directive: Directive, handler, marker: _Marker | None, shared: dict, max_attempts: int, *, release: str | None
) -> tuple[str, str | None]:
    """Run one directive in the enqueuing transaction, in a savepoint; ``(outcome, the savepoint left open)``.

    A row inserted done (``marker``): one statement without parameters — one
    round trip, prepared statements or not — releases ``release`` and opens the
    savepoint. Otherwise the row is marked done in the savepoint's statement
    (one round trip only where psycopg binds client-side)."""
    raw = connection.connection
    ops = connection.ops
    statements = [ops.savepoint_commit_sql(release)] if release else []
    if marker is not None:
        if not _marker_stands(marker, take=True):
            return "skipped", release  # rolled back with a savepoint of the service: nothing to do
        _stop_waiting(directive)  # claimed: no longer the active row of its dedupe key
        connection.savepoint_state += 1
        sid = f"omniman_b{connection.savepoint_state}"
        statements.append(ops.savepoint_create_sql(sid))
        _execute_all(statements)
    else:
        connection.savepoint_state += 1
        sid = f"omniman_b{connection.savepoint_state}"
        statements += [ops.savepoint_create_sql(sid), _BEFORE_COMMIT_DONE_SQL.format(table=Directive._meta.db_table)]
        now = timezone.now()
        if not _execute_last(statements, [now, now, directive.pk, now]):
            return "skipped", sid  # rolled back with a savepoint of the service, or not due yet: nothing to do
        directive.status, directive.attempts, directive.started_at = Directive.Status.DONE, directive.attempts + 1, now
    ctx = {
        "attempt": directive.attempts,
        "max_attempts": max_attempts,
        "actor": f"directive:{directive.topic}",
        "locked": shared,
    }
    connection.savepoint_ids.append(sid)  # on_commit callbacks registered by the handler belong to it
    try:
        try:
            handler.handle(message=directive, ctx=ctx)
            if connection.needs_rollback:
                raise _LeftForRollback("the handler left the transaction marked for rollback")
        except Exception as exc:  # the handler failed: undo its writes, record it, the service goes on
            if isinstance(exc, DATABASE_ERRORS) and _connection_lost(raw, exc):
                raise
            connection.needs_rollback = False  # what the savepoint's rollback undoes (a nested atomic asked for it)
            connection.savepoint_rollback(sid)  # also drops the on_commit callbacks it registered
            return _record_failure_before_commit(directive, exc, shared, max_attempts), sid
    finally:
        connection.savepoint_ids.remove(sid)
    logger.info("directive done", extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts})
    return "done", sid


def _execute_all(statements: list[str]) -> None:
    """Statements without parameters; on PostgreSQL in one round trip (psycopg sends a query without parameters
    as a simple query, several commands in one, whether it binds client- or server-side)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("; ".join(statements))
            return
        for statement in statements:
            cursor.execute(statement)


def _record_failure_before_commit(directive: Directive, exc: BaseException, shared: dict, max_attempts: int) -> str:
    """The handler's run rolled back to its savepoint (the row is as enqueued: inserted ``done`` with its attempt,
    or ``queued`` without it): count the attempt, record the failure, and read the shared objects again (the
    handler may have changed them in memory)."""
    outcome, fields = _failure_fields(directive, exc, max_attempts)
    fields.update(attempts=directive.attempts, started_at=directive.started_at)
    Directive.objects.filter(pk=directive.pk, status__in=(Directive.Status.QUEUED, Directive.Status.DONE)).update(**fields)
    directive.status = fields["status"]
    for obj in shared.values():
        refresh = getattr(obj, "refresh_from_db", None)
        if refresh is not None:
            refresh()
    _log_failure(directive, outcome, exc)
    return outcome


def _dispatch_on_commit(sender, directive: Directive, **kwargs) -> None:
    """``DISPATCH_ON_COMMIT`` topics run right after the enqueuing transaction commits (never inside
    ``dispatch_held()``), or before it commits inside :func:`dispatch_before_commit` when their handler
    is ``database_only``. Connected to ``signals.directive_enqueued``."""
    if directive.status == Directive.Status.DONE:
        return  # inserted done: its block runs it (_BeforeCommitRuns.inserted)
    if directive.topic not in (conf.get("DISPATCH_ON_COMMIT") or ()) or dispatch_is_held():
        return
    block = _before_commit.get()
    if block is not None:
        handler = registry.get_directive_handler(directive.topic)
        if handler is not None and claims_in_batch(handler):
            block.pending.append((directive, handler, None))
            return
    pk, topic = directive.pk, directive.topic
    transaction.on_commit(lambda: dispatch(pk, topic=topic))


directive_enqueued.connect(_dispatch_on_commit, dispatch_uid="omniman.engine.dispatch_on_commit")


def dispatch(directive_id: int, *, topic: str | None = None) -> str | None:
    """Run one directive now (for ``DISPATCH_ON_COMMIT``), if it is due and no worker has it.

    Returns the outcome, or ``None`` if it was not claimable (a worker has it,
    it is not due, or its topic has no handler). Never raises: a failure is
    recorded on the row and retried by cron or a worker.

    Given its ``topic`` and a handler that may share a transaction
    (:func:`runs_in_batch`), the directive runs in **one transaction**: one
    statement claims the row and marks it ``done`` (``FOR UPDATE SKIP LOCKED``:
    a worker's row is never taken, nor waited for), the handler runs, one
    commit — one row version and one commit instead of two of each. The row
    stays locked until that commit, so no worker or stuck pass can take it
    meanwhile; if the request dies first, everything rolls back and the row is
    still ``queued`` for the workers (at least once). A handler that fails rolls
    back with its done mark, and the failure is recorded in a statement of its
    own (retry with backoff, or ``failed``). Other handlers (``own_transaction``:
    outside effects) take the worker's path: the claim is committed before they
    run (:func:`execute`).
    """
    try:
        handler = registry.get_directive_handler(topic) if topic else None
        if handler is not None and runs_in_batch(handler):
            return _dispatch_in_one_transaction(directive_id, topic, handler)
        claimed = claim(ids=[directive_id], limit=1, start=True)
        if not claimed:
            return None
        return execute(claimed[0])
    except Exception:  # noqa: BLE001 - after-commit code must not break the request
        logger.exception("dispatch of directive %s failed", directive_id)
        return None


# Claim one due, queued row and mark it done in the same statement (see dispatch).
_CLAIM_DONE_SQL = (
    "UPDATE {table} SET status = 'done', attempts = attempts + 1, started_at = %s, updated_at = %s, last_error = '' "
    "WHERE id = (SELECT id FROM {table} WHERE id = %s AND topic = %s AND status = 'queued' AND available_at <= %s{lock}) "
    "RETURNING id, topic, payload, attempts, available_at, started_at, dedupe_key, created_at"
)


class _LeftForRollback(Exception):
    """The handler returned but left the transaction marked for rollback."""


def _dispatch_in_one_transaction(directive_id: int, topic: str, handler) -> str | None:
    now = timezone.now()
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    sql = _CLAIM_DONE_SQL.format(table=Directive._meta.db_table, lock=lock)
    directive = None
    raw = None
    try:
        with transaction.atomic():
            rows = list(Directive.objects.raw(sql, [now, now, directive_id, topic, now]))
            raw = connection.connection
            if not rows:
                return None
            directive = rows[0]
            ctx = {"attempt": directive.attempts, "max_attempts": int(conf.get("DIRECTIVE_MAX_ATTEMPTS")), "actor": f"directive:{topic}"}
            handler.handle(message=directive, ctx=ctx)
            if connection.needs_rollback:
                raise _LeftForRollback("the handler left the transaction marked for rollback")
    except Exception as exc:
        if directive is None or (isinstance(exc, DATABASE_ERRORS) and _connection_lost(raw, exc)):
            raise  # the claim itself failed, or the connection is gone: the row is still queued
        return _record_dispatch_failure(directive, exc)
    directive.status = Directive.Status.DONE
    logger.info("directive done", extra={"directive": directive.pk, "topic": topic, "attempt": directive.attempts})
    return "done"


def _record_dispatch_failure(directive: Directive, exc: BaseException) -> str:
    """A one-transaction dispatch failed: its claim rolled back with it (the row is ``queued`` with the
    attempt before); count the attempt and record the failure as :func:`_record_failure` does."""
    outcome, fields = _failure_fields(directive, exc, int(conf.get("DIRECTIVE_MAX_ATTEMPTS")))
    fields.update(attempts=directive.attempts, started_at=directive.started_at)
    fence = Directive.objects.filter(pk=directive.pk, status=Directive.Status.QUEUED, attempts=directive.attempts - 1)
    if not fence.update(**fields):
        return "fenced"  # a worker took it meanwhile
    _log_failure(directive, outcome, exc)
    return outcome


LISTEN_OFF = "off"


def listen_url() -> str:
    """``OMNIMAN["DIRECTIVE_LISTEN_URL"]``: ``""`` (LISTEN over the default database's settings),
    a ``postgres://`` URL (a direct, session connection: what a transaction-pooling PgBouncer in
    front of the default database needs), or ``"off"`` (no LISTEN: poll every ``--interval``)."""
    return str(conf.get("DIRECTIVE_LISTEN_URL") or "").strip()


class Listener:
    """A dedicated autocommit connection that ``LISTEN``\\s for enqueues (PostgreSQL only).

    It connects to ``DIRECTIVE_LISTEN_URL`` when set, else with the default
    database's settings. ``LISTEN`` needs a session of its own: through
    PgBouncer in transaction pooling mode it is accepted but its notifications
    never arrive, so point ``DIRECTIVE_LISTEN_URL`` past the pooler (or turn it
    ``off``). TCP keepalives make a silently dead peer an error, not a wait forever.
    """

    KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}

    def __init__(self, topics: Iterable[str] | None = None, *, url: str | None = None):
        import psycopg

        url = listen_url() if url is None else url
        self.topics = set(topics or [])
        if url:
            self.conn = psycopg.connect(url, autocommit=True, **{"connect_timeout": 5, **self.KEEPALIVES})
        else:
            settings = connection.settings_dict
            params = {
                "dbname": settings["NAME"],
                "user": settings.get("USER") or None,
                "password": settings.get("PASSWORD") or None,
                "host": settings.get("HOST") or None,
                "port": settings.get("PORT") or None,
                "autocommit": True,
                "connect_timeout": 5,
                **self.KEEPALIVES,
            }
            options = settings.get("OPTIONS") or {}
            params.update({k: v for k, v in options.items() if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name")})
            self.conn = psycopg.connect(**{k: v for k, v in params.items() if v is not None})
        self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for a relevant notification; True if one came."""
        woke = False
        for notification in self.conn.notifies(timeout=timeout, stop_after=1):
            woke = woke or not self.topics or notification.payload in self.topics
        if woke:  # swallow the burst that came with it
            for _ in self.conn.notifies(timeout=0):
                pass
        return woke

    def close(self) -> None:
        self.conn.close()


class Worker:
    """``process_directives --watch``: pass after pass until SIGTERM/SIGINT.

    A stop signal lets the directive in hand finish, gives back the rest of
    the batch, and returns. Between passes it waits on ``LISTEN`` (PostgreSQL)
    or sleeps ``interval`` (polling: the fallback, SQLite's only mode, and
    ``DIRECTIVE_LISTEN_URL = "off"``). Even while listening it makes a pass at
    least every ``interval``, so a lost notification only delays a directive.

    It never dies of a lost database connection. An ``OperationalError`` or
    ``InterfaceError`` (PostgreSQL restarted, a failover, the network) starts
    an *outage*: one warning, then reconnect attempts with capped exponential
    backoff (``RECONNECT_BASE`` doubling up to ``RECONNECT_MAX`` seconds, plus
    jitter). Once the database answers again it gives back what it held (the
    rows of the cut-off batch: :func:`requeue_interrupted`), logs once that it
    is back, listens again and carries on. A lost ``LISTEN`` connection
    alone is re-opened the same way, polling every ``interval`` meanwhile.

    Each worker keeps a :class:`~omniman.models.WorkerHeartbeat` row
    (``host:pid``) up to date at least every ``HEARTBEAT_EVERY`` seconds.
    """

    WAIT_SLICE = 0.5
    REQUEUE_EVERY = 5.0  # seconds between looks for stuck rows in --watch
    HEARTBEAT_EVERY = 2.0  # seconds between heartbeat updates
    RECONNECT_BASE = 0.25  # first delay before reconnecting after a lost connection…
    RECONNECT_MAX = 5.0  # …doubling up to this
    HEARTBEAT_FORGET_AFTER = timedelta(days=7)  # rows of workers not seen this long are deleted at start

    def __init__(
        self,
        *,
        topics=None,
        limit: int = 50,
        interval: float = 2.0,
        log: Callable[[str], None] = lambda s: None,
        name: str | None = None,
    ):
        self.topics = list(topics or [])
        self.limit = limit
        self.interval = interval
        self.log = log
        self.name = name or worker_name()
        self.stopping = threading.Event()
        self.listener: Listener | None = None
        self.held: list[Directive] = []  # claimed by the pass in hand and not finished yet
        self.processed = 0
        self._started = False
        self._unreported = 0  # processed since the last heartbeat
        self._last_beat = float("-inf")
        self._outage_since: float | None = None  # monotonic start of the current database outage
        self._reconnects = 0
        self._listen_failures = 0
        self._listen_retry_at = 0.0
        self._listen_lost = False

    def stop(self, *_args) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, *, max_passes: int | None = None) -> int:
        passes = 0
        last_requeue = float("-inf")
        try:
            while not self.stopping.is_set():
                try:
                    if self._outage_since is not None or not self._started:
                        self._recover()
                    self._ensure_listener()
                    # Stuck rows are rare and slow to become stuck: look for them every few
                    # seconds, not on every wake-up (it is two UPDATEs on the hot path).
                    requeue = time.monotonic() - last_requeue >= self.REQUEUE_EVERY
                    result = process(
                        topics=self.topics, limit=self.limit, should_stop=self.stopping.is_set, requeue=requeue, held=self.held
                    )
                    if requeue:
                        last_requeue = time.monotonic()
                    passes += 1
                    ran = result.claimed - result.released
                    self.processed += ran
                    self._unreported += ran
                    if result.claimed or result.stuck_requeued or result.stuck_failed:
                        self.log(str(result))
                    self._beat()
                    if max_passes is not None and passes >= max_passes:
                        break
                    if result.claimed >= self.limit:
                        continue  # a full batch: more may be due right now
                    self._wait()
                except DATABASE_ERRORS as exc:
                    self._lost(exc)
                    self._pause_before_reconnect()
        finally:
            self._shutdown()
        return self.processed

    # -- the database connection -------------------------------------------------

    def _recover(self) -> None:
        """Reconnect (raises while the database is still away), give back what was held, say so."""
        # A query, not just a connection: a pooler (PgBouncer) accepts clients while the database is down.
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        if self.held:
            given_back = requeue_interrupted(self.held, reason="interrupted: the worker lost its database connection")
            logger.warning("held directives given back after the lost connection", extra={"worker": self.name, "requeued": given_back, "held": len(self.held)})
            self.held.clear()
        if not self._started:
            WorkerHeartbeat.objects.prune(older_than=self.HEARTBEAT_FORGET_AFTER)
            WorkerHeartbeat.objects.start(self.name)
            self._last_beat = time.monotonic()
            self._started = True
        if self._outage_since is not None:
            down = time.monotonic() - self._outage_since
            logger.warning(
                "database connection back after %.1f s; carrying on",
                down,
                extra={"worker": self.name, "outage_seconds": round(down, 1), "reconnect_attempts": self._reconnects},
            )
            self._outage_since = None
            self._reconnects = 0
            self._beat(force=True)

    def _lost(self, exc: BaseException) -> None:
        """The database went away: say so once per outage, drop both connections."""
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logger.warning(
                "database connection lost (%s); reconnecting with backoff up to %g s",
                type(exc).__name__,
                self.RECONNECT_MAX,
                extra={"worker": self.name, "error": f"{type(exc).__name__}: {exc}".strip()[:500], "held": len(self.held)},
            )
        self._reconnects += 1
        _close_quietly(connection)
        self._drop_listener()
        # Part of the outage (logged above): LISTEN again as soon as the database is back.
        self._listen_retry_at = 0.0
        self._listen_failures = 0
        self._listen_lost = False

    def _pause_before_reconnect(self) -> None:
        delay = min(self.RECONNECT_BASE * (2 ** max(self._reconnects - 1, 0)), self.RECONNECT_MAX)
        self.stopping.wait(delay + delay * random.uniform(0, 0.1))

    def _beat(self, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last_beat < self.HEARTBEAT_EVERY:
            return
        WorkerHeartbeat.objects.beat(self.name, processed=self._unreported)
        self._unreported = 0
        self._last_beat = time.monotonic()

    def _shutdown(self) -> None:
        self._drop_listener()
        try:
            if self.held:  # stopped during an outage: give back what it can, the stuck pass does the rest
                requeue_interrupted(self.held, reason="interrupted: the worker stopped without its database connection")
                self.held.clear()
            if self._started and self._outage_since is None:
                self._beat(force=True)
        except DATABASE_ERRORS:
            pass
        finally:
            _close_quietly(connection)

    # -- LISTEN ---------------------------------------------------------------------

    def _ensure_listener(self) -> None:
        """LISTEN if it should and does not; after a failure, try again with backoff (polling meanwhile)."""
        if self.listener is not None or not self._listening_wanted():
            return
        if time.monotonic() < self._listen_retry_at:
            return
        try:
            self.listener = Listener(self.topics)
        except Exception as exc:  # noqa: BLE001 - polling still works
            # The whole database away? Then this is an outage (raised here, logged once by _lost).
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            self._listen_failures += 1
            delay = min(self.RECONNECT_BASE * (2 ** (self._listen_failures - 1)), self.RECONNECT_MAX)
            self._listen_retry_at = time.monotonic() + delay
            if self._listen_failures == 1:
                logger.warning(
                    "LISTEN failed (%s); polling every %g s until it works again",
                    type(exc).__name__,
                    self.interval,
                    extra={"worker": self.name, "error": f"{type(exc).__name__}: {exc}".strip()[:500]},
                )
            return
        if self._listen_failures:
            logger.warning("LISTEN again after %d failed attempts", self._listen_failures, extra={"worker": self.name})
        elif self._listen_lost:
            logger.warning("LISTEN connection was lost; LISTENing again", extra={"worker": self.name})
        self._listen_failures = 0
        self._listen_lost = False

    @staticmethod
    def _listening_wanted() -> bool:
        return connection.vendor == "postgresql" and listen_url().lower() != LISTEN_OFF

    def _drop_listener(self) -> None:
        if self.listener is not None:
            try:
                self.listener.close()
            except Exception:  # noqa: BLE001, S110 - it is already gone
                pass
            self.listener = None

    def _wait(self) -> None:
        """Until a relevant enqueue is announced, ``interval`` passes, or a stop signal."""
        deadline = time.monotonic() + self.interval
        while not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._beat()
            slice_ = min(self.WAIT_SLICE, remaining)
            if self.listener is None:
                if self._listen_failures and time.monotonic() >= self._listen_retry_at and self._listening_wanted():
                    return  # time to try LISTEN again (and a pass: what it missed meanwhile)
                self.stopping.wait(slice_)
                continue
            try:
                if self.listener.wait(slice_):
                    return
            except Exception:  # noqa: BLE001 - LISTEN connection lost: a pass now, which LISTENs again
                self._drop_listener()
                self._listen_lost = True
                return  # the pass finds out whether the whole database is away; nothing announced meanwhile is missed


def _close_quietly(conn) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001, S110 - closing a dead connection
        conn.connection = None


__all__ = ["BeforeCommit", "PassResult", "backoff_seconds", "claim", "dispatch", "dispatch_before_commit", "dispatch_held", "execute", "process", "process_once", "release", "requeue_interrupted", "requeue_stuck", "Listener", "Worker"]
