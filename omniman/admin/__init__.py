"""The manager review: the kernel's models in the django-unfold admin.

Only managers enter (:mod:`omniman.admin.site`). No admin form bypasses a
service: ``rev``, items, snapshot, status and totals are read-only here. What
a manager changes goes through the kernel:

* an order's status — ``OrderService.transition`` with the status the page
  showed as ``expected_status`` (a stale page gets a message, never a change);
* a note on an order — ``events.note_added`` (an ``OrderEvent("note")``);
* abandoning a session — ``SessionService.abandon_session``;
* running or retrying directives — :mod:`omniman.admin.actions` (the engine's claim);
* a channel's config — validated before it is saved.

Every list and detail page runs a bounded number of queries, whatever its rows.

The package: ``site`` (the door and the sidebar), ``base`` (the permission
mixins other apps' admins build on), ``renderers``, ``filters``, one module per
model admin (``orders``, ``bills``, ``sessions``, ``directives``, ``channels``,
``idempotency``, ``workers``, ``shifts``), ``actions`` (run now / retry) and ``dashboard``. Django's
admin autodiscovery imports this package, which registers the model admins.
"""

from omniman.admin import bills, checks, channels, directives, floor, idempotency, orders, pins, sessions, shifts, workers  # noqa: F401  (registers them)
from omniman.admin.base import (
    ManagerAdmin,
    ManagerInline,
    ManagerOnly,
    NoWrites,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceActionsMixin,
)
from omniman.channel_config import channel_config_problems  # kept here too: its home before the kernel had it

__all__ = [
    "channel_config_problems",
    "ManagerAdmin",
    "ManagerInline",
    "ManagerOnly",
    "NoWrites",
    "ReadOnlyAdmin",
    "ReadOnlyInline",
    "ServiceActionsMixin",
]
