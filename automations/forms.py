"""Forms of the automations pages: one per kind, each a thin shell around the engine's typed config.

Field types catch what is not a value at all (text in a number, NaN, infinity, 10 kB strings, control characters,
an account that is not the user's); the LN Markets rules themselves (leverage 1–100, quantity 1–500 000 USD, prices
above 0 on the 0.5 tick, percentages in range, which fields go with which action) live once, in
``automations.specs``: ``clean()`` builds the config and shows each ``SpecError`` on the field it names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from decimal import Decimal
from typing import Any, ClassVar, cast, get_args

from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.forms.boundfield import BoundField
from django.utils.formats import number_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from accounts.models import ExchangeAccount, User
from automations.configs import config_from_json
from automations.kinds import KINDS, field_rule
from automations.kinds.auto_entry import AutoEntryConfig, EntryTrigger
from automations.kinds.margin_guard import AddMarginMode, MarginGuardAction, MarginGuardConfig, MarginGuardTrigger
from automations.kinds.tpsl import TpSlAction, TpSlConfig, TpSlDirection
from automations.models import AuditEntry, Automation
from automations.selectors import AuditFilters
from automations.specs import (
    PRICE_AGE_DEFAULT_SECONDS,
    PRICE_AGE_MAX_SECONDS,
    PRICE_AGE_MIN_SECONDS,
    AutomationConfig,
    AutomationKind,
    FieldRule,
    KindConfig,
    SpecError,
)
from lnmarkets.maths import Side

# Sanity bounds of the input itself (not LN Markets rules): they keep absurd numbers away from the engine and out
# of 64-bit database columns.
MAX_SATS = 2_100_000_000_000_000  # every bitcoin there will ever be, in sats
MAX_SECONDS = 30 * 24 * 3600
MAX_REPEATS = 10_000
MAX_TRADE_IDS = 100
_TRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_TRADE_ID_SPLIT = re.compile(r"[\s,;]+")


def choices(values: object, labels: Mapping[str, StrOrPromise]) -> list[tuple[str, StrOrPromise]]:
    """Form choices in the order of the ``Literal`` type ``values`` (where they are defined, once), each with its
    label; a value without a label is a programming error caught at import."""
    allowed = get_args(values)
    if set(labels) != set(allowed):
        raise ImproperlyConfigured(f"choice labels {sorted(labels)} do not match the values {sorted(allowed)}")
    return [(value, labels[value]) for value in allowed]


def _percent(label: StrOrPromise, help_text: StrOrPromise, *, required: bool = False) -> forms.DecimalField:
    return forms.DecimalField(
        label=label, help_text=help_text, required=required, max_digits=10, decimal_places=4, localize=False
    )


def _price(label: StrOrPromise, help_text: StrOrPromise, *, required: bool = False) -> forms.DecimalField:
    return forms.DecimalField(label=label, help_text=help_text, required=required, max_digits=14, decimal_places=4)


def _sats(label: StrOrPromise, help_text: StrOrPromise, *, required: bool = False) -> forms.IntegerField:
    return forms.IntegerField(label=label, help_text=help_text, required=required, max_value=MAX_SATS)


def _seconds(label: StrOrPromise, help_text: StrOrPromise, initial: int) -> forms.IntegerField:
    return forms.IntegerField(
        label=label, help_text=help_text, required=True, min_value=0, max_value=MAX_SECONDS, initial=initial
    )


def _optional_choice(
    label: StrOrPromise, choices: list[tuple[str, StrOrPromise]], help_text: StrOrPromise = ""
) -> forms.ChoiceField:
    return forms.ChoiceField(label=label, choices=[("", "—"), *choices], required=False, help_text=help_text)


def check_text(value: str) -> str:
    """Refuse control, format and unpaired-surrogate characters (they cannot be shown or stored safely)."""
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise forms.ValidationError(_("Use letters, digits, spaces and punctuation only (no control characters)."))
    return value


class AccountChoiceField(forms.ModelChoiceField[ExchangeAccount]):
    """The user's own exchange accounts; simulator accounts are marked PAPER."""

    def label_from_instance(self, obj: ExchangeAccount) -> str:
        return f"{obj.label} (PAPER)" if obj.is_paper else f"{obj.label} ({obj.get_network_display()})"


