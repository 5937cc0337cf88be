from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from django.db import IntegrityError, connections, models, transaction
from django.db.models import Q
from django.utils import timezone

from omniman.signals import directive_enqueued

ACTIVE_STATUSES = ("queued", "running")


class BeforeCommitRuns(Protocol):
    """What runs directives before their enqueuing transaction commits (``omniman.engine.dispatch_before_commit``),
    as the manager asks it: a row it ``takes`` is inserted already ``done`` (``attempts`` 1, ``started_at``) — its
    run writes nothing of its own — and handed to it once inserted; until it runs, it is the active row of its
    dedupe key (``pending``), as the ``queued`` row it stands for would be."""

    def takes(self, topic: str) -> bool: ...

    def pending(self, topic: str, dedupe_key: str) -> Directive | None: ...

    def inserted(self, directive: Directive) -> None: ...


class DirectiveManager(models.Manager):
    # Installed by omniman.engine (which imports this module, not the reverse).
    before_commit: BeforeCommitRuns | None = None

    def enqueue(
        self,
        topic: str,
        payload: dict[str, Any],
        *,
        dedupe_key: str = "",
        available_at: datetime | None = None,
    ) -> Directive:
        """The one way to enqueue a side effect.

        With a ``dedupe_key``, a second enqueue of the same topic while one is
        queued or running returns the existing row (enforced by a partial
        unique index, so concurrent enqueues are safe too).

        A directive that runs before the enqueuing transaction commits
        (``engine.dispatch_before_commit``) is inserted already ``done``
        (:class:`BeforeCommitRuns`). Its dedupe key is checked in the same
        ``INSERT`` (``WHERE NOT EXISTS`` an active row: a ``done`` row is not in
        the unique index) and, in this transaction, against the directives
        still waiting for their run. An active duplicate that another
        transaction has not committed yet is not waited for: both run (at least
        once; the handlers are idempotent), and no second active row exists.
        """
        if not topic:
            raise ValueError("a directive needs a topic")
        runs = self.before_commit
        if runs is not None and dedupe_key:
            pending = runs.pending(topic, dedupe_key)
            if pending is not None:
                return pending
        fields = {
            "topic": topic,
            "payload": payload or {},
            "dedupe_key": dedupe_key or "",
            "available_at": available_at or timezone.now(),
        }
        if runs is not None and available_at is None and runs.takes(topic):
            fields.update(status=Directive.Status.DONE, attempts=1, started_at=fields["available_at"])
        if not dedupe_key:
            directive = self.create(**fields)
        else:
            # Insert first: a duplicate is the rare case, and the partial unique
            # index (not a prior SELECT) is what makes dedupe race-safe.
            for _ in range(2):  # the active duplicate may finish between the two statements
                directive = self._insert_unless_duplicate(fields)
                if directive is not None:
                    break
                existing = self.filter(topic=topic, dedupe_key=dedupe_key, status__in=ACTIVE_STATUSES).first()
                if existing is not None:
                    return existing
            else:
                raise IntegrityError(f"directive {topic!r} {dedupe_key!r}: the active duplicate kept changing")
        _announce(directive)
        return directive

    def enqueue_many(self, items: list[tuple[str, dict[str, Any], str]]) -> list[Directive]:
        """:meth:`enqueue` of each ``(topic, payload, dedupe_key)`` in turn, in one ``INSERT`` where it can.

        The same rows and the same answers as one :meth:`enqueue` per item, in
        order (a dedupe hit returns the active row; an item whose topic and
        dedupe key repeat an earlier one's is that earlier row), each new row
        announced in that order. On PostgreSQL and SQLite one ``INSERT …
        VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING``: only an item the
        database left out (an active duplicate, the rare case) is enqueued
        again on its own. A commit enqueues its post-commit and ``on_enter``
        directives with it.
        """
        connection = connections[self.db]
        if len(items) < 2 or connection.vendor not in ("postgresql", "sqlite"):
            return [self.enqueue(topic, payload, dedupe_key=dedupe_key) for topic, payload, dedupe_key in items]
        now = timezone.now()
        runs = self.before_commit
        takes: dict[str, bool] = {}
        planned: list[Directive] = []  # one per item; a repeated (topic, dedupe_key) is the earlier object
        unique: list[Directive] = []
        by_key: dict[tuple[str, str], Directive] = {}
        for topic, payload, dedupe_key in items:
            if not topic:
                raise ValueError("a directive needs a topic")
            directive = by_key.get((topic, dedupe_key)) if dedupe_key else None
            if directive is None:
                directive = self.model(topic=topic, payload=payload or {}, dedupe_key=dedupe_key or "", available_at=now)
                if runs is not None and dedupe_key and runs.pending(topic, dedupe_key) is not None:
                    pass  # its row waits for its run in this transaction: not inserted, enqueue() below answers it
                else:
                    if runs is not None:
                        if topic not in takes:
                            takes[topic] = runs.takes(topic)
                        if takes[topic]:  # runs before the commit: inserted done (see enqueue)
                            directive.status, directive.attempts, directive.started_at = Directive.Status.DONE, 1, now
                    unique.append(directive)
                if dedupe_key:
                    by_key[(topic, dedupe_key)] = directive
            planned.append(directive)
        inserted = self._insert_all(unique) if unique else set()
        result, announced = [], set()
        for (topic, payload, dedupe_key), directive in zip(items, planned):
            if id(directive) not in inserted:
                directive = self.enqueue(topic, payload, dedupe_key=dedupe_key)  # an active duplicate: its row
            elif id(directive) not in announced:
                announced.add(id(directive))
                _announce(directive)
            result.append(directive)
        return result

    def _insert_all(self, directives: list[Directive]) -> set[int]:
        """Insert ``directives`` in one statement, leaving out those an active row dedupes; the ``id()`` of the inserted."""
        connection = connections[self.db]
        meta = self.model._meta
        columns = [field for field in meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        values: list[Any] = []
        for directive in directives:
            values += [field.get_db_prep_save(field.pre_save(directive, add=True), connection) for field in columns]
        row_sql = f"({', '.join(['%s'] * len(columns))})"
        topic, dedupe_key = quote(meta.get_field("topic").column), quote(meta.get_field("dedupe_key").column)
        names = ", ".join(quote(field.column) for field in columns)
        if any(directive.status == Directive.Status.DONE and directive.dedupe_key for directive in directives):
            # A row inserted done (it runs before the commit) is in no unique index: its dedupe is a NOT EXISTS.
            status = quote(meta.get_field("status").column)
            sql = (
                f"WITH v ({names}) AS (VALUES {', '.join([row_sql] * len(directives))}) "
                f"INSERT INTO {quote(meta.db_table)} ({names}) SELECT * FROM v "
                f"WHERE v.{status} <> 'done' OR v.{dedupe_key} = '' OR NOT EXISTS ({_active_duplicate_sql(meta, quote, 'v')}) "
                f"ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}, {topic}, {dedupe_key}"
            )
        else:
            sql = (
                f"INSERT INTO {quote(meta.db_table)} ({names}) "
                f"VALUES {', '.join([row_sql] * len(directives))} "
                f"ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}, {topic}, {dedupe_key}"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            returned = cursor.fetchall()
        # Rows with a dedupe key are matched by it; those without one are never left out: they come back in order.
        keyed = {(row[1], row[2]): row[0] for row in returned if row[2]}
        plain = iter([row[0] for row in returned if not row[2]])
        inserted = set()
        for directive in directives:
            pk = keyed.get((directive.topic, directive.dedupe_key)) if directive.dedupe_key else next(plain, None)
            if pk is None:
                continue
            directive.pk = pk
            directive._state.adding = False
            directive._state.db = self.db
            inserted.add(id(directive))
        return inserted

    def _insert_unless_duplicate(self, fields: dict[str, Any]) -> Directive | None:
        """The new row, or ``None`` when an active row already has its dedupe key.

        On PostgreSQL and SQLite one ``INSERT … ON CONFLICT DO NOTHING RETURNING``
        (no savepoint round trips: enqueueing is on every change's path);
        elsewhere an insert in a savepoint that an ``IntegrityError`` rolls back.
        """
        connection = connections[self.db]
        directive = self.model(**fields)
        done = directive.status == Directive.Status.DONE  # runs before the commit: in no unique index
        if connection.vendor not in ("postgresql", "sqlite"):
            if done and self.filter(topic=directive.topic, dedupe_key=directive.dedupe_key, status__in=ACTIVE_STATUSES).exists():
                return None
            try:
                with transaction.atomic(using=self.db):
                    directive.save(using=self.db, force_insert=True)
            except IntegrityError:
                return None
            return directive
        meta = self.model._meta
        columns = [field for field in meta.concrete_fields if not field.primary_key]
        values = [field.get_db_prep_save(field.pre_save(directive, add=True), connection) for field in columns]
        quote = connection.ops.quote_name
        if done:
            # One statement still: the row, unless an active one has its dedupe key.
            sql = (
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in columns)}) "
                f"SELECT {', '.join(['%s'] * len(columns))} WHERE NOT EXISTS ({_active_duplicate_sql(meta, quote, None)}) "
                f"RETURNING {quote(meta.pk.column)}"
            )
            values += [directive.topic, directive.dedupe_key]
        else:
            sql = (
                f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in columns)}) "
                f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING RETURNING {quote(meta.pk.column)}"
            )
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            row = cursor.fetchone()
        if row is None:
            return None
        directive.pk = row[0]
        directive._state.adding = False
        directive._state.db = self.db
        return directive


