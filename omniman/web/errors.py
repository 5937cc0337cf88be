"""The operator UI's one error mapper: an OmnimanError code → an HTTP status (the kernel's ``http_status``) and a banner."""

from __future__ import annotations

from omniman.exceptions import OmnimanError, http_status


def status_for(error: OmnimanError, *, htmx_form: bool = True) -> int:
    """The kernel's ``http_status``; refused input in an HTMX form answers 422 (the form re-rendered), not 400."""
    return http_status(error, form=htmx_form)


MESSAGES = {
    "stale_rev": "This {session} changed on another screen. Your change was not applied — here is the current {session}.",
    "already_committed": "This {session} was already sent. Nothing was changed.",
    "abandoned": "This {session} was closed on another screen. Nothing was changed.",
    "in_progress": "This order is already being placed — one moment.",
    "locked": "This {session}'s items come from the channel and cannot be edited here.",
    "blocking_issues": "Resolve the issues marked below before sending.",
    "missing_check": "The checks have not finished yet: press “Check now”.",
    "stale_check": "The checks are out of date: press “Check now”.",
    "hold_expired": "The stock hold expired: press “Check now” to hold again.",
    "empty_session": "Add an item first.",
    "issue_not_found": "That issue was already resolved — here is the current {session}.",
    "action_not_found": "That action is no longer offered — here is the current {session}.",
}


def banner_for(error: OmnimanError, *, session_word: str) -> str:
    template = MESSAGES.get(error.code)
    if template:
        return template.format(session=session_word.lower())
    return error.message