@dataclass(frozen=True, slots=True)
class FieldGroup:
    """A titled group of fields on the form, with an optional note shown above them."""

    title: StrOrPromise
    names: tuple[str, ...]
    note: StrOrPromise = ""


@dataclass(frozen=True, slots=True)
class FieldItem:
    """A bound field with whether the chosen trigger/action uses it and the rule's ``when`` for the live script."""

    field: BoundField
    used: bool
    when: str
    selector: bool


@dataclass(frozen=True, slots=True)
class BoundGroup:
    title: StrOrPromise
    note: StrOrPromise
    fields: list[FieldItem]

    @property
    def used(self) -> bool:
        return any(item.used for item in self.fields)

    @property
    def when(self) -> str:
        """The group shows when any of its fields does: ``|`` between the fields' conditions (empty = always)."""
        conditions = [item.when for item in self.fields]
        return "" if "" in conditions else "|".join(conditions)

    @property
    def has_selector(self) -> bool:
        return any(item.selector for item in self.fields)


def _number(value: Decimal | None) -> str:
    return "" if value is None else number_format(value.normalize(), force_grouping=True)


def _bounds(rule: FieldRule) -> str:
    low, high = _number(rule.minimum), _number(rule.maximum)
    if rule.minimum is not None and rule.maximum is not None:
        if rule.min_open and rule.max_open:
            return gettext("above %(min)s and below %(max)s") % {"min": low, "max": high}
        return gettext("from %(min)s to %(max)s") % {"min": low, "max": high}
    if rule.minimum is not None:
        return (gettext("above %(min)s") if rule.min_open else gettext("%(min)s or more")) % {"min": low}
    return ""


def rule_help(rule: FieldRule) -> str:
    """The rule of a setting in words, built from its kind's settings table (``KindDef.rules``) only."""
    units = {
        "percent": gettext("Percent"),
        "price": gettext("USD"),
        "usd": gettext("USD"),
        "sats": gettext("Whole sats"),
        "seconds": gettext("Seconds"),
        "count": gettext("A whole number"),
        "leverage": gettext("Leverage"),
    }
    unit = units.get(rule.unit)
    if unit is None:
        return ""
    bounds = _bounds(rule)
    text = f"{unit}, {bounds}" if bounds else unit
    if rule.tick is not None:
        text += gettext(", on the %(tick)s USD tick") % {"tick": _number(rule.tick)}
    return text + "."


def rule_error(rule: FieldRule, problem: str) -> str:
    """The error for a value that breaks ``rule`` (``problem`` from ``FieldRule.problem``), naming the whole rule."""
    if problem == "tick":
        return gettext("Must be a multiple of %(tick)s USD (LN Markets' price tick).") % {"tick": _number(rule.tick)}
    return gettext("Must be %(bounds)s.") % {"bounds": _bounds(rule)}


def _when_text(rule: FieldRule | None) -> str:
    if rule is None:
        return ""
    return ";".join(f"{selector}={','.join(values)}" for selector, values in rule.when)


