from __future__ import annotations

import copy
from typing import Any

from django.db import models

from omniman.exceptions import OmnimanError
from omniman.flow import OrderFlow
from omniman.models.channel import Channel
from omniman.adjustments import totals_of
from omniman.models.session import totals_over

SNAPSHOT_VERSION = 1
SUPPORTED_SNAPSHOT_VERSIONS = (1,)
SNAPSHOT_KEYS = ("_v", "items", "data", "rev", "channel_code", "pricing_policy", "total_q", "currency")


class ImmutableQuerySet(models.QuerySet):
    """Rows of this queryset are written once: no bulk update, no delete."""

    def update(self, **kwargs):
        raise OmnimanError("immutable", f"{self.model.__name__} rows cannot be updated")

    def delete(self):
        raise OmnimanError("immutable", f"{self.model.__name__} rows cannot be deleted")

    update.queryset_only = True
    delete.queryset_only = True


class OrderQuerySet(models.QuerySet):
    def update(self, **kwargs):
        frozen = sorted(set(kwargs) & {*Order.IMMUTABLE_FIELDS, *Order.STATUS_FIELDS})
        if frozen:
            raise OmnimanError(
                "immutable", "Order fields cannot be bulk-updated", {"fields": frozen}
            )
        return super().update(**kwargs)

    def delete(self):
        raise OmnimanError("immutable", "Orders cannot be deleted")

    update.queryset_only = True
    delete.queryset_only = True


