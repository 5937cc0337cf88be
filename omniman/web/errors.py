"""The operator UI's one error mapper: an OmnimanError code → an HTTP status (SPEC §4)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from omniman.exceptions import (
    GONE_CODES,
    REFUSED_INPUT_CODES,
    WORLD_CHANGED_CODES,
    OmnimanError,
    ValidationError,
)


def status_for(error: OmnimanError, *, htmx_form: bool = True) -> int:
    """409 when the world changed under the user, 404 for what is gone, 422 (a form) or 400 for bad input."""
    if error.code in WORLD_CHANGED_CODES:
        return 409
    if error.code in GONE_CODES:
        return 404
    if isinstance(error, ValidationError):
        return 422 if htmx_form else 400
    if error.code in REFUSED_INPUT_CODES:
        return 422 if htmx_form else 400
    return 500


MESSAGES = {
    "stale_rev": _("This %(session)s changed on another screen. Your change was not applied — here is the current %(session)s."),
    "already_committed": _("This %(session)s was already sent. Nothing was changed."),
    "abandoned": _("This %(session)s was closed on another screen. Nothing was changed."),
    "in_progress": _("This order is already being placed — one moment."),
    "locked": _("This %(session)s's items come from the channel and cannot be edited here."),
    "blocking_issues": _("Resolve the issues marked below before sending."),
    "missing_check": _("The checks have not finished yet: press “Check now”."),
    "stale_check": _("The checks are out of date: press “Check now”."),
    "hold_expired": _("The stock hold expired: press “Check now” to hold again."),
    "empty_session": _("Add an item first."),
    "issue_not_found": _("That issue was already resolved — here is the current %(session)s."),
    "action_not_found": _("That action is no longer offered — here is the current %(session)s."),
}


def banner_for(error: OmnimanError, *, session_word: str) -> str:
    template = MESSAGES.get(error.code)
    if template:
        return str(template) % {"session": session_word.lower()}
    return error.message