def _active_duplicate_sql(meta, quote, row: str | None) -> str:
    """``SELECT 1`` of an active row with the dedupe key of ``row`` (a ``WITH`` table's alias), or of the two
    parameters topic and dedupe key after the row's own (``row`` None). On the partial unique index's terms."""
    table, topic, dedupe_key, status = (
        quote(meta.db_table), quote(meta.get_field("topic").column), quote(meta.get_field("dedupe_key").column), quote(meta.get_field("status").column),
    )
    same = f"d.{topic} = {row}.{topic} AND d.{dedupe_key} = {row}.{dedupe_key}" if row else f"d.{topic} = %s AND d.{dedupe_key} = %s"
    active = ", ".join(f"'{status_}'" for status_ in ACTIVE_STATUSES)
    return f"SELECT 1 FROM {table} d WHERE {same} AND d.{dedupe_key} <> '' AND d.{status} IN ({active})"


def _announce(directive: Directive) -> None:
    """Tell the engine a directive was enqueued (``signals.directive_enqueued``).

    The engine runs ``DISPATCH_ON_COMMIT`` topics right after the enqueuing
    transaction commits. ``--watch`` workers are woken by the database itself:
    on PostgreSQL an ``AFTER INSERT`` trigger (migration 0002) sends ``NOTIFY
    omniman_directives``, delivered when the transaction commits. A row
    inserted ``done`` is handed to the block that runs it first.
    """
    if directive.status == Directive.Status.DONE:
        DirectiveManager.before_commit.inserted(directive)
    directive_enqueued.send(sender=Directive, directive=directive)


class Directive(models.Model):
    """A side effect to perform later, at least once, by an idempotent handler."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    topic = models.CharField(max_length=128)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    payload = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True, default="")
    dedupe_key = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DirectiveManager()

    class Meta:
        ordering = ["available_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["topic", "dedupe_key"],
                condition=Q(status__in=ACTIVE_STATUSES) & ~Q(dedupe_key=""),
                name="omniman_directive_active_dedupe",
            ),
        ]
        # Partial indexes only: a directive's claim and its done mark each rewrite the row, and every
        # index that gets an entry for the new version costs WAL. The due index holds queued rows (the
        # claim's scan, oldest first); the other one running rows (the stuck pass) and failed rows (health).
        # Done rows, nearly all of the table, are in neither. The topic needs no index of its own: the
        # claim filters it among due rows, the dedupe lookup has the unique constraint's index.
        indexes = [
            models.Index(fields=["available_at", "id"], condition=Q(status="queued"), name="omniman_directive_due"),
            models.Index(
                fields=["status", "updated_at"], condition=Q(status__in=("running", "failed")), name="omniman_directive_stuck_failed"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} #{self.pk} ({self.status})"