# The engine's messages for rules that tie two settings together, marked for translation (automations.specs).
_SPEC_MESSAGES = {
    "A loss trigger must be less than 100 % (liquidation comes first).": _(
        "A loss trigger must be less than 100 % (liquidation comes first)."
    ),
    "Break-even needs the trade in profit: use it with the 'profit' direction.": _(
        "Break-even needs the trade in profit: use it with the “in profit” direction."
    ),
    "Give exactly one of quantity (USD) or margin (sats).": _("Give exactly one of quantity (USD) or margin (sats)."),
    "Give the stop-loss as a price or as a percentage, not both.": _(
        "Give the stop-loss as a price or as a percentage, not both."
    ),
    "Give the take-profit as a price or as a percentage, not both.": _(
        "Give the take-profit as a price or as a percentage, not both."
    ),
    "A long's stop-loss must be below its take-profit.": _("A long's stop-loss must be below its take-profit."),
    "A short's stop-loss must be above its take-profit.": _("A short's stop-loss must be above its take-profit."),
    "The stop-loss must be below the trigger price.": _("The stop-loss must be below the trigger price."),
    "The stop-loss must be above the trigger price.": _("The stop-loss must be above the trigger price."),
    "The take-profit must be above the trigger price.": _("The take-profit must be above the trigger price."),
    "The take-profit must be below the trigger price.": _("The take-profit must be below the trigger price."),
}


REDUCE_NOTE = _(
    "LN Markets has no partial close of an isolated trade. To reduce, Axisor closes the whole trade at market and "
    "reopens the remaining quantity at market with the same side, leverage, stop-loss and take-profit. You pay the "
    "closing and opening fees again, and the reopened trade has a new entry and liquidation price."
)


