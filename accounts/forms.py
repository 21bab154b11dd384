"""Forms of the accounts app: validate every field with a plain-English error; never echo a secret back."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from accounts import paper, two_factor
from accounts.models import ExchangeAccount, Network, User

_OTP_RE = re.compile(r"^[0-9]{6}$")

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


def otp_code_field() -> forms.CharField:
    return forms.CharField(
        label=_("Authenticator code"),
        max_length=6,
        min_length=6,
        strip=True,
        help_text=_("The 6-digit code your authenticator app shows now."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9]{6}", "size": "8"}
        ),
    )


def _check_otp_format(value: str) -> str:
    if not _OTP_RE.match(value):
        raise forms.ValidationError(_("Enter the 6 digits your authenticator app shows."))
    return value


class OtpCodeForm(forms.Form):
    """One authenticator code: the second step of the login, and the confirmation of a new 2FA device."""

    otp_token = otp_code_field()

    def clean_otp_token(self) -> str:
        return _check_otp_format(self.cleaned_data["otp_token"])


class TwoFactorDisableForm(forms.Form):
    """Turning 2FA off needs the password and a current code."""

    password = forms.CharField(
        label=_("Password"),
        max_length=4096,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    otp_token = otp_code_field()

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:  # noqa: ANN401
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_otp_token(self) -> str:
        return _check_otp_format(self.cleaned_data["otp_token"])

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if self.errors or data is None:
            return data
        if not self.user.check_password(data["password"]):
            raise forms.ValidationError(_("The password is not right."))
        if two_factor.verify_code(self.user, data["otp_token"], purpose="turning 2FA off") is None:
            self.add_error("otp_token", _("This code is not valid now. Wait for the next one and try again."))
        return data


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
        # 2FA on: adding or changing keys asks for a fresh code (docs/reliability.md T25a). Blank when keys stay.
        self.needs_otp = isinstance(owner, User) and two_factor.is_enabled(owner)
        if self.needs_otp:
            self.fields["otp_token"] = otp_code_field()
            self.fields["otp_token"].required = instance is None
            if instance is not None:
                self.fields["otp_token"].help_text = _("Needed when you enter new keys.")
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
            network = data.get("network")
            if network and network != self.instance.network and not all(given):
                # Keys are issued per network: the stored ones must be entered again and verified on the new one.
                raise forms.ValidationError(
                    _(
                        "To move this account to another network, enter its API key, secret and passphrase for "
                        "that network: they are checked with it before saving."
                    )
                )
        if data is not None and not self.errors:
            self._check_otp(data)
        return data

    def _check_otp(self, data: dict[str, Any]) -> None:
        """A fresh authenticator code when keys are added or replaced and 2FA is on; checked last, so a code is
        not used up by a form that fails for another reason."""
        if not self.needs_otp or not self.credentials_changed:
            return
        code = str(data.get("otp_token") or "")
        if not _OTP_RE.match(code):
            self.add_error("otp_token", _("Enter the 6 digits your authenticator app shows."))
            return
        assert isinstance(self.owner, User)
        if two_factor.verify_code(self.owner, code, purpose="exchange keys") is None:
            self.add_error("otp_token", _("This code is not valid now. Wait for the next one and try again."))

    @property
    def credentials_changed(self) -> bool:
        return self.instance is None or bool(self.cleaned_data.get("api_key"))


class PaperAccountForm(forms.Form):
    """One click for a paper account: a label (pre-filled) and the starting balance in sats."""

    label = forms.CharField(label=_("Label"), max_length=100, strip=True, initial=_("Paper"))
    balance = forms.IntegerField(
        label=_("Starting balance (sats)"),
        min_value=paper.MIN_BALANCE,
        max_value=paper.MAX_BALANCE,
        initial=paper.DEFAULT_BALANCE,
        help_text=_("Simulated sats: 1,000,000 sats = 0.01 BTC. You can reset the account to a new balance later."),
        widget=forms.NumberInput(attrs={"step": "1", "inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, owner: User, **kwargs: Any) -> None:  # noqa: ANN401
        self.owner = owner
        super().__init__(*args, **kwargs)

    def clean_label(self) -> str:
        label: str = self.cleaned_data["label"]
        if not label:
            raise forms.ValidationError(_("Give the account a name."))
        if any(ord(c) < 32 for c in label):
            raise forms.ValidationError(_("The label may not contain control characters."))
        if ExchangeAccount.objects.filter(owner=self.owner, label=label).exists():
            raise forms.ValidationError(_("You already have an account with this label."))
        return label


class PaperResetForm(forms.Form):
    """Reset a paper account: every trade closed, a new balance."""

    balance = forms.IntegerField(
        label=_("New balance (sats)"),
        min_value=paper.MIN_BALANCE,
        max_value=paper.MAX_BALANCE,
        initial=paper.DEFAULT_BALANCE,
        widget=forms.NumberInput(attrs={"step": "1", "inputmode": "numeric"}),
    )


def paper_label_suggestion(owner: User) -> str:
    """“Paper”, or “Paper 2”, “Paper 3”… when the user already has one."""
    base = str(_("Paper"))
    taken = set(ExchangeAccount.objects.filter(owner=owner).values_list("label", flat=True))
    n = 1
    label = base
    while label in taken:
        n += 1
        label = f"{base} {n}"
    return label


class PreferencesForm(forms.Form):
    """Language, time zone and display currency (the settings page)."""

    language = forms.ChoiceField(label=_("Language"), required=False)
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)
    display_currency = forms.ChoiceField(
        label=_("Show amounts in"),
        choices=[("sats", _("sats")), ("btc", _("BTC")), ("usd", _("USD (at the last price)"))],
        help_text=_("Orders are always sized as LN Markets asks: quantities in USD, margins in sats."),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        from django.conf import settings

        from accounts.preferences import time_zone_names

        super().__init__(*args, **kwargs)
        languages = cast(forms.ChoiceField, self.fields["language"])
        languages.choices = [("", _("As my browser asks")), *settings.LANGUAGES]
        zones = cast(forms.ChoiceField, self.fields["time_zone"])
        zones.choices = [("", _("UTC")), *((name, name) for name in time_zone_names())]
