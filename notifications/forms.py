"""Forms of the notifications pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django import forms
from django.utils.translation import gettext_lazy as _

from notifications.models import DEFAULT_EVENTS, Channel, Event

EVENT_CHOICES = [(e.value, e.label) for e in Event if e.value in DEFAULT_EVENTS]


class ChannelForm(forms.ModelForm[Channel]):
    """A new channel. Telegram needs no address (the chat is linked with a one-time code); a webhook's signing
    secret is generated when left empty and shown once."""

    secret = forms.CharField(
        label=_("Signing secret (webhook)"),
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to have one generated and shown once."),
    )

    class Meta:
        model = Channel
        fields: ClassVar[list[str]] = ["kind", "name", "address"]
        labels: ClassVar[dict[str, Any]] = {
            "kind": _("Channel"),
            "name": _("Name"),
            "address": _("E-mail address or webhook URL"),
        }

    def __init__(self, *args: Any, owner: Any, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["address"].required = False

    def clean_name(self) -> str:
        name = str(self.cleaned_data.get("name") or "").strip()
        if Channel.objects.filter(owner=self.owner, name=name).exists():
            raise forms.ValidationError(_("You already have a channel with this name."))
        return name

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, address = data.get("kind"), str(data.get("address") or "").strip()
        if kind == Channel.Kind.EMAIL:
            try:
                data["address"] = forms.EmailField().clean(address)
            except forms.ValidationError:
                self.add_error("address", _("Enter a valid e-mail address."))
        elif kind == Channel.Kind.WEBHOOK:
            try:
                parts = urlsplit(address)
                valid = parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.username
            except ValueError:
                valid = False
            if not valid or len(address) > 500:
                self.add_error("address", _("Enter an http(s) URL without credentials."))
            data["address"] = address
        elif kind == Channel.Kind.TELEGRAM:
            data["address"] = ""  # never typed: set by the bot from /start CODE
        return data


class ChannelEventsForm(forms.Form):
    events = forms.MultipleChoiceField(
        label=_("Events"), choices=EVENT_CHOICES, required=False, widget=forms.CheckboxSelectMultiple
    )
    is_enabled = forms.BooleanField(label=_("Enabled"), required=False)


class PreferenceForm(forms.Form):
    margin_warning_percent = forms.DecimalField(
        label=_("Margin warning level (percent from liquidation)"),
        min_value=Decimal("0.5"),
        max_value=Decimal(50),
        decimal_places=2,
        max_digits=5,
        help_text=_("Set it above your Margin Guard's threshold to hear before the guard acts."),
    )
