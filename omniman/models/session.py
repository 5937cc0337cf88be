from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from omniman.adjustments import apply_adjustments
from omniman.models.channel import Channel
from omniman.models.rows import save_fields


def copy_json(value: Any) -> Any:
    """A deep copy of JSON data (dicts, lists, scalars): ``copy.deepcopy`` at a fraction of its cost."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def totals_over(stored: Any, total_q: int) -> dict[str, Any]:
    """``stored`` totals (a pricing modifier's summary) with ``items_q`` and ``total_q`` defaulting to ``total_q``."""
    totals = dict(stored) if isinstance(stored, dict) else {}
    totals.setdefault("items_q", total_q)
    totals.setdefault("total_q", total_q)
    return totals


def _item_for_reading(line: dict[str, Any]) -> dict[str, Any]:
    item = copy_json(line)
    item["qty"] = Decimal(str(item["qty"]))
    return item


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 instant (as a check's ``expires_at``) as an aware datetime; ``None`` if absent or unreadable."""
    if not value:
        return None
    moment = value if isinstance(value, datetime) else parse_datetime(str(value))
    if moment is not None and timezone.is_naive(moment):
        moment = timezone.make_aware(moment, dt_timezone.utc)
    return moment


@dataclass(frozen=True)
class CheckState:
    """Where one check of a session stands (``Session.check_states()``).

    ``state`` is one of:

    * ``"missing"`` — it never ran (or was cleared by a modification);
    * ``"stale"`` — it ran on an older revision of the session;
    * ``"expired"`` — it ran on this revision, but its hold (``expires_at``) is past;
    * otherwise the status the check wrote for this revision: ``"ok"``,
      ``"issues"`` (it raised issues that are still there), ``"failed"``, or any
      other status its handler writes.

    The commit refuses a required check that is missing, stale or expired
    (``missing_check``, ``stale_check``, ``hold_expired``); it reads the rest
    through the session's issues.
    """

    MISSING = "missing"
    STALE = "stale"
    EXPIRED = "expired"
    OK = "ok"
    ISSUES = "issues"
    FAILED = "failed"
    # The commit's error code for each state that blocks it.
    COMMIT_ERRORS = {MISSING: "missing_check", STALE: "stale_check", EXPIRED: "hold_expired"}

    code: str
    label: str
    state: str
    required: bool = True
    check: dict[str, Any] = field(default_factory=dict)

    @property
    def pending(self) -> bool:
        """Waiting for a run on the current revision (missing or stale)."""
        return self.state in (self.MISSING, self.STALE)

    @property
    def blocks_commit(self) -> bool:
        return self.required and self.state in self.COMMIT_ERRORS

    @property
    def commit_error(self) -> str | None:
        """The commit's error code for this check, or ``None`` if it does not stop the commit."""
        return self.COMMIT_ERRORS.get(self.state) if self.required else None

    @property
    def expires_at(self) -> datetime | None:
        return parse_instant(self.check.get("expires_at"))


def empty_sessions() -> Q:
    """Sessions with nothing in them: no line, no customer or notes, and not parked (a parked session is a
    draft kept on purpose)."""
    return (
        Q(lines=[])
        & (Q(data__parked__isnull=True) | Q(data__parked=False))
        & Q(data__customer__isnull=True)
        & Q(data__notes__isnull=True)
    )


class Session(models.Model):
    """Mutable pre-commit state: a basket, a table tab, a draft.

    Only services change it (each modification bumps ``rev``). ``items`` is a
    read-only copy; the stored lines keep quantities as exact decimal text.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        COMMITTED = "committed", "Committed"
        ABANDONED = "abandoned", "Abandoned"

    session_key = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="sessions")
    handle_type = models.CharField(max_length=32, blank=True, default="")
    handle_ref = models.CharField(max_length=128, blank=True, default="")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN, db_index=True)
    pricing_policy = models.CharField(
        max_length=16, choices=Channel.PricingPolicy.choices, default=Channel.PricingPolicy.INTERNAL
    )
    edit_policy = models.CharField(max_length=16, choices=Channel.EditPolicy.choices, default=Channel.EditPolicy.OPEN)
    rev = models.PositiveIntegerField(default=0)
    data = models.JSONField(default=dict, blank=True)
    lines = models.JSONField(default=list, blank=True, editable=False)
    # Service charge, discounts, …: explicit entries (omniman.adjustments), their amounts filled by save().
    adjustments = models.JSONField(default=list, blank=True, editable=False)
    total_q = models.BigIntegerField(default=0, editable=False)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    committed_at = models.DateTimeField(null=True, blank=True)
    commit_token = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "handle_type", "handle_ref"],
                condition=Q(state="open") & ~Q(handle_ref=""),
                name="omniman_one_open_session_per_handle",
            ),
        ]
        indexes = [models.Index(fields=["channel", "state", "-opened_at"], name="omniman_session_listing")]

    def __str__(self) -> str:
        return self.session_key

    @property
    def items(self) -> list[dict[str, Any]]:
        """A copy of the lines (``qty`` as ``Decimal``); writing it changes nothing."""
        return [_item_for_reading(line) for line in self.lines]

    @property
    def items_count(self) -> int:
        return len(self.lines)

    @property
    def checks(self) -> dict[str, Any]:
        return copy_json((self.data or {}).get("checks") or {})

    @property
    def issues(self) -> list[dict[str, Any]]:
        return copy_json((self.data or {}).get("issues") or [])

    @property
    def is_open(self) -> bool:
        return self.state == self.State.OPEN

    def check_state(self, code: str, *, now: datetime | None = None, required: bool = True) -> CheckState:
        """Where the check ``code`` stands on this revision (see ``CheckState``)."""
        data = self.data or {}
        check = copy_json((data.get("checks") or {}).get(code) or {})
        if not check:
            state = CheckState.MISSING
        elif check.get("rev") != self.rev:
            state = CheckState.STALE
        else:
            expires_at = parse_instant(check.get("expires_at"))
            if expires_at is not None and expires_at <= (now or timezone.now()):
                state = CheckState.EXPIRED
            elif any(issue.get("source") == code for issue in data.get("issues") or []):
                state = CheckState.ISSUES
            else:
                state = str(check.get("status") or CheckState.OK)
        return CheckState(code=code, label=self.channel.check_label(code), state=state, required=required, check=check)

    def check_states(self, *, every: bool = False, now: datetime | None = None) -> list[CheckState]:
        """The state of each check the channel requires on commit (in its order), then, with ``every``, of any other check written."""
        now = now or timezone.now()
        required = self.channel.required_checks
        codes = list(required)
        if every:
            codes += [code for code in ((self.data or {}).get("checks") or {}) if code not in required]
        return [self.check_state(code, now=now, required=code in required) for code in codes]

    @property
    def totals(self) -> dict[str, Any]:
        """What the session owes, to show — the one computation (``omniman.adjustments.apply_adjustments``).

        ``{"items_q", "discount_q", "service_percent", "service_q",
        "surcharge_q", "void_q", "write_off_q", "adjustments_q", "total_q",
        "currency", "adjustments"}``; ``total_q == self.total_q``.
        """
        applied, totals = apply_adjustments(self.lines, self.adjustments or [], currency=self.channel.currency)
        totals["adjustments"] = applied
        return totals

    def save(self, *args, **kwargs):
        # The total is derived, never trusted: the line totals plus the adjustments (SPEC §2, §10).
        self.adjustments, totals = apply_adjustments(self.lines, self.adjustments or [])
        self.total_q = totals["total_q"]
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"lines", "adjustments"} & set(update_fields):
            kwargs["update_fields"] = list(dict.fromkeys([*update_fields, "adjustments", "total_q"]))
        if not args and set(kwargs) == {"update_fields"} and kwargs["update_fields"] and self.pk is not None:
            # The services' updates (a modify, a check, a commit): one UPDATE kept per connection (no signals:
            # nothing receives a session's). Inserts and other saves take the ORM's path.
            save_fields(self, kwargs["update_fields"])
            return
        super().save(*args, **kwargs)
