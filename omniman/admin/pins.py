"""Operator PINs: an admin (a manager) sets or resets someone's approval PIN; the PIN itself is never shown."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from omniman.admin.base import ManagerAdmin
from omniman.approvals import set_pin, valid_pin
from omniman.models import OperatorPin


class OperatorPinForm(forms.ModelForm):
    pin = forms.CharField(
        label=_("New PIN"), min_length=4, max_length=8, strip=True, widget=forms.PasswordInput,
        help_text=_("4 to 8 digits. It replaces the current PIN and clears a lock after wrong tries."),
    )

    class Meta:
        model = OperatorPin
        fields = ("user",)

    def clean_pin(self):
        pin = self.cleaned_data["pin"]
        if not valid_pin(pin):
            raise forms.ValidationError(_("A PIN is 4 to 8 digits."), code="invalid_pin")
        return pin


@admin.register(OperatorPin)
class OperatorPinAdmin(ManagerAdmin):
    form = OperatorPinForm
    list_display = ("user", "updated_at", "locked_until")
    search_fields = ("user__username",)
    readonly_fields = ("updated_at", "locked_until", "failed_attempts")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "user") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Through ``omniman.approvals.set_pin`` (hashed; a lock cleared), like the owner's "My PIN" page."""
        row = set_pin(obj.user, form.cleaned_data["pin"])
        obj.pk, obj.pin_hash, obj.failed_attempts, obj.locked_until = row.pk, row.pin_hash, 0, None
        obj._state.adding = False
