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
  next pass, or ``failed`` when they have no attempts left.

Settings are read at call time. The kernel knows nothing of HTTP.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from omniman import conf, registry
from omniman.models import Directive
from omniman.signals import directive_enqueued

logger = logging.getLogger("omniman.directives")

NOTIFY_CHANNEL = "omniman_directives"
MAX_ERROR_LENGTH = 4000


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
    *, topics: Iterable[str] | None = None, limit: int = 50, ids: Iterable[int] | None = None, start: bool = False
) -> list[Directive]:
    """Mark up to ``limit`` due, queued rows of runnable topics ``running`` and return them.

    One ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED LIMIT n)
    RETURNING …`` statement: in autocommit it is its own transaction (no
    ``BEGIN``/``COMMIT`` round trips). ``start`` stamps ``started_at`` in it
    (a run that starts at once); otherwise each run stamps its own start.
    """
    runnable = _runnable_topics(topics)
    if not runnable or limit <= 0:
        return []
    table = Directive._meta.db_table
    now = timezone.now()
    params: list = [Directive.Status.RUNNING, now if start else None, now, Directive.Status.QUEUED, now]
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
    sql = (
        f"UPDATE {table} SET status = %s, attempts = attempts + 1, started_at = %s, updated_at = %s "
        f"WHERE id IN (SELECT id FROM {table} WHERE status = %s AND available_at <= %s "
        f"AND topic IN ({topic_marks}){id_filter} ORDER BY available_at, id LIMIT %s{lock}) "
        f"RETURNING id, topic, payload, attempts, available_at, started_at, dedupe_key, created_at"
    )
    claimed = list(Directive.objects.raw(sql, params))
    for directive in claimed:
        directive.status = Directive.Status.RUNNING
    claimed.sort(key=lambda d: (d.available_at, d.pk))
    return claimed


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
        return _record_failure(directive, exc)
    directive.status = Directive.Status.DONE
    logger.info("directive done", extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts})
    return "done"


def _record_failure(directive: Directive, exc: BaseException) -> str:
    now = timezone.now()
    max_attempts = int(conf.get("DIRECTIVE_MAX_ATTEMPTS"))
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
    error = f"{type(exc).__name__}: {exc}\n\n{detail}"[:MAX_ERROR_LENGTH]
    if directive.attempts >= max_attempts:
        outcome = "failed"
        fields = {"status": Directive.Status.FAILED, "last_error": error, "updated_at": now}
    else:
        outcome = "retried"
        fields = {
            "status": Directive.Status.QUEUED,
            "last_error": error,
            "available_at": now + timedelta(seconds=backoff_seconds(directive.attempts)),
            "updated_at": now,
        }
    if not _fence(directive).update(**fields):
        return "fenced"
    log = logger.error if outcome == "failed" else logger.warning
    log(
        "directive %s", outcome,
        extra={"directive": directive.pk, "topic": directive.topic, "attempt": directive.attempts, "error": f"{type(exc).__name__}: {exc}"},
    )
    return outcome


def release(directives: Iterable[Directive]) -> int:
    """Give claimed rows that did not run back (a worker stopping), as if never claimed."""
    released = 0
    for directive in directives:
        released += _fence(directive).update(
            status=Directive.Status.QUEUED, attempts=directive.attempts - 1, started_at=None, updated_at=timezone.now()
        )
    return released


def process(
    *,
    topics: Iterable[str] | None = None,
    limit: int = 50,
    should_stop: Callable[[], bool] = lambda: False,
    requeue: bool = True,
) -> PassResult:
    """One pass: re-queue stuck rows (unless ``requeue`` is false), then claim and run up to ``limit`` due directives."""
    result = PassResult()
    if requeue:
        result.stuck_requeued, result.stuck_failed = requeue_stuck()
    claimed = claim(topics=topics, limit=limit)
    result.claimed = len(claimed)
    for index, directive in enumerate(claimed):
        if should_stop():
            result.released += release(claimed[index:])
            break
        following = claimed[index + 1] if index + 1 < len(claimed) else None
        result.add(directive.pk, execute(directive, then=following))
    return result


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


