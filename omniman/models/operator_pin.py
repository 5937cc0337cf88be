from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OperatorPin(models.Model):
    """A person's approval PIN (hashed like a password): a manager types it on a cashier's screen to approve.

    Set by its owner (the operator app's "My PIN" page) or by an admin; read
    only through ``omniman.approvals`` (which counts failures and locks the PIN
    for a while after too many).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="omniman_pin", verbose_name=_("user")
    )
    pin_hash = models.CharField(_("PIN (hashed)"), max_length=256, editable=False)
    failed_attempts = models.PositiveIntegerField(_("failed attempts"), default=0, editable=False)
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("operator PIN")
        verbose_name_plural = _("operator PINs")

    def __str__(self) -> str:
        return str(self.user)
