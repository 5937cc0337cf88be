"""The operator's language: chosen in the header, remembered per user.

Django's ``set_language`` sets the language cookie for this browser; the choice
is also stored on the user (:class:`LanguagePreference`) and copied into the
login session, so the same person gets their language on any device after
signing in. :class:`UserLanguageMiddleware` applies it (after the session and
the user are known), reading only the session: no query per request.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db import InterfaceError, OperationalError
from django.dispatch import receiver
from django.utils import translation
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from omniman.web.models import LanguagePreference

SESSION_KEY = "omniman_language"
DATABASE_ERRORS = (OperationalError, InterfaceError)


def supported(code: str | None) -> str | None:
    """``code`` as one of ``LANGUAGES`` (``pt-BR`` → ``pt-br``), or ``None``."""
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code.strip().lower())
    except LookupError:
        return None


@require_POST
def set_language(request):
    """Django's ``set_language`` (cookie, ``next`` redirect), plus the user's stored preference."""
    response = django_set_language(request)
    language = supported(request.POST.get("language"))
    if language and request.user.is_authenticated:
        LanguagePreference.objects.update_or_create(user=request.user, defaults={"language": language})
        request.session[SESSION_KEY] = language
    return response


@receiver(user_logged_in, dispatch_uid="omniman_language_on_login")
def restore_language(sender, request, user, **kwargs) -> None:
    """Signing in brings back the user's language (one query, at login only)."""
    if request is None or not hasattr(request, "session"):
        return
    language = LanguagePreference.objects.filter(user=user).values_list("language", flat=True).first()
    if supported(language):
        request.session[SESSION_KEY] = language


class UserLanguageMiddleware:
    """After ``AuthenticationMiddleware``: the signed-in user's language wins over the browser's."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        language = None
        if session is not None and settings.SESSION_COOKIE_NAME in request.COOKIES:
            try:
                language = supported(session.get(SESSION_KEY))
            except DATABASE_ERRORS:
                # The database is down: the view meets it again and answers 503 (omniman.web.outage).
                language = None
        if language and language != translation.get_language():
            translation.activate(language)
            request.LANGUAGE_CODE = language
        # LocaleMiddleware's response half writes Content-Language from the active language.
        return self.get_response(request)
