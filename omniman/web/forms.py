"""The POS's forms: every POST is parsed here before a service is called.

A bad input never reaches a service: the view answers 422 with the form's
errors next to its fields and the text the person typed kept in them. The
fields check shape and bounds (a money amount, a quantity, a rev, text
lengths); the kernel still checks meaning (an unknown line, a stale rev).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.utils.formats import get_format
from django.utils.translation import gettext_lazy as _

from omniman.monetary import MAX_QTY, MAX_UNIT_PRICE_Q, minor_units, parse_qty, qty_to_str

MAX_REV = 2**31 - 1


def _decimal_text(value: str) -> str:
    """``value`` with the locale's decimal separator (and ``,``) read as a point; no grouping allowed."""
    text = value.strip()
    for separator in {get_format("DECIMAL_SEPARATOR"), ","} - {"."}:
        text = text.replace(separator, ".")
    return text


class TextField(forms.CharField):
    """Stripped text of at most ``limit`` characters; too long says which field and its limit."""

    default_error_messages = {
        "too_long": _("%(label)s is too long (at most %(limit)d characters)."),
        "required": _("%(label)s is required."),
    }

    def __init__(self, *, limit: int, required: bool = False, **kwargs):
        self.limit = limit
        super().__init__(required=required, strip=True, **kwargs)

    def validate(self, value):
        if value in self.empty_values and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required", params={"label": self.label})
        if value and len(value) > self.limit:
            raise forms.ValidationError(
                self.error_messages["too_long"], code="too_long", params={"label": self.label, "limit": self.limit}
            )

    def widget_attrs(self, widget):
        return {**super().widget_attrs(widget), "maxlength": str(self.limit)}


class MoneyField(forms.Field):
    """An amount typed in currency units (``12.50`` or ``12,50``), cleaned to integer quanta (``1250``).

    Non-negative, at most the currency's minor units of decimals, at most
    ``MAX_UNIT_PRICE_Q`` quanta. No exponent, no grouping, no NaN.
    """

    default_error_messages = {
        "invalid": _("Enter an amount like 12.50 (at most %(places)d decimals)."),
        "negative": _("The amount cannot be negative."),
        "too_large": _("The amount is too large."),
    }

    def __init__(self, *, currency: str = "", **kwargs):
        self.places = minor_units(currency)
        super().__init__(**kwargs)

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = _decimal_text(str(value))
        invalid = forms.ValidationError(self.error_messages["invalid"], code="invalid", params={"places": self.places})
        body = text.lstrip("+-")
        if not body or body.count(".") > 1 or not body.replace(".", "").isdigit() or len(body) > 40:
            raise invalid
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise invalid from None
        if amount < 0:
            raise forms.ValidationError(self.error_messages["negative"], code="negative")
        quanta = amount.scaleb(self.places)
        if quanta != quanta.to_integral_value():
            raise invalid
        if quanta > MAX_UNIT_PRICE_Q:
            raise forms.ValidationError(self.error_messages["too_large"], code="too_large")
        return int(quanta)