class AutomationForm(forms.Form):
    """Common part of the three kinds: name, account, price-age limit; ``clean()`` builds :attr:`config`."""

    kind: ClassVar[AutomationKind]
    config_class: ClassVar[type[KindConfig]]
    groups: ClassVar[tuple[FieldGroup, ...]]

    name = forms.CharField(label=_("Name"), max_length=100, strip=True)
    account = AccountChoiceField(label=_("Exchange account"), queryset=ExchangeAccount.objects.none(), empty_label=None)
    max_price_age_seconds = forms.IntegerField(
        label=_("Maximum price age (seconds)"),
        help_text=_("A price older than this is stale: no entry is made on it (protective actions still run)."),
        min_value=PRICE_AGE_MIN_SECONDS,
        max_value=PRICE_AGE_MAX_SECONDS,
        initial=PRICE_AGE_DEFAULT_SECONDS,
    )

    def __init__(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        user: User,
        automation: Automation | None = None,
        account: ExchangeAccount | None = None,
        refresh: Mapping[str, Any] | None = None,
    ) -> None:
        self.user = user
        self.automation = automation
        self.config: AutomationConfig | None = None
        initial: dict[str, Any] = {}
        if automation is not None:
            initial = self._initial_from(automation)
        elif account is not None:
            initial["account"] = account.pk
        if refresh is not None:
            # "Update the form" without JavaScript: the values typed so far, shown again with no error yet.
            initial.update({name: refresh.get(name) for name in self.base_fields if refresh.get(name) is not None})
        super().__init__(data, initial=initial)
        for rule_field in fields(self.config_class):
            rule = field_rule(self.kind, rule_field.name)
            form_field = self.fields.get(rule_field.name)
            if rule is None or form_field is None:
                continue
            # Required-ness follows the chosen trigger and action: checked in clean() from the rule.
            form_field.required = rule.required and not rule.when and rule.unit == "choice"
            extra = rule_help(rule)
            base = str(form_field.help_text or "")
            form_field.help_text = f"{base} {extra}".strip()
        account_field = cast(AccountChoiceField, self.fields["account"])
        account_field.queryset = ExchangeAccount.objects.filter(owner=user).order_by("-is_active", "label", "id")
        if automation is not None:
            # An automation's memory is about one account's trades: it never moves to another account.
            account_field.disabled = True
            account_field.help_text = _("An automation stays on its account; create a new one for another account.")

    @classmethod
    def config_field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls.config_class))

    def _initial_from(self, automation: Automation) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": automation.name,
            "account": automation.account_id,
            "max_price_age_seconds": automation.max_price_age_seconds,
        }
        try:
            config = config_from_json(automation.kind, automation.config)
        except SpecError:
            stored = automation.config if isinstance(automation.config, dict) else {}
            initial.update({k: v for k, v in stored.items() if k in self.config_field_names()})
        else:
            initial.update({name: getattr(config, name) for name in self.config_field_names()})
        trade_ids = initial.get("trade_ids")
        if isinstance(trade_ids, list | tuple):
            initial["trade_ids"] = ", ".join(str(t) for t in trade_ids)
        return initial

    def initial_values(self) -> dict[str, Any]:
        """The unbound form's values as form data (what a first render shows), for building its summary."""
        data: dict[str, Any] = {}
        for name in self.fields:
            value = self[name].value()
            if value is not None:
                data[name] = value
        return data

    def selector_values(self) -> dict[str, object]:
        """The current value of every field (the submitted one, else the initial one): what ``FieldRule.when``
        is read against."""
        return {name: self[name].value() for name in self.fields}

    def field_used(self, name: str, values: Mapping[str, object] | None = None) -> bool:
        rule = field_rule(self.kind, name)
        return rule is None or rule.used(self.selector_values() if values is None else values)

    def field_groups(self) -> list[BoundGroup]:
        """The bound fields of each group, each marked used or not for the chosen trigger and action."""
        values = self.selector_values()
        selectors = {s for r in _rules_of(self.kind) for s, _values in r.when}
        return [
            BoundGroup(
                g.title,
                g.note,
                [
                    FieldItem(
                        self[name],
                        self.field_used(name, values),
                        _when_text(field_rule(self.kind, name)),
                        name in selectors,
                    )
                    for name in g.names
                ],
            )
            for g in self.groups
        ]

    def clean_name(self) -> str:
        name = check_text(self.cleaned_data["name"])
        if not name:
            raise forms.ValidationError(_("Give the automation a name."))
        return name

    def clean_trade_ids(self) -> tuple[str, ...]:
        raw = check_text(self.cleaned_data.get("trade_ids") or "")
        ids = tuple(part for part in _TRADE_ID_SPLIT.split(raw) if part)
        if len(ids) > MAX_TRADE_IDS:
            raise forms.ValidationError(_("List at most %(n)d trade ids."), params={"n": MAX_TRADE_IDS})
        for trade_id in ids:
            if not _TRADE_ID_RE.match(trade_id):
                raise forms.ValidationError(
                    _("“%(id)s” is not a trade id: use the ids LN Markets shows (letters, digits and dashes)."),
                    params={"id": trade_id[:40]},
                )
        return ids

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if data is None:
            return data
        values = self.selector_values()
        # Every setting is checked on its own first, so all the errors of a submit show at once; an empty field is
        # "not set" (left out when the config has a default for it, None otherwise); a setting the chosen trigger
        # or action does not use is ignored, whatever was typed in it before the choice changed.
        kwargs: dict[str, Any] = {}
        for f in fields(self.config_class):
            rule = field_rule(self.kind, f.name)
            used = rule is None or rule.used(values)
            if not used:
                # Hidden on the page: whatever it holds (even garbage) is not the user's current choice.
                data[f.name] = None
                self.errors.pop(f.name, None)
            if f.name in self.errors or not self._rule_ok(f.name, rule, data.get(f.name) if used else None, used):
                continue
            value = data.get(f.name) if used else None
            if value not in (None, "", ()):
                kwargs[f.name] = value
            elif f.default is MISSING and f.default_factory is MISSING:
                kwargs[f.name] = None
        self._check_pairs(kwargs)
        if any(name in self.errors for name in self.config_field_names()):
            return data
        try:
            config = self.config_class(**kwargs)
        except SpecError as exc:
            message = _SPEC_MESSAGES.get(exc.message, exc.message)
            self.add_error(exc.field if exc.field in self.fields else None, message)
        except TypeError:
            # A required setting is missing: every required one is a required form field, so this is a safety net.
            self.add_error(None, _("Some settings are missing."))
        else:
            # Validate the settings even when another field is wrong (all errors at once), but only a fully valid
            # form exposes a config.
            self.config = None if self.errors else config
        return data

    def _rule_ok(self, name: str, rule: FieldRule | None, value: object, used: bool) -> bool:
        """Check one setting against its rule; add the error and return False when it breaks it."""
        if rule is None:
            return True
        if used and rule.required and value in (None, "", ()):
            self.add_error(name, gettext("Required with this choice."))
            return False
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            problem = rule.problem(value)
            if problem is not None:
                self.add_error(name, rule_error(rule, problem))
                return False
        return True

    def _check_pairs(self, kwargs: dict[str, Any]) -> None:
        """Rules between two settings that the kinds' forms can report together with the others."""


