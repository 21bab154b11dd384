"""The "new backtest" form: configurations to compare, the price history, the portfolio and the exchange rules.

Every problem is a form error on the field it concerns (never a 500): configurations are validated by the engine's
own typed configs (``automations.specs``), CSV files by ``backtest.history.parse_csv`` with the line number.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ExchangeAccount, User
from automations.forms import MAX_SATS, check_text
from automations.kinds import KINDS as KIND_REGISTRY
from automations.models import Automation
from automations.specs import SpecError
from backtest.history import History, HistoryError, parse_csv
from backtest.models import BacktestRun
from backtest.replay import TradeSpec
from backtest.scenarios import SCENARIOS
from backtest.services import (
    MAX_CONFIGS,
    MAX_EXCHANGE_CANDLES,
    RESOLUTION_SECONDS,
    RunSettings,
    account_trades,
    candidate_json,
    expected_candles,
)
from config.params import parse_id
from lnmarkets.maths import Side

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
MAX_TRADES = 20
MAX_VARIANTS_CHARS = 20_000
_TRADE_LINE = re.compile(
    r"^(?P<side>buy|sell|long|short)\s+(?P<quantity>\d+)(?:\s*usd)?\s+(?P<leverage>\d+(?:\.\d+)?)x?(?P<rest>(?:\s+\w+=\S+)*)$",
    re.IGNORECASE,
)
_OPTION = re.compile(r"(\w+)=(\S+)")
# Each registered automation kind (automations.kinds) with its translated label.
KINDS = {key: _(kind.label) for key, kind in KIND_REGISTRY.items()}


class AutomationsField(forms.ModelMultipleChoiceField[Automation]):
    def label_from_instance(self, obj: Automation) -> str:
        return f"{obj.name} · {_(obj.get_kind_display())} · {obj.account.label}"

    def clean(self, value: Any) -> Any:  # noqa: ANN401 - Django's signature
        # an id beyond 64 bits would overflow the database driver: refuse it before any query
        for item in value if isinstance(value, list | tuple) else []:
            if parse_id(str(item)) is None:
                raise forms.ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": str(item)[:20]}
                )
        return super().clean(value)


class AccountField(forms.ModelChoiceField[ExchangeAccount]):
    def to_python(self, value: Any) -> ExchangeAccount | None:  # noqa: ANN401 - Django's signature
        if value not in self.empty_values and parse_id(str(value)) is None:
            raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice")
        return super().to_python(value)


class BacktestForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120, strip=True)
    automations = AutomationsField(
        label=_("Automations to replay"),
        queryset=Automation.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Each one is replayed with its saved settings."),
    )
    variants = forms.CharField(
        label=_("Other configurations (JSON)"),
        required=False,
        max_length=MAX_VARIANTS_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false", "class": "mono"}),
        help_text=_(
            'A list of {"label": …, "kind": "margin_guard" | "tpsl" | "auto_entry", "config": {…}}, with the same '
            "settings as the automation forms. Edit the copy below to compare another threshold or action."
        ),
    )
    source = forms.ChoiceField(
        label=_("Price history"),
        choices=[
            (BacktestRun.Source.SCENARIO, _("Stress scenario")),
            (BacktestRun.Source.EXCHANGE, _("The exchange's candles")),
            (BacktestRun.Source.CSV, _("CSV file")),
        ],
        initial=BacktestRun.Source.SCENARIO,
        widget=forms.RadioSelect,
    )
    scenario = forms.ChoiceField(
        label=_("Scenario"),
        choices=[(s.name, f"{s.label}: {s.description}") for s in SCENARIOS.values()],
        required=False,
        initial="flash_crash",
    )
    seed = forms.IntegerField(label=_("Seed"), min_value=0, max_value=2**31 - 1, initial=1, required=False)
    start_price = forms.DecimalField(
        label=_("Start price (USD)"),
        min_value=Decimal(1000),
        max_value=Decimal(5_000_000),
        max_digits=12,
        decimal_places=1,
        initial=Decimal(100000),
        required=False,
    )
    account = AccountField(
        label=_("Exchange account"),
        queryset=ExchangeAccount.objects.none(),
        required=False,
        help_text=_("Whose candles (public) and, if chosen below, whose running trades to replay."),
    )
    date_from = forms.DateTimeField(label=_("From (UTC)"), required=False)
    date_to = forms.DateTimeField(label=_("To (UTC)"), required=False)
    resolution = forms.ChoiceField(
        label=_("Candle length"), choices=[(r, r) for r in RESOLUTION_SECONDS], initial="1m", required=False
    )
    csv_file = forms.FileField(label=_("CSV file"), required=False)
    csv_kind = forms.ChoiceField(
        label=_("The file holds"),
        choices=[("candles", _("candles: time,open,high,low,close")), ("ticks", _("ticks: time,price"))],
        initial="candles",
        required=False,
    )
    trades_source = forms.ChoiceField(
        label=_("Trades to guard"),
        choices=[("described", _("Trades I describe")), ("account", _("The account's running trades"))],
        initial="described",
        widget=forms.RadioSelect,
    )
    trades = forms.CharField(
        label=_("Trades (one a line)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "class": "mono"}),
        initial="buy 500 10x\nsell 300 5x\nbuy 200 25x",
        help_text=_(
            "side quantity-in-USD leverage, then optionally sl=PRICE tp=PRICE entry=PRICE. Opened at the first "
            "price of the history unless an entry is given. Example: buy 500 10x sl=92000"
        ),
    )
    rebase = forms.BooleanField(
        label=_("Open the account's trades at the start of the history (same side, size and leverage)"),
        required=False,
        initial=True,
        help_text=_("Untick to take them as they are (entry, margin, liquidation): for a history near today's price."),
    )
    balance = forms.IntegerField(
        label=_("Free balance (sats)"), min_value=0, max_value=MAX_SATS, initial=1_000_000,
        help_text=_("Besides the trades' margins: what margin additions and new entries can use."),
    )  # fmt: skip
    funding_rate = forms.DecimalField(
        label=_("Funding rate per 8 h (%)"),
        min_value=Decimal(-1),
        max_value=Decimal(1),
        max_digits=8,
        decimal_places=5,
        initial=Decimal("0.01"),
        help_text=_("Positive: longs pay shorts, at 00:00, 08:00 and 16:00 UTC."),
    )
    fee_tier = forms.TypedChoiceField(
        label=_("Fee tier"),
        coerce=int,
        choices=[(1, "Tier 1 · 0.10 %"), (2, "Tier 2 · 0.08 %"), (3, "Tier 3 · 0.07 %"), (4, "Tier 4 · 0.06 %")],
        initial=1,
    )
    latency_ms = forms.IntegerField(
        label=_("Order latency (ms)"), min_value=0, max_value=60_000, initial=1000,
        help_text=_("Time from a decision to the order reaching the exchange; the price may move meanwhile."),
    )  # fmt: skip

    def __init__(self, data: Any = None, files: Any = None, *, user: User, initial: dict[str, Any] | None = None):
        super().__init__(data, files, initial=initial)
        self.user = user
        self.history: History | None = None
        self.configs: list[dict[str, Any]] = []
        self.run_settings: RunSettings | None = None
        automations = cast(AutomationsField, self.fields["automations"])
        automations.queryset = Automation.objects.filter(account__owner=user).select_related("account")
        account = cast(AccountField, self.fields["account"])
        account.queryset = ExchangeAccount.objects.filter(owner=user).order_by("-is_active", "label", "id")

    # -- fields ----------------------------------------------------------------------------------------------------

    def clean_name(self) -> str:
        name = check_text(self.cleaned_data["name"])
        if not name:
            raise forms.ValidationError(_("Give the backtest a name."))
        return name

    def clean_variants(self) -> list[dict[str, Any]]:
        return parse_variants(self.cleaned_data.get("variants") or "")

    def clean_trades(self) -> list[TradeSpec]:
        text = self.cleaned_data.get("trades") or ""
        trades: list[TradeSpec] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = check_text(raw.strip().replace("\t", " "))
            if not line or line.startswith("#"):
                continue
            if len(trades) >= MAX_TRADES:
                raise forms.ValidationError(_("At most %(n)d trades."), params={"n": MAX_TRADES})
            trades.append(parse_trade_line(number, line, f"t{len(trades) + 1}"))
        return trades

    # -- the whole form --------------------------------------------------------------------------------------------

    def clean(self) -> dict[str, Any] | None:
        data = super().clean()
        if data is None:
            return data
        self._clean_configs(data)
        self._clean_source(data)
        self._clean_portfolio(data)
        return data

    def _clean_configs(self, data: dict[str, Any]) -> None:
        configs: list[dict[str, Any]] = []
        for automation in data.get("automations") or []:
            try:
                configs.append(candidate_json(automation.name, automation.kind, automation.config))
            except SpecError as exc:
                self.add_error("automations", _("“%(name)s” has invalid settings: %(error)s") % {
                    "name": automation.name, "error": exc.message})  # fmt: skip
        configs += data.get("variants") or []
        if "variants" in self.errors or "automations" in self.errors:
            return
        if not configs:
            self.add_error("automations", _("Choose an automation or give a configuration to replay."))
        elif len(configs) > MAX_CONFIGS:
            self.add_error("variants", _("Compare at most %(n)d configurations.") % {"n": MAX_CONFIGS})
        labels = [c["label"] for c in configs]
        for index, label in enumerate(labels):
            if label in labels[:index]:
                configs[index]["label"] = f"{label} ({index + 1})"
        self.configs = configs

    def _clean_source(self, data: dict[str, Any]) -> None:
        source = data.get("source")
        if source == BacktestRun.Source.SCENARIO:
            if not data.get("scenario"):
                self.add_error("scenario", _("Choose a scenario."))
            if data.get("seed") is None:
                data["seed"] = 1
            if data.get("start_price") is None:
                data["start_price"] = Decimal(100000)
        elif source == BacktestRun.Source.EXCHANGE:
            self._clean_exchange(data)
        elif source == BacktestRun.Source.CSV:
            upload = data.get("csv_file")
            if upload is None:
                self.add_error("csv_file", _("Choose a CSV file."))
                return
            if upload.size > MAX_UPLOAD_BYTES:
                self.add_error("csv_file", _("The file is larger than 64 MB."))
                return
            try:
                self.history = parse_csv(upload.read(), "ticks" if data.get("csv_kind") == "ticks" else "candles")
            except HistoryError as exc:
                self.add_error("csv_file", str(exc))

    def _clean_exchange(self, data: dict[str, Any]) -> None:
        if data.get("account") is None:
            self.add_error("account", _("Choose the exchange account whose network gives the candles."))
        start, end = data.get("date_from"), data.get("date_to")
        if start is None:
            self.add_error("date_from", _("Give the start of the range."))
        if end is None:
            self.add_error("date_to", _("Give the end of the range."))
        if start is None or end is None:
            return
        resolution = data.get("resolution") or "1m"
        if end <= start:
            self.add_error("date_to", _("The end must be after the start."))
        elif end > timezone.now() + timedelta(minutes=1):
            self.add_error("date_to", _("The end cannot be in the future."))
        elif expected_candles(start, end, resolution) > MAX_EXCHANGE_CANDLES:
            self.add_error(
                "date_to",
                _("That range holds more than %(n)s candles: choose longer candles or a shorter range.")
                % {"n": f"{MAX_EXCHANGE_CANDLES:,}"},
            )

    def _clean_portfolio(self, data: dict[str, Any]) -> None:
        rebase = bool(data.get("rebase"))
        if data.get("trades_source") == "account":
            account = data.get("account")
            if account is None:
                self.add_error("account", _("Choose the account whose running trades to replay."))
                return
            trades = account_trades(account=account, rebase=rebase)
            if not trades:
                self.add_error("trades_source", _("This account has no running trade: describe the trades instead."))
                return
        else:
            if "trades" in self.errors:
                return
            trades = tuple(data.get("trades") or ())
            rebase = False
            if not trades and all(KIND_REGISTRY[c["kind"]].on_trades for c in self.configs):
                self.add_error(
                    "trades", _("Describe at least one trade to guard (only an Auto Entry starts with none).")
                )
                return
        if data.get("balance") is None or data.get("funding_rate") is None or data.get("latency_ms") is None:
            return
        self.run_settings = RunSettings(
            balance=int(data["balance"]),
            trades=tuple(trades),
            rebase=rebase,
            funding_rate=Decimal(data["funding_rate"]) / 100,
            fee_tier=int(data.get("fee_tier") or 1),
            latency_ms=int(data["latency_ms"]),
        )

    def source_params(self) -> dict[str, Any]:
        data = self.cleaned_data
        source = data["source"]
        if source == BacktestRun.Source.SCENARIO:
            return {"scenario": data["scenario"], "seed": data["seed"], "start_price": str(data["start_price"])}
        if source == BacktestRun.Source.EXCHANGE:
            return {
                "from": data["date_from"].isoformat(),
                "to": data["date_to"].isoformat(),
                "resolution": data.get("resolution") or "1m",
            }
        upload = data.get("csv_file")
        return {"file": str(getattr(upload, "name", ""))[:200], "kind": data.get("csv_kind") or "candles"}


def parse_variants(raw: str) -> list[dict[str, Any]]:
    """Configurations given as JSON (a list, or one object), validated by the engine's typed configs."""
    text = raw.strip()
    if not text:
        return []
    try:
        data = json.loads(text, parse_float=Decimal, parse_int=int)
    except (json.JSONDecodeError, RecursionError, InvalidOperation) as exc:
        raise forms.ValidationError(_("This is not valid JSON: %(error)s"), params={"error": str(exc)[:200]}) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise forms.ValidationError(_("Give a list of configurations."))
    configs = []
    for number, item in enumerate(data, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("config"), dict):
            raise forms.ValidationError(
                _('Configuration %(n)d: give an object with "kind" and "config".'), params={"n": number}
            )
        kind = item.get("kind")
        if kind not in KINDS:
            raise forms.ValidationError(
                _('Configuration %(n)d: "kind" must be margin_guard, tpsl or auto_entry.'), params={"n": number}
            )
        label = item.get("label") or f"{KINDS[kind]} {number}"
        if not isinstance(label, str):
            raise forms.ValidationError(_("Configuration %(n)d: the label must be text."), params={"n": number})
        config = {k: (str(v) if isinstance(v, Decimal) else v) for k, v in item["config"].items()}
        try:
            configs.append(candidate_json(check_text(label.strip())[:120], kind, config))
        except SpecError as exc:
            raise forms.ValidationError(
                _("Configuration %(n)d (%(label)s): %(error)s"),
                params={"n": number, "label": label[:60], "error": exc.message},
            ) from None
    return configs


