"""``omniman_printing.W001``: a channel's ``config["printers"]`` in the database cannot be read.

Like the kernel's ``omniman.W031``, it reads the database, so it runs when a
database is named (``manage.py check --database default``, and ``migrate``).
"""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError

from omniman.contrib.printing import channel_printers
from omniman.contrib.printing.exceptions import PrintingError


@checks.register("omniman", checks.Tags.database)
def check_printer_configs(app_configs=None, databases=None, **kwargs) -> list[checks.CheckMessage]:
    from omniman.models import Channel

    messages: list[checks.CheckMessage] = []
    for alias in databases or ():
        try:
            rows = list(Channel.objects.using(alias).order_by("code").values_list("code", "config"))
        except DatabaseError:  # not migrated yet
            continue
        for code, config in rows:
            try:
                channel_printers(config if isinstance(config, dict) else {})
            except PrintingError as error:
                messages.append(
                    checks.Warning(
                        f"Channel {code!r} (database {alias!r}) has printers it cannot use: {error.message}",
                        hint='Each printer is "host[:port]" or {"host", "port", "paper": 58|80, "timeout"} (docs: Receipts, Pix and printers).',
                        obj=f"Channel {code}",
                        id="omniman_printing.W001",
                    )
                )
    return messages
