"""The history filters: every field optional, bad values reported on the form (never a 500)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import ExchangeAccount, User
from automations.models import Automation

OUTCOMES = (
    ("", _("Any outcome")),
    ("win", _("Profit")),
    ("loss", _("Loss")),
    ("automation", _("Closed by an automation")),
    ("takeprofit", _("Take-profit hit")),
    ("stoploss", _("Stop-loss hit")),
    ("liquidation", _("Liquidated")),
    ("manual", _("Closed by hand in Axisor")),
    ("outside", _("Closed outside Axisor")),
    ("canceled", _("Canceled")),
)


class AutomationChoiceField(forms.ModelChoiceField):  # type: ignore[type-arg]
    def label_from_instance(self, obj: Automation) -> str:
        return f"{obj.name} · {obj.account.label}"


class HistoryFilterForm(forms.Form):
    account = forms.ModelChoiceField(
        queryset=ExchangeAccount.objects.none(), required=False, empty_label=_("All accounts"), label=_("Account")
    )
    start = forms.DateField(required=False, label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))
    automation = AutomationChoiceField(
        queryset=Automation.objects.none(), required=False, empty_label=_("Any automation"), label=_("Automation")
    )
    outcome = forms.ChoiceField(choices=OUTCOMES, required=False, label=_("Outcome"))

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        accounts = ExchangeAccount.objects.filter(owner=user).order_by("label", "id")
        self.fields["account"].queryset = accounts  # type: ignore[attr-defined]
        automations = Automation.objects.filter(account__owner=user).select_related("account")
        self.fields["automation"].queryset = automations  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", _("The end date is before the start date."))
        return data
