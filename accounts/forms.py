"""Forms of the accounts app: validate every field with a plain-English error; never echo a secret back."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from accounts.models import ExchangeAccount, Network

# LN Markets keys, secrets and passphrases travel in HTTP headers and signatures: printable ASCII, no spaces.
_CREDENTIAL_RE = re.compile(r"^[\x21-\x7e]+$")
CREDENTIAL_MAX_LENGTH = 256


def _credential_field(label: StrOrPromise, *, required: bool) -> forms.CharField:
    # Every credential field is a password input that is never rendered back, the key included.
    widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"})
    return forms.CharField(label=label, required=required, max_length=CREDENTIAL_MAX_LENGTH, strip=True, widget=widget)


def _check_credential(value: str, label: str) -> str:
    if value and not _CREDENTIAL_RE.match(value):
        raise forms.ValidationError(
            _("%(field)s may only contain printable ASCII characters without spaces, as LN Markets issues them."),
            params={"field": label},
        )
    return value


class ExchangeAccountForm(forms.Form):
    """Add an exchange account (``instance=None``) or edit one (credentials optional: blank keeps them)."""

    label = forms.CharField(label=_("Label"), max_length=100, strip=True)
    network = forms.ChoiceField(label=_("Network"), choices=Network.choices)
    api_key = _credential_field(_("API key"), required=True)
    api_secret = _credential_field(_("API secret"), required=True)
    passphrase = _credential_field(_("Passphrase"), required=True)

    def __init__(self, *args: Any, owner: Any, instance: ExchangeAccount | None = None, **kwargs: Any) -> None:  # noqa: ANN401
        self.owner = owner
        self.instance = instance
        if instance is not None:
            kwargs.setdefault("initial", {"label": instance.label, "network": instance.network})
        super().__init__(*args, **kwargs)
        if instance is not None:
            for name in ("api_key", "api_secret", "passphrase"):
                self.fields[name].required = False
                self.fields[name].help_text = _("Leave blank to keep the stored value (key ••••%(hint)s).") % {
                    "hint": instance.key_hint
                }

    def clean_label(self) -> str:
        label: str = self.cleaned_data["label"]
        if not label:
            raise forms.ValidationError(_("Give the account a name."))
        if any(ord(c) < 32 for c in label):
            raise forms.ValidationError(_("The label may not contain control characters."))
        clash = ExchangeAccount.objects.filter(owner=self.owner, label=label)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("You already have an account with this label."))
        return label

    def clean_api_key(self) -> str:
        return _check_credential(self.cleaned_data["api_key"], str(_("API key")))

    def clean_api_secret(self) -> str:
        return _check_credential(self.cleaned_data["api_secret"], str(_("API secret")))

    def clean_passphrase(self) -> str:
        return _check_credential(self.cleaned_data["passphrase"], str(_("Passphrase")))

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if self.instance is not None and data is not None:
            given = [bool(data.get(n)) for n in ("api_key", "api_secret", "passphrase")]
            if any(given) and not all(given):
                raise forms.ValidationError(
                    _("To replace the credentials, enter the API key, the secret and the passphrase together.")
                )
        return data

    @property
    def credentials_changed(self) -> bool:
        return self.instance is None or bool(self.cleaned_data.get("api_key"))
