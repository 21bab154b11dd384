"""Backtest labels in the active language: run choices (status, price source), scenario names, action kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template
from django.utils.translation import gettext, gettext_noop

from automations.audit_text import decision_text
from backtest.scenarios import SCENARIOS

register = template.Library()

# BacktestRun's choice labels (the model keeps plain strings, so a label change needs no migration).
CHOICE_LABELS = (
    gettext_noop("Queued"),
    gettext_noop("Running"),
    gettext_noop("Done"),
    gettext_noop("Failed"),
    gettext_noop("Exchange candles"),
    gettext_noop("CSV upload"),
    gettext_noop("Stress scenario"),
    # progress messages (backtest.services)
    gettext_noop("Waiting for a worker…"),
    gettext_noop("Loading the prices…"),
    gettext_noop("Fetching candles from the exchange…"),
)
# What a replayed action did (the engine's decision kinds), short enough for a badge.
ACTION_KINDS = {
    "close": gettext_noop("Close"),
    "reduce": gettext_noop("Reduce"),
    "add_margin": gettext_noop("Add margin"),
    "set_stoploss": gettext_noop("Stop-loss"),
    "set_takeprofit": gettext_noop("Take-profit"),
    "open": gettext_noop("Open"),
    "skip": gettext_noop("Skipped"),
    # the exchange's own triggers (backtest.replay)
    "takeprofit": gettext_noop("Take-profit"),
    "stoploss": gettext_noop("Stop-loss"),
    "liquidation": gettext_noop("Liquidation"),
}
BASELINE = gettext_noop("No automation")  # the label of the run's first column (backtest.services)
# The exchange's reasons (backtest.replay._EXCHANGE_REASON); the engine's reasons are shown as the replay wrote them.
REASONS = (
    gettext_noop("The exchange's take-profit was hit."),
    gettext_noop("The exchange's stop-loss was hit."),
    gettext_noop("The exchange liquidated the trade (the whole margin is lost)."),
)


@register.filter
def translated(label: object) -> str:
    """A plain choice label (``get_status_display``) in the active language."""
    return gettext(str(label)) if label else ""


def _label(labels: dict[str, str], code: str) -> str:
    """The translated label of ``code``, or ``code`` itself when it has none."""
    label = labels.get(code)
    return gettext(label) if label is not None else code


@register.filter
def action_kind(kind: str) -> str:
    return _label(ACTION_KINDS, kind)


@register.filter
def scenario_label(name: str) -> str:
    scenario = SCENARIOS.get(name)
    return str(scenario.label) if scenario is not None else name


OUTCOMES = {
    "done": gettext_noop("done"),
    "skipped": gettext_noop("skipped"),
    "rejected": gettext_noop("rejected"),
    "closed; reopen rejected": gettext_noop("closed; reopen rejected"),
}


@register.filter
def outcome_label(outcome: str) -> str:
    """A replayed action's outcome ("done (…)", "skipped", "rejected: why") with its verdict translated; the details
    after it are the replay's own words."""
    for word in sorted(OUTCOMES, key=len, reverse=True):
        if outcome == word or outcome.startswith((f"{word}:", f"{word} (")):
            return gettext(OUTCOMES[word]) + outcome[len(word) :]
    return outcome


TRADE_ENDS = {
    "automation": gettext_noop("closed by the automation"),
    "stoploss": gettext_noop("stop-loss"),
    "takeprofit": gettext_noop("take-profit"),
    "liquidation": gettext_noop("liquidated"),
    "still open": gettext_noop("still open"),
}


@register.filter
def trade_end(how: str) -> str:
    """How a replayed trade ended, in the active language."""
    return _label(TRADE_ENDS, how)


@register.filter
def run_label(label: str) -> str:
    """A result's label: the baseline's in the active language, a configuration's as the user named it."""
    return gettext(BASELINE) if label == BASELINE else label


@register.filter
def action_reason(action: Mapping[str, Any]) -> str:
    """Why a replayed action happened, in the active language: an automation's from its decision's facts, the
    exchange's from its fixed reasons (else the replay's own words)."""
    facts = action.get("facts")
    if isinstance(facts, dict):
        text = decision_text(facts.get("decision") or {}, facts.get("inputs") or {})
        if text:
            return text
    reason = str(action.get("reason", ""))
    return gettext(reason) if reason in REASONS else reason
