"""“What it will do”: the sentence of an automation's settings and, live, how far each trigger is from the market
now on the account's running trades. Reads only (a ticker and the tracked trades); nothing is sent or stored."""

from __future__ import annotations

from dataclasses import dataclass

from accounts.models import ExchangeAccount
from automations.describe import summary, triggers_now
from automations.services import management
from automations.services.evaluation import account_state_of
from automations.specs import AutomationConfig
from automations.wording import TriggerNow


@dataclass(frozen=True, slots=True)
class Explained:
    """What the form and the preview show under “What it will do”."""

    summary: str = ""
    triggers: tuple[TriggerNow, ...] = ()
    market_missing: bool = False
    account: object | None = None


def explain(config: AutomationConfig | None, account: ExchangeAccount | None, *, live: bool = True) -> Explained:
    """The sentence for ``config`` and, when ``live`` and an account is given, how far each trigger is now on the
    account's running trades and the network's live price (nothing is sent or stored)."""
    if config is None:
        return Explained()
    text = summary(config)
    if account is None or not live:
        return Explained(summary=text, account=account)
    market = management.preview_market(account.network)  # looked up at call time: tests replace it
    if market is None:
        return Explained(summary=text, market_missing=True, account=account)
    trades = account_state_of(account).trades
    return Explained(summary=text, triggers=tuple(triggers_now(config, market, trades)), account=account)
