"""What the dashboard chart draws over the candles for one account: each running trade's entry, liquidation,
stop-loss and take-profit; the price at which each active automation would act (an Auto Entry's trigger, each
Margin Guard's and TP/SL management's level per trade); and markers where trades opened and closed."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Literal, TypedDict

from django.utils.translation import gettext as _

from accounts.models import ExchangeAccount
from automations.configs import config_from_json
from automations.describe import triggers_now
from automations.models import Automation, TrackedTrade
from automations.specs import MarketSnapshot, SpecError, TradeState
from history.models import ClosedTrade

logger = logging.getLogger(__name__)
MARKERS_MAX = 200

LevelKind = Literal["entry", "liquidation", "stoploss", "takeprofit", "trigger"]


class Level(TypedDict):
    kind: LevelKind
    price: str
    title: str
    trade_id: str
    automation_id: int | None


class Marker(TypedDict):
    time: int
    kind: Literal["open", "close"]
    side: str
    price: str
    text: str


def _short(trade_id: str) -> str:
    return trade_id[:6]


def _level(kind: LevelKind, price: Decimal, title: str, trade_id: str = "", automation_id: int | None = None) -> Level:
    return {"kind": kind, "price": str(price), "title": title, "trade_id": trade_id, "automation_id": automation_id}


def trade_levels(trade: TrackedTrade) -> list[Level]:
    """Entry, liquidation and, when set, stop-loss and take-profit of one running trade."""
    name = f"{_('Long') if trade.side == 'buy' else _('Short')} {trade.quantity}"
    rows: list[tuple[LevelKind, Decimal, str]] = [
        ("entry", trade.entry_price, _("%(trade)s entry")),
        ("liquidation", trade.liquidation, _("%(trade)s liq.")),
        ("stoploss", trade.stoploss, _("%(trade)s SL")),
        ("takeprofit", trade.takeprofit, _("%(trade)s TP")),
    ]
    return [_level(kind, price, title % {"trade": name}, trade.trade_id) for kind, price, title in rows if price]


def trigger_levels(
    account: ExchangeAccount, market: MarketSnapshot | None, trades: tuple[TradeState, ...]
) -> list[Level]:
    """The price at which each active automation acts now: one line per trade in its scope, or the Auto Entry's
    trigger price. Without a market price only the Auto Entry triggers are known."""
    levels: list[Level] = []
    for automation in Automation.objects.filter(account=account, status=Automation.Status.ACTIVE):
        try:
            config = config_from_json(automation.kind, automation.config)
        except SpecError:
            continue  # a stored config the engine refuses acts nowhere: nothing to draw
        if market is None:
            price = getattr(config, "trigger_price", None)
            rows = [(price, "")] if isinstance(price, Decimal) else []
        else:
            rows = [(t.price, t.trade_id) for t in triggers_now(config, market, trades) if t.price is not None]
        levels += [_level("trigger", price, automation.name, trade_id, automation.pk) for price, trade_id in rows]
    return levels


def chart_levels(account: ExchangeAccount, market: MarketSnapshot | None) -> list[Level]:
    """Every line of the account's chart: its running trades' levels, then its automations' triggers."""
    from automations.services.evaluation import account_state_of

    running = TrackedTrade.objects.filter(account=account, state=TrackedTrade.State.RUNNING).order_by("first_seen_at")
    levels = [level for trade in running for level in trade_levels(trade)]
    return levels + trigger_levels(account, market, account_state_of(account).trades)


def chart_markers(account: ExchangeAccount, since: datetime) -> list[Marker]:
    """Arrows where the account's trades opened (running ones, and closed ones) and closed, since ``since``."""
    markers: list[Marker] = []
    closed = ClosedTrade.objects.filter(account=account, canceled=False, closed_at__gte=since).order_by("-closed_at")
    for row in closed[:MARKERS_MAX]:
        if row.opened_at is not None and row.opened_at >= since and row.entry_price is not None:
            markers.append(_marker(row.opened_at, "open", row.side, row.entry_price, row.quantity))
        if row.exit_price is not None:
            text = _("closed %(pl)s sats") % {"pl": f"{row.net_pl:+d}"}
            markers.append(
                {
                    "time": int(row.closed_at.timestamp()),
                    "kind": "close",
                    "side": row.side,
                    "price": str(row.exit_price),
                    "text": text,
                }
            )
    running = TrackedTrade.objects.filter(
        account=account, state=TrackedTrade.State.RUNNING, first_seen_at__gte=since
    ).order_by("-first_seen_at")
    for trade in running[:MARKERS_MAX]:
        markers.append(_marker(trade.first_seen_at, "open", trade.side, trade.entry_price, trade.quantity))
    return sorted(markers, key=lambda m: m["time"])


def _marker(moment: datetime, kind: Literal["open", "close"], side: str, price: Decimal, quantity: int) -> Marker:
    label = _("long %(quantity)s") if side == "buy" else _("short %(quantity)s")
    return {
        "time": int(moment.timestamp()),
        "kind": kind,
        "side": side,
        "price": str(price),
        "text": label % {"quantity": quantity},
    }