def _trade_ids_field() -> forms.CharField:
    return forms.CharField(
        label=_("Only these trades (optional)"),
        required=False,
        max_length=MAX_TRADE_IDS * 66,
        strip=True,
        help_text=_(
            "LN Markets trade ids, separated by commas or spaces. Empty = every running trade the automation may "
            "manage (trades opened outside Axisor only if the account allows it)."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class MarginGuardForm(AutomationForm):
    kind = "margin_guard"
    config_class = MarginGuardConfig
    groups = (
        FieldGroup(_("Automation"), ("name", "account", "trade_ids")),
        FieldGroup(_("Trigger"), ("trigger", "threshold")),
        FieldGroup(_("Action"), ("action", "cooldown_seconds")),
        FieldGroup(_("Reduce"), ("reduce_percent",), REDUCE_NOTE),
        FieldGroup(
            _("Add margin"),
            ("add_margin_mode", "add_margin_amount", "target_distance", "max_added_per_trade"),
            _("Margin is added within the per-trade cap and the free balance of the account."),
        ),
        FieldGroup(_("Prices"), ("max_price_age_seconds",)),
    )

    trigger = forms.ChoiceField(
        label=_("Trigger"),
        choices=choices(
            MarginGuardTrigger,
            {
                "liquidation_distance": _("Distance to liquidation falls to the threshold or below"),
                "margin_ratio": _("LN Markets' margin ratio reaches the threshold or above (liquidation at 100 %)"),
            },
        ),
        initial="liquidation_distance",
    )
    threshold = _percent(
        _("Threshold (%)"),
        _("Distance to liquidation = |mark − liquidation| / mark."),
        required=True,
    )
    action = forms.ChoiceField(
        label=_("Action"),
        choices=choices(
            MarginGuardAction,
            {
                "close": _("Close the trade at market"),
                "reduce": _("Reduce the trade by a percentage (close, then reopen the rest)"),
                "add_margin": _("Add margin"),
            },
        ),
    )
    cooldown_seconds = _seconds(
        _("Cooldown (seconds)"), _("After acting on a trade, wait at least this long before acting on it again."), 60
    )
    reduce_percent = _percent(_("Reduce by (%)"), _("The share of the quantity to take off."))
    add_margin_mode = _optional_choice(
        _("How much margin"),
        choices(
            AddMarginMode,
            {"fixed": _("A fixed amount of sats"), "restore_distance": _("Enough to restore a target distance")},
        ),
        "",
    )
    add_margin_amount = _sats(_("Amount (sats)"), _("Added each time the trigger is met."))
    target_distance = _percent(
        _("Target distance to liquidation (%)"),
        _("Must be greater than the trigger threshold."),
    )
    max_added_per_trade = _sats(
        _("Cap per trade (sats)"), _("Optional. Most margin Axisor may add to one trade in all. Empty = no cap.")
    )
    trade_ids = _trade_ids_field()

    def _check_pairs(self, kwargs: dict[str, Any]) -> None:
        if self.has_error("target_distance") or self.has_error("threshold"):
            return
        target, threshold = kwargs.get("target_distance"), kwargs.get("threshold")
        if target is None or threshold is None:
            return
        if kwargs.get("trigger") == "liquidation_distance" and target <= threshold:
            self.add_error(
                "target_distance",
                gettext("Must be greater than the trigger threshold (%(threshold)s %%).")
                % {"threshold": _number(threshold)},
            )


class TpSlForm(AutomationForm):
    kind = "tpsl"
    config_class = TpSlConfig
    groups = (
        FieldGroup(_("Automation"), ("name", "account", "trade_ids")),
        FieldGroup(
            _("Trigger"),
            ("direction", "trigger_percent"),
            _("PnL % = unrealised PnL (sats) / margin (sats) × 100, at the bid for longs and the ask for shorts."),
        ),
        FieldGroup(
            _("Action"),
            ("action", "price", "trailing_distance"),
            _("It fires once per trade. A new stop-loss or take-profit is checked against LN Markets' rules first."),
        ),
        FieldGroup(_("Prices"), ("max_price_age_seconds",)),
    )

    direction = forms.ChoiceField(
        label=_("When the trade is"),
        choices=choices(
            TpSlDirection,
            {"profit": _("In profit: PnL % at or above +X"), "loss": _("In loss: PnL % at or below −X")},
        ),
    )
    trigger_percent = _percent(
        _("X: PnL trigger (%)"), _("Percent of the trade's margin (below 100 for a loss)."), required=True
    )
    action = forms.ChoiceField(
        label=_("Action"),
        choices=choices(
            TpSlAction,
            {
                "set_takeprofit": _("Set the take-profit to a price"),
                "set_stoploss": _("Set the stop-loss to a price"),
                "breakeven": _("Move the stop-loss to break-even (entry plus fees)"),
                "trailing_stoploss": _("Trailing stop-loss that follows the best price"),
                "close": _("Close the trade at market"),
            },
        ),
    )
    price = _price(_("Price (USD)"), "")
    trailing_distance = _price(_("Trailing distance (USD)"), _("Distance from the best price."))
    trade_ids = _trade_ids_field()


class AutoEntryForm(AutomationForm):
    kind = "auto_entry"
    config_class = AutoEntryConfig
    groups = (
        FieldGroup(_("Automation"), ("name", "account")),
        FieldGroup(
            _("Trade"),
            ("side", "leverage", "quantity", "margin"),
            _("Give the size as a quantity in USD or as a margin in sats, not both."),
        ),
        FieldGroup(_("Trigger"), ("trigger", "trigger_price")),
        FieldGroup(
            _("Exits (optional)"),
            ("stoploss", "stoploss_percent", "takeprofit", "takeprofit_percent"),
            _("Each as a price or as a percentage from the fill, not both."),
        ),
        FieldGroup(
            _("Repeats"),
            ("repeat_count", "repeat_cooldown_seconds"),
            _("After its entries are used up the automation is completed. It never enters on a stale price."),
        ),
        FieldGroup(_("Prices"), ("max_price_age_seconds",)),
    )

    side = forms.ChoiceField(
        label=_("Side"), choices=choices(Side, {"buy": _("Buy (long)"), "sell": _("Sell (short)")})
    )
    leverage = forms.DecimalField(label=_("Leverage"), max_digits=8, decimal_places=2, initial=Decimal(10))
    quantity = forms.IntegerField(
        label=_("Quantity (USD)"), required=False, max_value=MAX_SATS, help_text=_("Whole USD.")
    )
    margin = _sats(_("Margin (sats)"), "")
    trigger = forms.ChoiceField(
        label=_("Enter"),
        choices=choices(
            EntryTrigger,
            {
                "immediate": _("At once"),
                "price_below": _("When the last price is at or below the trigger price"),
                "price_above": _("When the last price is at or above the trigger price"),
            },
        ),
    )
    trigger_price = _price(_("Trigger price (USD)"), "")
    stoploss = _price(_("Stop-loss (USD)"), _("Below the entry for a long, above it for a short."))
    stoploss_percent = _percent(_("Stop-loss (% from the fill)"), "")
    takeprofit = _price(_("Take-profit (USD)"), _("Above the entry for a long, below it for a short."))
    takeprofit_percent = _percent(_("Take-profit (% from the fill)"), "")
    repeat_count = forms.IntegerField(
        label=_("Repeats"),
        min_value=0,
        max_value=MAX_REPEATS,
        initial=0,
        help_text=_("Extra entries after the first one (0 = enter once)."),
    )
    repeat_cooldown_seconds = _seconds(
        _("Wait between entries (seconds)"),
        _("A repeat needs this long since the last entry, and the price must have left the trigger zone."),
        0,
    )

    def _check_pairs(self, kwargs: dict[str, Any]) -> None:
        sized = not self.has_error("quantity") and not self.has_error("margin")
        if sized and (kwargs.get("quantity") is None) == (kwargs.get("margin") is None):
            message = gettext("Give exactly one of quantity (USD) or margin (sats).")
            self.add_error("quantity", message)
            self.add_error("margin", message)
        for price, percent, label in (
            ("stoploss", "stoploss_percent", gettext("Give the stop-loss as a price or as a percentage, not both.")),
            (
                "takeprofit",
                "takeprofit_percent",
                gettext("Give the take-profit as a price or as a percentage, not both."),
            ),
        ):
            if kwargs.get(price) is not None and kwargs.get(percent) is not None and not self.has_error(price):
                self.add_error(price, label)


def _rules_of(kind: str) -> tuple[FieldRule, ...]:
    definition = KINDS.get(kind)
    return definition.rules if definition is not None else ()


def form_class_for(kind: str) -> type[AutomationForm] | None:
    """The form of an automation kind (its ``KindDef.form``), or ``None`` for an unknown kind."""
    definition = KINDS.get(kind)
    return definition.form if definition is not None else None


# --- audit log filters and switches -----------------------------------------------------------------------------------


class AutomationChoiceField(forms.ModelChoiceField[Automation]):
    """An automation by name and translated kind."""

    def label_from_instance(self, obj: Automation) -> str:
        return f"{obj.name} ({gettext(obj.get_kind_display())})"  # noqa: INT001


class AuditFilterForm(forms.Form):
    """The audit log's GET filters; choices are limited to the user's own accounts and automations."""

    account = AccountChoiceField(
        label=_("Account"), queryset=ExchangeAccount.objects.none(), required=False, empty_label=_("Any account")
    )
    automation = AutomationChoiceField(
        label=_("Automation"), queryset=Automation.objects.none(), required=False, empty_label=_("Any automation")
    )
    kind = forms.ChoiceField(
        label=_("Kind"),
        choices=[("", _("Any kind")), *((v, _(label)) for v, label in Automation.Kind.choices)],  # noqa: INT001
        required=False,
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        choices=[("", _("Any outcome")), *((v, _(label)) for v, label in AuditEntry.Outcome.choices)],  # noqa: INT001
        required=False,
    )

    def __init__(self, data: Mapping[str, Any] | None, *, user: User) -> None:
        super().__init__(data)
        cast(AccountChoiceField, self.fields["account"]).queryset = ExchangeAccount.objects.filter(owner=user)
        automation_field = cast("forms.ModelChoiceField[Automation]", self.fields["automation"])
        automation_field.queryset = Automation.objects.filter(account__owner=user).order_by("name", "id")

    def filters(self) -> AuditFilters:
        """The filters that are valid (an invalid one is shown as an error and ignored)."""
        if not self.is_bound:
            return AuditFilters()
        self.is_valid()
        data = self.cleaned_data
        account = data.get("account")
        automation = data.get("automation")
        return AuditFilters(
            account_id=account.pk if account is not None else None,
            automation_id=automation.pk if automation is not None else None,
            kind=data.get("kind") or None,
            outcome=data.get("outcome") or None,
        )


class SwitchForm(forms.Form):
    """Turn a switch on or off (kill switches, managing external trades), with an optional reason."""

    state = forms.ChoiceField(choices=[("on", "on"), ("off", "off")])
    reason = forms.CharField(max_length=300, required=False, strip=True)

    def clean_reason(self) -> str:
        return check_text(self.cleaned_data.get("reason") or "")

    @property
    def on(self) -> bool:
        return bool(self.cleaned_data.get("state") == "on")
