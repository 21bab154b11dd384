"""Automations in words: a one-sentence summary of a config, and how far each trigger is from the market now.

Each kind says it in its own module (``automations.kinds.<kind>``: ``summary`` and ``triggers_now``, built from
``automations.wording``); these two functions find the kind of a config and ask it. The trigger arithmetic mirrors
the engine's: the Margin Guard marks a long at min(last, bucket bid) and a short at max(last, bucket ask); TP/SL marks
at the bucket bid (long) or ask (short).
"""

from __future__ import annotations

from automations.kinds import kind_of_config
from automations.specs import AutomationConfig, MarketSnapshot, TradeState
from automations.wording import SATS, TriggerNow, num, pct, sats, seconds, usd


def summary(config: AutomationConfig) -> str:
    """One sentence saying what the automation does (its kind's ``summary``), e.g. “Closes the trade at market when
    the distance to liquidation falls to 5 %, on every running trade it manages; then waits 60 seconds before acting
    on it again.”"""
    return kind_of_config(config).summary(config)


def triggers_now(config: AutomationConfig, market: MarketSnapshot, trades: tuple[TradeState, ...]) -> list[TriggerNow]:
    """How far each trigger is (its kind's ``triggers_now``): one row per managed trade in scope (Margin Guard,
    TP/SL), or the market (Auto Entry)."""
    return kind_of_config(config).triggers_now(config, market, trades)


__all__ = ["SATS", "TriggerNow", "num", "pct", "sats", "seconds", "summary", "triggers_now", "usd"]