class Order(models.Model):
    """What was sold: created once by a commit; only its status moves."""

    IMMUTABLE_FIELDS = (
        "ref",
        "channel_id",
        "session_key",
        "handle_type",
        "handle_ref",
        "external_ref",
        "snapshot",
        "currency",
        "total_q",
        "created_at",
    )
    STATUS_FIELDS = (
        "status",
        "confirmed_at",
        "processing_at",
        "ready_at",
        "dispatched_at",
        "delivered_at",
        "completed_at",
        "cancelled_at",
    )

    ref = models.CharField(max_length=64, unique=True)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="orders")
    session_key = models.CharField(max_length=64, blank=True, default="")
    handle_type = models.CharField(max_length=32, blank=True, default="")
    handle_ref = models.CharField(max_length=128, blank=True, default="")
    external_ref = models.CharField(max_length=128, blank=True, default="", db_index=True)
    status = models.CharField(max_length=32, db_index=True)
    snapshot = models.JSONField(default=dict)
    currency = models.CharField(max_length=8)
    total_q = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    processing_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The bill that pays it (issue #15): set by the billing services with a queryset update; not immutable.
    bill = models.ForeignKey(
        "omniman.Bill", on_delete=models.PROTECT, null=True, blank=True, related_name="orders", editable=False
    )

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # A session commits exactly once: at most one Order per session.
            models.UniqueConstraint(
                fields=["session_key"],
                condition=~models.Q(session_key=""),
                name="omniman_one_order_per_session",
            ),
        ]
        indexes = [
            models.Index(fields=["channel", "status", "-created_at"], name="omniman_order_board"),
            models.Index(fields=["channel", "handle_type", "handle_ref"], name="omniman_order_handle"),
        ]

    def __str__(self) -> str:
        return self.ref

    # -- immutability ---------------------------------------------------------

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # Only the status is remembered: loading an order (200 on a kitchen board) copies nothing.
        instance._loaded_status = instance.__dict__.get("status")
        return instance

    def save(self, *args, **kwargs):
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is not None:
                # Only the listed columns are written: none of them may be an immutable one.
                changed = sorted(set(update_fields) & {*self.IMMUTABLE_FIELDS, "channel"})
            else:
                # A full save writes every column: compare with the row (a rare path, one query).
                row = type(self).objects.filter(pk=self.pk).values(*self.IMMUTABLE_FIELDS, "status").first() or {}
                changed = [name for name in self.IMMUTABLE_FIELDS if name in row and row[name] != getattr(self, name)]
                self._loaded_status = row.get("status", getattr(self, "_loaded_status", self.status))
            if changed:
                raise OmnimanError("immutable", "An order's items, totals and snapshot never change", {"fields": changed})
            loaded_status = getattr(self, "_loaded_status", self.status)
            if loaded_status != self.status and not getattr(self, "_transitioning", False):
                raise OmnimanError("immutable", "Order status moves only through OrderService.transition")
        super().save(*args, **kwargs)
        self._loaded_status = self.status

    def delete(self, *args, **kwargs):
        raise OmnimanError("immutable", "Orders cannot be deleted")

    # -- snapshot -------------------------------------------------------------

    def get_snapshot(self) -> dict[str, Any]:
        """A copy of the commit-time snapshot, after checking its schema version."""
        snapshot = self.snapshot or {}
        version = snapshot.get("_v")
        if version not in SUPPORTED_SNAPSHOT_VERSIONS:
            raise OmnimanError(
                "unsupported_snapshot_version",
                f"Order {self.ref} has a snapshot of unknown version {version!r}",
                {"order_ref": self.ref, "version": version, "supported": list(SUPPORTED_SNAPSHOT_VERSIONS)},
            )
        missing = [key for key in SNAPSHOT_KEYS if key not in snapshot]
        if missing:
            raise OmnimanError(
                "unsupported_snapshot_version",
                f"Order {self.ref} has a snapshot without {', '.join(missing)}",
                {"order_ref": self.ref, "version": version, "missing": missing},
            )
        return copy.deepcopy(snapshot)

    @property
    def adjustments(self) -> list[dict[str, Any]]:
        """The adjustments the order was committed with (service charge, discounts…); ``[]`` for orders from before them."""
        return copy.deepcopy(list((self.snapshot or {}).get("adjustments") or []))

    @property
    def totals(self) -> dict[str, Any]:
        """What the order charged, to show (the keys of ``Session.totals``).

        From the snapshot's ``adjustments`` (their amounts as committed, not
        computed again): ``totals["total_q"] == self.total_q``. An order
        committed before adjustments existed has none: it shows the totals its
        session's pricing modifier wrote (``snapshot["data"]["totals"]``), as it
        did then.
        """
        snapshot = self.snapshot or {}
        if "adjustments" in snapshot:
            items_q = sum(int(item.get("line_total_q") or 0) for item in snapshot.get("items") or [])
            totals = totals_of(items_q, snapshot.get("adjustments") or [], currency=self.currency)
            totals["total_q"] = self.total_q
        else:
            totals = totals_over((snapshot.get("data") or {}).get("totals"), self.total_q)
        totals["adjustments"] = self.adjustments
        return totals

    @property
    def charged_q(self) -> int:
        """The order's total as charged (service and discounts included): ``totals["total_q"]``, which is ``total_q`` for every order committed with adjustments."""
        return int(self.totals["total_q"])

    # -- status flow ----------------------------------------------------------

    @property
    def flow(self) -> OrderFlow:
        return self.channel.order_flow

    @property
    def is_terminal(self) -> bool:
        return self.flow.is_terminal(self.status)

    def get_allowed_transitions(self) -> list[str]:
        return self.flow.allowed_from(self.status)

    def can_transition_to(self, status: str) -> bool:
        return self.flow.can(self.status, status)

    def may_transition_to(self, status: str, roles) -> bool:
        """May someone with ``roles`` move this order to ``status`` now (``OrderFlow.may_transition``)?"""
        return self.flow.may_transition(roles, self.status, status)

    def transition_status(
        self, new_status: str, *, actor: str = "system", expected_status: str | None = None, reason: str = "", roles=None
    ) -> Order:
        """Move to ``new_status`` through ``OrderService.transition`` and refresh this instance."""
        from omniman.services import OrderService

        fresh = OrderService.transition(
            self.ref, new_status, actor=actor, expected_status=expected_status, reason=reason, roles=roles
        )
        for name in self.STATUS_FIELDS + ("updated_at",):
            setattr(self, name, getattr(fresh, name))
        self._loaded_status = fresh.status
        return self

    def emit_event(self, type: str, *, actor: str = "system", payload: dict[str, Any] | None = None) -> OrderEvent:
        return OrderEvent.objects.create(order=self, type=type, actor=actor, payload=payload or {})


class OrderItem(models.Model):
    """One line of an Order: written with the order, never changed."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="items")
    line_id = models.CharField(max_length=64)
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=255, blank=True, default="")
    qty = models.DecimalField(max_digits=12, decimal_places=3)
    unit_price_q = models.BigIntegerField()
    line_total_q = models.BigIntegerField()
    meta = models.JSONField(default=dict, blank=True)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["order_id", "id"]
        constraints = [models.UniqueConstraint(fields=["order", "line_id"], name="omniman_orderitem_line")]

    def __str__(self) -> str:
        return f"{self.qty} × {self.sku}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise OmnimanError("immutable", "Order items never change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise OmnimanError("immutable", "Order items cannot be deleted")


class OrderEvent(models.Model):
    """The append-only audit trail of an Order."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=64, db_index=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ImmutableQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "type"], name="omniman_event_type")]

    def __str__(self) -> str:
        return f"{self.type} by {self.actor or '-'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise OmnimanError("immutable", "Order events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise OmnimanError("immutable", "Order events are append-only")