class QtyField(forms.Field):
    """A positive quantity with at most 3 decimals (``2``, ``1.5``, ``1,5``), cleaned to its canonical text."""

    default_error_messages = {
        "invalid": _("The qty must be a positive number with at most 3 decimal places (and at most %(max)s)."),
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        qty = parse_qty(_decimal_text(str(value))) if len(str(value)) <= 40 else None
        if qty is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid", params={"max": MAX_QTY})
        return qty_to_str(qty)


class RevField(forms.IntegerField):
    """The session's rev the form was rendered at (hidden)."""

    default_error_messages = {
        "required": _("This form is missing the session's revision; reload the page."),
        "invalid": _("This form's revision is not valid; reload the page."),
        "min_value": _("This form's revision is not valid; reload the page."),
        "max_value": _("This form's revision is not valid; reload the page."),
    }
    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        super().__init__(min_value=0, max_value=MAX_REV, **kwargs)


class DeltaField(forms.ChoiceField):
    """A +/− step: ``"1"``, ``"+1"`` or ``"-1"``, cleaned to ``"1"`` or ``"-1"``."""

    default_error_messages = {"invalid_choice": _("The step must be +1 or −1.")}

    def __init__(self, **kwargs):
        super().__init__(choices=[("1", "+1"), ("+1", "+1"), ("-1", "−1")], **kwargs)

    def clean(self, value):
        value = super().clean((value or "").strip() if isinstance(value, str) else value)
        return value.lstrip("+") if value else value


# -- the POS's forms ------------------------------------------------------------------


class SessionForm(forms.Form):
    """Every form that changes a session carries the rev it was rendered at."""

    rev = RevField()

    def refusal(self) -> str:
        """The first error, for the banner."""
        for errors in self.errors.values():
            for message in errors:
                return message
        return ""


class ModifiersInput(forms.MultipleHiddenInput):
    """Every ``modifier`` and ``modifier-<group>`` value (a group's radios share a name of their own)."""

    def value_from_datadict(self, data, files, name):
        getlist = getattr(data, "getlist", None)
        values = []
        for key in data:
            if key == name or key.startswith(name + "-"):
                values.extend(getlist(key) if getlist is not None else [data[key]])
        return values


class ModifiersField(forms.Field):
    """The options chosen in the POS's options step: ``modifier`` values ``group:option`` (radios, checkboxes)."""

    widget = ModifiersInput
    default_error_messages = {"invalid": _("Choose the options again.")}

    def to_python(self, value):
        if not value:
            return []
        if not isinstance(value, (list, tuple)) or len(value) > 32:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        values = [str(v).strip() for v in value if str(v).strip()]
        if any(len(v) > 130 or v.count(":") != 1 for v in values):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return values


class AddForm(SessionForm):
    sku = TextField(limit=64, label=_("Product"))
    q = forms.CharField(required=False, strip=True)  # a scan or a name: what fits the search is used
    qty = QtyField(required=False)
    modifier = ModifiersField(required=False)
    options = forms.BooleanField(required=False)  # sent from the options step: its choices are the whole answer

    def clean_q(self):
        return self.cleaned_data["q"][:64]

    def clean_qty(self):
        return self.cleaned_data["qty"] or "1"


class QtyForm(SessionForm):
    """A line's +/− (``delta``) or an exact ``qty``."""

    delta = DeltaField(required=False)
    qty = QtyField(required=False)

    def clean(self):
        cleaned = super().clean()
        if not self.has_error("delta") and not self.has_error("qty") and not cleaned.get("delta") and not cleaned.get("qty"):
            self.add_error("qty", forms.ValidationError(QtyField.default_error_messages["invalid"], code="required", params={"max": MAX_QTY}))
        return cleaned


class NoteForm(SessionForm):
    note = TextField(limit=200, label=_("Note"))


class HoldForm(SessionForm):
    """Hold a line (a later course: it reaches the kitchen held, until fired) or release it."""

    hold = forms.BooleanField(required=False)


class FireForm(SessionForm):
    order_ref = TextField(limit=64, required=True, label=_("Order"))


class PriceForm(SessionForm):
    """A manager's unit price override, in currency units, with a reason."""

    reason = TextField(limit=200, required=True, label=_("Reason"))

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["price"] = MoneyField(currency=currency, label=_("Price"))
        self.order_fields(["rev", "price", "reason"])


class DiscountForm(SessionForm):
    """A discount on a line (``line_id``) or the whole: ``value`` as a percent or an amount (``mode``), with a reason.

    ``approved_by`` and ``pin``: a manager's approval typed on this screen (the PIN dialog), when the discount is
    over the channel's threshold.
    """

    PERCENT, AMOUNT = "percent", "amount"

    line_id = forms.CharField(required=False, max_length=64)
    mode = forms.ChoiceField(choices=[(PERCENT, "%"), (AMOUNT, _("Amount"))], initial=PERCENT, label=_("Discount in"))
    value = forms.CharField(max_length=20, label=_("Discount"), error_messages={"required": _("Discount is required.")})
    reason = TextField(limit=200, required=True, label=_("Reason"))
    approved_by = TextField(limit=150, label=_("Manager"))
    pin = forms.CharField(required=False, max_length=8, strip=True, label=_("PIN"))

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency

    def clean(self):
        cleaned = super().clean()
        value = cleaned.get("value")
        if value is None:
            return cleaned
        if cleaned.get("mode") == self.AMOUNT:
            try:
                cleaned["amount_q"] = MoneyField(currency=self.currency).clean(value)
            except forms.ValidationError as exc:
                self.add_error("value", exc)
            cleaned["percent"] = None
        else:
            text = _decimal_text(value)
            try:
                Decimal(text)
            except InvalidOperation:
                self.add_error("value", _("A percent is a number such as 10 or 12,5."))
            cleaned["percent"] = text
            cleaned["amount_q"] = None
        return cleaned


class PinForm(forms.Form):
    """Set one's own approval PIN (4 to 8 digits), typed twice."""

    pin = forms.CharField(min_length=4, max_length=8, strip=True, label=_("New PIN"), widget=forms.PasswordInput)
    again = forms.CharField(max_length=8, strip=True, label=_("The PIN again"), widget=forms.PasswordInput)

    def clean(self):
        cleaned = super().clean()
        pin = cleaned.get("pin") or ""
        if pin and not (pin.isascii() and pin.isdigit()):
            self.add_error("pin", _("A PIN is 4 to 8 digits."))
        elif pin and cleaned.get("again") != pin:
            self.add_error("again", _("The two PINs differ."))
        return cleaned


class CustomerForm(SessionForm):
    name = TextField(limit=120, label=_("Name"))
    phone = TextField(limit=40, label=_("Phone"))
    notes = TextField(limit=500, label=_("Notes"))


class ResolveForm(SessionForm):
    issue_id = forms.CharField(required=False, max_length=255)
    action_id = forms.CharField(required=False, max_length=255)


class CheckForm(SessionForm):
    auto = forms.BooleanField(required=False)


class CommitForm(SessionForm):
    idempotency_key = forms.CharField(
        max_length=255, error_messages={"required": _("This form has no idempotency key; reload the page.")}
    )


class OpenForm(forms.Form):
    """A table to open (or go to); without one, a new basket."""

    table = TextField(limit=32, label=_("Table"))


# -- the bill's forms (omniman.web.bill) ---------------------------------------------------


class BillRevField(RevField):
    """The bill's rev the form was rendered at (hidden)."""

    default_error_messages = {
        "required": _("This form is missing the bill's revision; reload the page."),
        "invalid": _("This form's revision is not valid; reload the page."),
        "min_value": _("This form's revision is not valid; reload the page."),
        "max_value": _("This form's revision is not valid; reload the page."),
    }


class PercentField(forms.Field):
    """A percentage in (0, 100] with at most 2 decimals (``10``, ``12.5``, ``12,5``), cleaned to its text (``"12.5"``)."""

    default_error_messages = {"invalid": _("Enter a percentage above 0 and at most 100 (e.g. 10 or 12.5).")}

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = _decimal_text(str(value)).rstrip("%").strip()
        invalid = forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if len(text) > 12 or not text.replace(".", "", 1).isdigit():
            raise invalid
        try:
            percent = Decimal(text)
        except InvalidOperation:
            raise invalid from None
        if not 0 < percent <= 100 or percent != percent.quantize(Decimal("0.01")):
            raise invalid
        return format(percent.normalize(), "f")


class BillForm(forms.Form):
    """Every form that changes a bill carries the rev it was rendered at."""

    rev = BillRevField()

    refusal = SessionForm.refusal


class ApprovalMixin(forms.Form):
    """A manager's approval typed on the cashier's screen: the manager's username and PIN (both or neither)."""

    approver = TextField(limit=150, label=_("Manager"))
    pin = forms.CharField(required=False, max_length=32, strip=True, widget=forms.PasswordInput)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("approver") and not cleaned.get("pin"):
            self.add_error("pin", forms.ValidationError(_("Type the manager's PIN."), code="required"))
        if cleaned.get("pin") and not cleaned.get("approver"):
            self.add_error("approver", forms.ValidationError(_("Type the manager's username."), code="required"))
        return cleaned


class TenderForm(BillForm):
    """One payment: the method, the part it pays (a split), the amount (empty: what is due), the tip and the
    method's details (cash tendered — typed, or a quick-tender button's ``quick`` amount in quanta —, card brand
    and authorization code, Pix/gateway reference)."""

    idempotency_key = forms.CharField(
        max_length=64, error_messages={"required": _("This form has no idempotency key; reload the page.")}
    )
    method = forms.CharField(max_length=32)
    part = forms.IntegerField(required=False, min_value=0, max_value=99, widget=forms.HiddenInput)
    tip_percent = PercentField(required=False, label=_("Tip %"))
    quick = forms.IntegerField(required=False, min_value=0, max_value=MAX_UNIT_PRICE_Q)
    brand = TextField(limit=32, label=_("Card brand"))
    reference = TextField(limit=64, label=_("Authorization code"))

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = MoneyField(currency=currency, required=False, label=_("Amount"))
        self.fields["tip"] = MoneyField(currency=currency, required=False, label=_("Tip"))
        self.fields["tendered"] = MoneyField(currency=currency, required=False, label=_("Cash received"))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("quick") is not None:
            cleaned["tendered"] = cleaned["quick"]
        if cleaned.get("amount") == 0:
            self.add_error("amount", forms.ValidationError(_("The amount must be above zero."), code="invalid"))
        return cleaned


class SplitForm(BillForm):
    """How the bill is split: ``equal`` in ``parts``; ``items`` (each line's guest in ``guest-<n>`` fields,
    parsed by the view) with the rest equally by ``rest_parts``; ``none`` undoes the split."""

    mode = forms.ChoiceField(choices=[("equal", "equal"), ("items", "items"), ("none", "none")])
    parts = forms.IntegerField(required=False, min_value=2, max_value=20, label=_("Parts"))
    rest_parts = forms.IntegerField(required=False, min_value=0, max_value=20, label=_("The rest equally by"))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("mode") == "equal" and not cleaned.get("parts") and not self.has_error("parts"):
            self.add_error("parts", forms.ValidationError(_("Split in how many parts? (2 to 20)"), code="required"))
        return cleaned


class BillDiscountForm(ApprovalMixin, BillForm):
    """A discount on the whole bill or one line (``line`` = ``<order_ref>:<line_id>``), a % or an amount, with a reason."""

    line = forms.CharField(required=False, max_length=80)
    percent = PercentField(required=False, label=_("Percent"))
    reason = TextField(limit=200, required=True, label=_("Reason"))

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = MoneyField(currency=currency, required=False, label=_("Amount"))

    def clean(self):
        cleaned = super().clean()
        percent, amount = cleaned.get("percent"), cleaned.get("amount")
        if not self.has_error("percent") and not self.has_error("amount"):
            if (percent is None) == (amount is None):
                self.add_error("percent", forms.ValidationError(_("Give a percent or an amount (one of them)."), code="invalid"))
            elif amount == 0:
                self.add_error("amount", forms.ValidationError(_("The amount must be above zero."), code="invalid"))
        order_ref, _sep, line_id = (cleaned.get("line") or "").partition(":")
        cleaned["order_ref"], cleaned["line_id"] = (order_ref, line_id) if line_id else ("", "")
        return cleaned


class VoidForm(ApprovalMixin, BillForm):
    """A manager voids a sent line (the kitchen board shows the void)."""

    order_ref = forms.CharField(max_length=64)
    line_id = forms.CharField(max_length=64)
    reason = TextField(limit=200, required=True, label=_("Reason"))


class WriteOffForm(BillForm):
    reason = TextField(limit=200, required=True, label=_("Reason"))


class RefundForm(forms.Form):
    """A manager gives back (part of) one payment of the bill: the amount, a reason, and the key that makes a
    double tap one refund. A refund does not depend on the bill's rev (a settled bill does not change)."""

    payment = forms.IntegerField(min_value=1)
    reason = TextField(limit=200, required=True, label=_("Reason"))
    idempotency_key = forms.CharField(
        max_length=64, error_messages={"required": _("This form has no idempotency key; reload the page.")}
    )

    refusal = SessionForm.refusal

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = MoneyField(currency=currency, label=_("Amount"))


class RemoveAdjustmentForm(ApprovalMixin, BillForm):
    pass


# -- shifts (issue #18) --------------------------------------------------------------------------

MAX_NOTES = 100_000


class DrawerCountForm(forms.Form):
    """A drawer amount: typed as a total (``total``), or counted note by note (``count-<cents>`` fields, one per
    denomination the register offers; their total wins). ``count_given`` says which."""

    def __init__(self, *args, currency: str = "", denominations: list[int] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.denominations = list(denominations)
        self.fields["total"] = MoneyField(currency=currency, required=False, label=_("Total"))
        for denomination in self.denominations:
            self.fields[f"count-{denomination}"] = forms.IntegerField(
                required=False, min_value=0, max_value=MAX_NOTES, label=str(denomination)
            )

    def count_fields(self):
        """(denomination, bound field) pairs, largest first (the template's count grid)."""
        return [(denomination, self[f"count-{denomination}"]) for denomination in self.denominations]

    def clean(self):
        cleaned = super().clean()
        count = {str(d): cleaned[f"count-{d}"] for d in self.denominations if cleaned.get(f"count-{d}")}
        typed = [d for d in self.denominations if cleaned.get(f"count-{d}") is not None]
        cleaned["count"] = count if typed else None
        cleaned["count_total"] = sum(int(d) * n for d, n in count.items())
        if cleaned["count"] is None and cleaned.get("total") is None and not self.errors:
            self.add_error("total", forms.ValidationError(_("Type the total or count the notes and coins."), code="required"))
        return cleaned


class ShiftOpenForm(DrawerCountForm):
    register = forms.SlugField(max_length=64, label=_("Register"))


class CashMoveForm(forms.Form):
    idempotency_key = forms.CharField(
        max_length=64, error_messages={"required": _("This form has no idempotency key; reload the page.")}
    )
    kind = forms.ChoiceField(choices=[("in", _("Cash in")), ("out", _("Cash out"))], label=_("Kind"))
    reason = TextField(limit=255, required=True, label=_("Reason"))

    def __init__(self, *args, currency: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["amount"] = MoneyField(currency=currency, label=_("Amount"))

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("amount") == 0:
            self.add_error("amount", forms.ValidationError(_("The amount must be above zero."), code="invalid"))
        return cleaned


class ShiftCloseForm(ApprovalMixin, DrawerCountForm):
    rev = RevField()
    reason = TextField(limit=255, label=_("Reason for the difference"))
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
