"""``manage.py backtest``: replay automations on a price history from a script; JSON or CSV on stdout (or a file).

Examples::

    manage.py backtest --automation 3 --scenario flash_crash --seed 1 --trade "buy 500 10x" --trade "sell 300 5x"
    manage.py backtest --config '{"kind": "margin_guard", "config": {"trigger": "liquidation_distance",
        "threshold": "5", "action": "close"}}' --csv prices.csv --account-trades 2 --format csv
    manage.py backtest --automation 3 --exchange simulator --from 2026-01-01T00:00Z --to 2026-01-02T00:00Z

Nothing is stored. Exit status 1 with a message on bad input.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django import forms
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ExchangeAccount
from automations.engine import EngineError
from automations.models import Automation
from automations.specs import SpecError
from backtest.forms import parse_trade_line, parse_variants
from backtest.history import History, HistoryError, parse_csv
from backtest.replay import ReplayError, TradeSpec
from backtest.report import actions_csv, comparison_json, run_comparison, summary_csv
from backtest.scenarios import SCENARIOS, scenario_history
from backtest.services import (
    MAX_CONFIGS,
    RESOLUTION_SECONDS,
    RunSettings,
    account_trades,
    candidate_json,
    candidates_of,
    exchange_history,
)
from lnmarkets.exceptions import LNMarketsError


class Command(BaseCommand):
    help = "Replay automations (saved or given as JSON) on a price history under LN Markets' rules; print a report."

    def add_arguments(self, parser: CommandParser) -> None:
        what = parser.add_argument_group("what to replay (at least one, at most 10 in all)")
        what.add_argument("--automation", type=int, action="append", default=[], help="a saved automation's id")
        what.add_argument(
            "--config", action="append", default=[], help='JSON {"label": …, "kind": …, "config": {…}} (repeatable)'
        )
        prices = parser.add_argument_group("prices (exactly one)")
        prices.add_argument("--scenario", choices=sorted(SCENARIOS), help="a built-in stress scenario")
        prices.add_argument("--seed", type=int, default=1, help="the scenario's seed (default 1)")
        prices.add_argument("--start-price", type=Decimal, default=Decimal(100000), help="the scenario's first price")
        prices.add_argument(
            "--csv", type=Path, help="a CSV of candles (time,open,high,low,close) or ticks (time,price)"
        )
        prices.add_argument("--csv-kind", choices=["candles", "ticks"], default="candles")
        prices.add_argument("--exchange", choices=["mainnet", "signet", "simulator"], help="the exchange's candles")
        prices.add_argument("--from", dest="date_from", help="ISO 8601 start (with --exchange)")
        prices.add_argument("--to", dest="date_to", help="ISO 8601 end (with --exchange)")
        prices.add_argument("--resolution", choices=list(RESOLUTION_SECONDS), default="1m")
        folio = parser.add_argument_group("portfolio")
        folio.add_argument("--trade", action="append", default=[], help='"buy 500 10x [sl=…] [tp=…] [entry=…]"')
        folio.add_argument("--account-trades", type=int, help="replay this exchange account's running trades")
        folio.add_argument("--as-is", action="store_true", help="take the account's trades as they are (no rebase)")
        folio.add_argument("--balance", type=int, default=1_000_000, help="free balance in sats (default 1 000 000)")
        rules = parser.add_argument_group("exchange rules")
        rules.add_argument("--funding-rate", type=Decimal, default=Decimal("0.01"), help="percent per 8 h")
        rules.add_argument("--fee-tier", type=int, choices=[1, 2, 3, 4], default=1)
        rules.add_argument("--latency-ms", type=int, default=1000)
        out = parser.add_argument_group("output")
        out.add_argument("--format", choices=["json", "csv", "actions-csv"], default="json")
        out.add_argument("--output", type=Path, help="write here instead of stdout")

    def handle(self, *args: Any, **options: Any) -> None:
        configs = self._configs(options)
        history = self._history(options)
        run_settings = self._settings(options, configs)
        try:
            candidates = candidates_of(configs)
            comparison = run_comparison(
                history, run_settings.portfolio(history), run_settings.rules(), candidates, progress=self._progress
            )
        except (ReplayError, SpecError, EngineError) as exc:
            raise CommandError(str(exc)) from None
        sys.stderr.write("\n")
        if options["format"] == "json":
            text = json.dumps(comparison_json(history, comparison), indent=2) + "\n"
        elif options["format"] == "csv":
            text = summary_csv(comparison)
        else:
            text = actions_csv(comparison)
        if options["output"]:
            options["output"].write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")

    @staticmethod
    def _progress(fraction: float) -> None:
        sys.stderr.write(f"\rreplaying… {fraction * 100:5.1f} %")

    def _configs(self, options: dict[str, Any]) -> list[dict[str, Any]]:
        configs: list[dict[str, Any]] = []
        for automation_id in options["automation"]:
            automation = Automation.objects.filter(pk=automation_id).first()
            if automation is None:
                raise CommandError(f"No automation {automation_id}.")
            try:
                configs.append(candidate_json(automation.name, automation.kind, automation.config))
            except SpecError as exc:
                raise CommandError(f"Automation {automation_id} has invalid settings: {exc}") from None
        if options["config"]:
            try:
                configs += parse_variants("[" + ",".join(options["config"]) + "]")
            except forms.ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
        if not 1 <= len(configs) <= MAX_CONFIGS:
            raise CommandError(f"Give between 1 and {MAX_CONFIGS} configurations (--automation or --config).")
        return configs

    def _history(self, options: dict[str, Any]) -> History:
        sources = [name for name in ("scenario", "csv", "exchange") if options[name]]
        if len(sources) != 1:
            raise CommandError("Give exactly one price source: --scenario, --csv or --exchange.")
        try:
            if options["scenario"]:
                return scenario_history(options["scenario"], options["seed"], start_price=options["start_price"])
            if options["csv"]:
                try:
                    data = options["csv"].read_bytes()
                except OSError as exc:
                    raise CommandError(f"Cannot read {options['csv']}: {exc.strerror}") from None
                return parse_csv(data, options["csv_kind"])
            start, end = _when(options["date_from"], "--from"), _when(options["date_to"], "--to")
            if end <= start:
                raise CommandError("--to must be after --from.")
            return exchange_history(network=options["exchange"], start=start, end=end, resolution=options["resolution"])
        except HistoryError as exc:
            raise CommandError(str(exc)) from None
        except LNMarketsError as exc:
            raise CommandError(f"The exchange did not give the candles: {exc}") from None

    def _settings(self, options: dict[str, Any], configs: list[dict[str, Any]]) -> RunSettings:
        trades: tuple[TradeSpec, ...]
        rebase = False
        if options["account_trades"] is not None:
            account = ExchangeAccount.objects.filter(pk=options["account_trades"]).first()
            if account is None:
                raise CommandError(f"No exchange account {options['account_trades']}.")
            rebase = not options["as_is"]
            trades = account_trades(account=account, rebase=rebase)
            if not trades:
                raise CommandError("That account has no running trade.")
        else:
            try:
                trades = tuple(parse_trade_line(n, line.strip(), f"t{n}") for n, line in enumerate(options["trade"], 1))
            except forms.ValidationError as exc:
                raise CommandError(" ".join(exc.messages).replace("Line", "--trade")) from None
            if not trades and not any(c["kind"] == "auto_entry" for c in configs):
                raise CommandError(
                    "Give at least one --trade (or --account-trades); only an Auto Entry starts with none."
                )
        if options["balance"] < 0:
            raise CommandError("--balance must be 0 or more.")
        if not 0 <= options["latency_ms"] <= 60_000:
            raise CommandError("--latency-ms must be between 0 and 60000.")
        rate = options["funding_rate"]
        if not rate.is_finite() or abs(rate) > 1:
            raise CommandError("--funding-rate is a percentage between -1 and 1.")
        return RunSettings(
            balance=options["balance"],
            trades=trades,
            rebase=rebase,
            funding_rate=rate / 100,
            fee_tier=options["fee_tier"],
            latency_ms=options["latency_ms"],
        )


def _when(text: str | None, flag: str) -> datetime:
    if not text:
        raise CommandError(f"{flag} is required with --exchange.")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CommandError(f"{flag}: not an ISO 8601 time: {text!r}.") from None
    if moment.tzinfo is None:
        raise CommandError(f"{flag}: give a time zone (e.g. 2026-01-01T00:00Z).")
    return moment