def _dispatch_on_commit(sender, directive: Directive, **kwargs) -> None:
    """``DISPATCH_ON_COMMIT`` topics run right after the enqueuing transaction commits
    (never inside ``dispatch_held()``). Connected to ``signals.directive_enqueued``."""
    if directive.topic in (conf.get("DISPATCH_ON_COMMIT") or ()) and not dispatch_is_held():
        transaction.on_commit(lambda: dispatch(directive.pk))


directive_enqueued.connect(_dispatch_on_commit, dispatch_uid="omniman.engine.dispatch_on_commit")


def dispatch(directive_id: int) -> str | None:
    """Run one directive now, through the same claim (for ``DISPATCH_ON_COMMIT``).

    Returns the outcome, or ``None`` if it was not claimable (a worker has it,
    it is not due, or its topic has no handler). Never raises: a failure is
    recorded on the row and retried by cron or a worker.
    """
    try:
        claimed = claim(ids=[directive_id], limit=1, start=True)
        if not claimed:
            return None
        return execute(claimed[0])
    except Exception:  # noqa: BLE001 - after-commit code must not break the request
        logger.exception("dispatch of directive %s failed", directive_id)
        return None


class Listener:
    """A dedicated autocommit connection that ``LISTEN``\\s for enqueues (PostgreSQL only)."""

    def __init__(self, topics: Iterable[str] | None = None):
        import psycopg

        settings = connection.settings_dict
        params = {
            "dbname": settings["NAME"],
            "user": settings.get("USER") or None,
            "password": settings.get("PASSWORD") or None,
            "host": settings.get("HOST") or None,
            "port": settings.get("PORT") or None,
            "autocommit": True,
        }
        params.update({k: v for k, v in (settings.get("OPTIONS") or {}).items() if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name")})
        self.topics = set(topics or [])
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
    or sleeps ``interval`` (polling, the fallback and SQLite's only mode).
    """

    WAIT_SLICE = 0.5
    REQUEUE_EVERY = 5.0  # seconds between looks for stuck rows in --watch

    def __init__(self, *, topics=None, limit: int = 50, interval: float = 2.0, log: Callable[[str], None] = lambda s: None):
        self.topics = list(topics or [])
        self.limit = limit
        self.interval = interval
        self.log = log
        self.stopping = threading.Event()
        self.listener: Listener | None = None

    def stop(self, *_args) -> None:
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, *, max_passes: int | None = None) -> int:
        self.listener = self._listener()
        passes = processed = 0
        last_requeue = float("-inf")
        try:
            while not self.stopping.is_set():
                # Stuck rows are rare and slow to become stuck: look for them every few
                # seconds, not on every wake-up (it is two UPDATEs on the hot path).
                requeue = time.monotonic() - last_requeue >= self.REQUEUE_EVERY
                if requeue:
                    last_requeue = time.monotonic()
                result = process(topics=self.topics, limit=self.limit, should_stop=self.stopping.is_set, requeue=requeue)
                passes += 1
                processed += result.claimed - result.released
                if result.claimed or result.stuck_requeued or result.stuck_failed:
                    self.log(str(result))
                if max_passes is not None and passes >= max_passes:
                    break
                if result.claimed >= self.limit:
                    continue  # a full batch: more may be due right now
                self._wait()
        finally:
            if self.listener is not None:
                self.listener.close()
            connection.close()
        return processed

    def _listener(self) -> Listener | None:
        if connection.vendor != "postgresql":
            return None
        try:
            return Listener(self.topics)
        except Exception:  # noqa: BLE001 - polling still works
            logger.exception("LISTEN failed; falling back to polling every %s s", self.interval)
            return None

    def _wait(self) -> None:
        """Until a relevant enqueue is announced, ``interval`` passes, or a stop signal."""
        deadline = time.monotonic() + self.interval
        while not self.stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            slice_ = min(self.WAIT_SLICE, remaining)
            if self.listener is None:
                self.stopping.wait(slice_)
                continue
            try:
                if self.listener.wait(slice_):
                    return
            except Exception:  # noqa: BLE001 - connection lost: poll from now on
                logger.exception("LISTEN connection lost; polling every %s s", self.interval)
                self.listener = None


__all__ = ["PassResult", "backoff_seconds", "claim", "dispatch", "execute", "process", "release", "requeue_stuck", "Listener", "Worker"]
