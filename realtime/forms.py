"""Confirmation forms of the cockpit's trade actions: each carries its ``clientId`` and checks the exchange's rules
(``realtime.trade_actions``) against the trade and the current price before anything is asked."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from automations.models import TrackedTrade
from realtime import trade_actions


class ConfirmForm(forms.Form):
    client_id = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, trade: TrackedTrade, last: Decimal | None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.trade = trade
        self.last = last

    def clean_client_id(self) -> str:
        value = str(self.cleaned_data["client_id"])
        if not trade_actions.CLIENT_ID.fullmatch(value):
            raise forms.ValidationError(_("This form is out of date: open it again."))
        return value

    def params(self) -> dict[str, object]:
        return {}


class PriceForm(ConfirmForm):
    """A new level, checked against the exchange's rules; or, with ``remove``, none (the exchange's DELETE)."""

    price = forms.DecimalField(
        label=_("Price (USD)"), max_digits=14, decimal_places=1, min_value=Decimal("0.5"), required=False
    )
    remove = forms.BooleanField(required=False, widget=forms.HiddenInput)
    field_name = "stoploss"

    def check(self, price: Decimal) -> str | None:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("remove"):
            if not getattr(self.trade, self.field_name):
                raise forms.ValidationError(_("There is nothing to remove."))
            return data
        price = data.get("price")
        if price is None:
            if "price" not in self.errors:
                self.add_error("price", _("Enter a price."))
            return data
        error = self.check(price)
        if error:
            self.add_error("price", error)
        return data

    def params(self) -> dict[str, object]:
        return {"price": "0" if self.cleaned_data.get("remove") else str(self.cleaned_data["price"])}


class StopLossForm(PriceForm):
    field_name = "stoploss"

    def check(self, price: Decimal) -> str | None:
        return trade_actions.stoploss_error(self.trade, price, self.last)


class TakeProfitForm(PriceForm):
    field_name = "takeprofit"

    def check(self, price: Decimal) -> str | None:
        return trade_actions.takeprofit_error(self.trade, price, self.last)


class AddMarginForm(ConfirmForm):
    amount = forms.IntegerField(label=_("Margin to add (sats)"), min_value=1, max_value=10**12)

    def clean_amount(self) -> int:
        amount = int(self.cleaned_data["amount"])
        error = trade_actions.add_margin_error(self.trade, amount)
        if error:
            raise forms.ValidationError(error)
        return amount

    def params(self) -> dict[str, object]:
        return {"amount": self.cleaned_data["amount"], "margin_before": self.trade.margin}


FORMS: dict[str, type[ConfirmForm]] = {
    "close": ConfirmForm,
    "stoploss": StopLossForm,
    "takeprofit": TakeProfitForm,
    "add-margin": AddMarginForm,
}
INTENT_ACTION = {
    "close": "close",
    "stoploss": "set_stoploss",
    "takeprofit": "set_takeprofit",
    "add-margin": "add_margin",
}
