"""The floor plan of a table channel: areas (Salão, Varanda…) and the tables placed on their grid.

A table is a session handle (``handle_type`` one of the channel's flow
``table_handle_types``, ``handle_ref`` = its ``label``): the plan only says
where it stands and how many it seats. Tabs, rounds and moves between tables
are the kernel services' (``omniman.services.FloorService``); every move is
recorded as a ``TableMove`` (append-only), and each order it carries along gets
an ``OrderEvent("table_moved")``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from omniman.exceptions import OmnimanError
from omniman.models.channel import Channel

# The editor's grid: columns × rows (a table is w × h cells of it).
GRID_COLUMNS = 24
GRID_ROWS = 16


class FloorArea(models.Model):
    """A room or terrace of a table channel's floor (its tables are placed on its grid)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="floor_areas", verbose_name=_("channel"))
    name = models.CharField(_("name"), max_length=64)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        ordering = ["channel_id", "position", "id"]
        verbose_name = _("floor area")
        verbose_name_plural = _("floor areas")
        constraints = [models.UniqueConstraint(fields=["channel", "name"], name="omniman_floorarea_name")]

    def __str__(self) -> str:
        return f"{self.channel.code} · {self.name}"


class FloorTable(models.Model):
    """A table on an area's grid: ``label`` is the handle_ref its tab is opened with (unique in the channel)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="floor_tables", verbose_name=_("channel"))
    area = models.ForeignKey(FloorArea, on_delete=models.CASCADE, related_name="tables", verbose_name=_("area"))
    label = models.CharField(_("label"), max_length=32)
    seats = models.PositiveSmallIntegerField(_("seats"), default=4)
    x = models.PositiveSmallIntegerField(_("column"), default=0)
    y = models.PositiveSmallIntegerField(_("row"), default=0)
    w = models.PositiveSmallIntegerField(_("width"), default=2)
    h = models.PositiveSmallIntegerField(_("height"), default=2)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["area__position", "area_id", "y", "x", "id"]
        verbose_name = _("floor table")
        verbose_name_plural = _("floor tables")
        constraints = [models.UniqueConstraint(fields=["channel", "label"], name="omniman_floortable_label")]

    def __str__(self) -> str:
        return self.label

    def clean(self):
        errors = {}
        if self.area_id and self.channel_id and self.area.channel_id != self.channel_id:
            errors["area"] = _("The area belongs to another channel.")
        if not (self.label or "").strip():
            errors["label"] = _("A table needs a label.")
        if not 1 <= (self.w or 0) <= GRID_COLUMNS or not 1 <= (self.h or 0) <= GRID_ROWS:
            errors["w"] = _("A table is 1 to %(columns)s cells wide and 1 to %(rows)s tall.") % {
                "columns": GRID_COLUMNS, "rows": GRID_ROWS}
        elif (self.x or 0) + self.w > GRID_COLUMNS or (self.y or 0) + self.h > GRID_ROWS:
            errors["x"] = _("The table must fit on the %(columns)s × %(rows)s grid.") % {
                "columns": GRID_COLUMNS, "rows": GRID_ROWS}
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs):
        if self.area_id and not self.channel_id:
            self.channel_id = self.area.channel_id
        self.label = (self.label or "").strip()
        super().save(*args, **kwargs)


class TableMoveQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise OmnimanError("immutable", "Table moves are append-only")

    def delete(self):
        raise OmnimanError("immutable", "Table moves are append-only")

    update.queryset_only = True
    delete.queryset_only = True


class TableMove(models.Model):
    """The audit of one move between tables (append-only): lines, a whole tab, or a merge."""

    class Kind(models.TextChoices):
        LINES = "lines", _("Lines transferred")
        TAB = "tab", _("Tab moved")
        MERGE = "merge", _("Tabs merged")

    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="table_moves")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    from_table = models.CharField(max_length=128)
    to_table = models.CharField(max_length=128)
    from_session_key = models.CharField(max_length=64)
    to_session_key = models.CharField(max_length=64)
    line_ids = models.JSONField(default=list, blank=True)
    order_refs = models.JSONField(default=list, blank=True)
    actor = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TableMoveQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("table move")
        verbose_name_plural = _("table moves")

    def __str__(self) -> str:
        return f"{self.kind}: {self.from_table} → {self.to_table}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise OmnimanError("immutable", "Table moves are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise OmnimanError("immutable", "Table moves are append-only")
