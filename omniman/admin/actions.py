"""What the manager review does to directives — always through the engine's own claim.

*Run now* makes the chosen queued rows due now (cutting a backoff wait short)
and runs each through ``engine.dispatch``: the same claim (``queued``, due,
registered topic, ``SKIP LOCKED``) and the same fenced run as a worker, so a
directive a worker already holds is never run twice. *Retry* puts failed rows
back in the queue — one conditional ``UPDATE`` that touches only rows still
``failed`` — and runs them now the same way. A retry is one more run: if it
fails again, the row is ``failed`` again with the new ``last_error``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from omniman import engine
from omniman.models import Directive

# A request runs at most this many handlers; the rest stay queued and due, for the workers.
RUN_NOW_LIMIT = 25

OUTCOME_WORDS = {
    "done": _("done"),
    "retried": _("failed and re-queued with backoff"),
    "failed": _("failed (no attempts left)"),
    "fenced": _("finished by another worker first"),
    "released": _("given back (no handler any more)"),
}


@dataclass
class RunReport:
    """The outcome of each directive run, and the ones that were not run."""

    outcomes: dict[int, str] = field(default_factory=dict)
    not_run: list[int] = field(default_factory=list)
    left_for_workers: list[int] = field(default_factory=list)
    requeued: int = 0

    @property
    def counts(self) -> Counter:
        return Counter(self.outcomes.values())

    def summary(self) -> str:
        parts = []
        if self.requeued:
            parts.append(_("%(n)s put back in the queue") % {"n": self.requeued})
        if self.outcomes:
            ran = ", ".join(f"{n} {OUTCOME_WORDS.get(outcome, outcome)}" for outcome, n in sorted(self.counts.items()))
            parts.append(_("ran %(n)s: %(outcomes)s") % {"n": len(self.outcomes), "outcomes": ran})
        if self.not_run:
            parts.append(
                _("%(n)s not run (not queued, held by a worker, or no handler for the topic)") % {"n": len(self.not_run)}
            )
        if self.left_for_workers:
            parts.append(_("%(n)s left queued and due for the workers") % {"n": len(self.left_for_workers)})
        return "; ".join(str(part) for part in parts) or str(_("nothing to run"))


def make_due(ids: Iterable[int]) -> int:
    """Queued rows among ``ids`` waiting for a later ``available_at`` become due now."""
    now = timezone.now()
    return Directive.objects.filter(
        pk__in=list(ids), status=Directive.Status.QUEUED, available_at__gt=now
    ).update(available_at=now, updated_at=now)


def requeue_failed(ids: Iterable[int]) -> list[int]:
    """Failed rows among ``ids`` go back to ``queued``, due now; returns their ids.

    The ``UPDATE`` is conditional on ``status = 'failed'``, under the row locks
    of the ``SELECT``: a row that is not failed any more is left alone.
    """
    now = timezone.now()
    with transaction.atomic():
        failed = list(
            Directive.objects.select_for_update()
            .filter(pk__in=list(ids), status=Directive.Status.FAILED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if failed:
            Directive.objects.filter(pk__in=failed, status=Directive.Status.FAILED).update(
                status=Directive.Status.QUEUED, available_at=now, updated_at=now
            )
    return failed


def _dispatch(ids: list[int], report: RunReport, limit: int) -> RunReport:
    for index, pk in enumerate(ids):
        if index >= limit:
            report.left_for_workers = ids[index:]
            break
        outcome = engine.dispatch(pk)
        if outcome is None:
            report.not_run.append(pk)
        else:
            report.outcomes[pk] = outcome
    return report


def run_now(ids: Iterable[int], *, limit: int = RUN_NOW_LIMIT) -> RunReport:
    """Run the queued directives among ``ids`` now, through ``engine.dispatch``."""
    ids = sorted(set(int(pk) for pk in ids))
    make_due(ids)
    return _dispatch(ids, RunReport(), limit)


def retry_failed(ids: Iterable[int], *, limit: int = RUN_NOW_LIMIT) -> RunReport:
    """Put the failed directives among ``ids`` back in the queue and run them now."""
    requeued = requeue_failed(sorted(set(int(pk) for pk in ids)))
    return _dispatch(requeued, RunReport(requeued=len(requeued)), limit)
