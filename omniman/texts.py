"""Text stored in data (issues, their actions) that each reader sees in their own language.

A directive handler writes an issue once, in the background, with no user's
language to speak. Next to the English ``message`` (what the API returns) it
stores the message's id and parameters; a screen shows it translated:

    issue = {"code": "out_of_stock", **message(OUT_OF_STOCK, name="Brownie"), ...}
    localized(issue)["message"]  # "Brownie está em falta." under pt-br

``message_id``/``label_id`` are English msgids marked with ``gettext_noop``
where they are written, so ``makemessages`` puts them in the catalogue.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext, gettext_lazy


def message(msgid: str, key: str = "message", **params: Any) -> dict[str, Any]:
    """``{"message": <English text>, "message_id": msgid, "params": params}`` (``key="label"`` for an action)."""
    return {key: msgid % params if params else msgid, f"{key}_id": msgid, "params": params}


def translated(entry: dict[str, Any], key: str = "message") -> str:
    """``entry[key]`` in the active language when the entry carries its id, else as stored."""
    msgid = entry.get(f"{key}_id")
    if isinstance(msgid, str) and msgid:
        params = entry.get("params") or {}
        try:
            return gettext(msgid) % params if params else gettext(msgid)
        except (KeyError, TypeError, ValueError):
            pass
    return str(entry.get(key) or "")


def localized(issue: dict[str, Any]) -> dict[str, Any]:
    """A copy of an issue with its message and its actions' labels in the active language."""
    return {
        **issue,
        "message": translated(issue),
        "actions": [{**action, "label": translated(action, "label")} for action in issue.get("actions") or []],
    }


# What a session's handle is (``handle_type``), as screens name it.
HANDLE_LABELS = {
    "table": gettext_lazy("Table"),
    "order": gettext_lazy("Order"),
    "customer": gettext_lazy("Customer"),
    "external": gettext_lazy("External"),
}


def handle_label(handle_type: str) -> str:
    """``"table"`` → ``Table`` (``Mesa`` in pt-br); an unknown type capitalized."""
    label = HANDLE_LABELS.get(handle_type or "")
    return str(label) if label else (handle_type or "").replace("_", " ").capitalize()


def status_label(status: str) -> str:
    """An order status in the active language (``"ready"`` → ``Ready``, ``Pronto``), no channel's words."""
    from omniman.models.channel import TERM_DEFAULTS

    label = TERM_DEFAULTS.get(status or "")
    return str(label) if label else (status or "").replace("_", " ").capitalize()


def modifiers_text(meta: dict[str, Any] | None, separator: str = " · ") -> str:
    """A line's modifiers as one text ("Medium · Bacon · No onions"), from ``meta["modifiers"]``.

    For the bill, the receipt and the kitchen ticket; "" when the line has none. Entries that are
    not objects with a name (a client's raw choices on an unpriced channel) show as given.
    """
    entries = (meta or {}).get("modifiers")
    if not isinstance(entries, list):
        return ""
    names = []
    for entry in entries:
        if isinstance(entry, dict):
            names.append(str(entry.get("name") or entry.get("option") or ""))
        elif isinstance(entry, str):
            names.append(entry)
    return separator.join(name for name in names if name)
