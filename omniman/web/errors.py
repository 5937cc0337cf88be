"""The operator UI's one error mapper: an OmnimanError code → an HTTP status (the kernel's ``http_status``) and a banner."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from omniman.exceptions import OmnimanError, http_status


# A manager's approval asked for (or refused) on a form: the form comes back asking for the manager's PIN —
# more input, so 422 like any form to complete (htmx swaps it), where the API answers the kernel's 403.
APPROVAL_CODES = frozenset({"approval_required", "approval_failed"})


def status_for(error: OmnimanError, *, htmx_form: bool = True) -> int:
    """The kernel's ``http_status``; refused input in an HTMX form answers 422 (the form re-rendered), not 400,
    and so does a form that needs a manager's approval (``APPROVAL_CODES``)."""
    if htmx_form and error.code in APPROVAL_CODES:
        return 422
    return http_status(error, form=htmx_form)


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