def parse_trade_line(number: int, line: str, trade_id: str) -> TradeSpec:
    """One described trade: ``side quantity leverage [sl=…] [tp=…] [entry=…]``."""
    match = _TRADE_LINE.match(line)
    if match is None:
        raise forms.ValidationError(
            _("Line %(n)d: write side, quantity and leverage, like “buy 500 10x”."), params={"n": number}
        )
    side: Side = "buy" if match["side"].lower() in ("buy", "long") else "sell"
    quantity = int(match["quantity"])
    leverage = Decimal(match["leverage"])
    if not 1 <= quantity <= 500_000:
        raise forms.ValidationError(_("Line %(n)d: the quantity must be 1 to 500,000 USD."), params={"n": number})
    if not 1 <= leverage <= 100:
        raise forms.ValidationError(_("Line %(n)d: the leverage must be 1 to 100."), params={"n": number})
    options: dict[str, Decimal] = {}
    for key, value in _OPTION.findall(match["rest"] or ""):
        key = key.lower()
        if key not in ("sl", "tp", "entry"):
            raise forms.ValidationError(
                _("Line %(n)d: unknown option “%(key)s” (use sl=, tp= or entry=)."),
                params={"n": number, "key": key[:20]},
            )
        try:
            price = Decimal(value)
        except InvalidOperation:
            price = Decimal(-1)
        if not price.is_finite() or price <= 0 or price > 10_000_000 or price % Decimal("0.5") != 0:
            raise forms.ValidationError(
                _("Line %(n)d: %(key)s must be a price on the 0.5 USD tick."), params={"n": number, "key": key}
            )
        options[key] = price
    long = side == "buy"
    sl, tp = options.get("sl", Decimal(0)), options.get("tp", Decimal(0))
    if sl and tp and (sl >= tp if long else sl <= tp):
        raise forms.ValidationError(
            _("Line %(n)d: a long's stop-loss must be below its take-profit (a short's above)."),
            params={"n": number},
        )
    return TradeSpec(trade_id, side, quantity, leverage, options.get("entry"), sl, tp)


def initial_for(automation: Automation | None, user: User) -> dict[str, Any]:
    """The form's starting values; for "Backtest this", the automation checked and an editable copy of its
    settings as a second configuration to compare."""
    initial: dict[str, Any] = {"name": _("Backtest"), "trades_source": "described"}
    if automation is None:
        return initial
    initial["name"] = f"{automation.name} · backtest"
    initial["automations"] = [automation.pk]
    initial["account"] = automation.account_id
    try:
        variant = candidate_json(f"{automation.name} (variant)", automation.kind, automation.config)
    except SpecError:
        variant = None
    if variant is not None:
        initial["variants"] = json.dumps([variant], indent=2)
    if account_trades(account=automation.account, rebase=True):
        initial["trades_source"] = "account"
    return initial


__all__ = ["BacktestForm", "initial_for"]
