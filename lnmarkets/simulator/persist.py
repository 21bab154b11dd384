"""``--state-file``: the exchange's accounts, keys, trades, funding ledger and prices as JSON (saved every few
seconds and on stop, loaded on start)."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.prices import make_quotes
from lnmarkets.simulator.trades import Account, ApiKey, Trade
from lnmarkets.simulator.wire import iso, parse_iso

VERSION = 1
DECIMALS = {
    "leverage",
    "price",
    "entry_price",
    "liquidation",
    "stoploss",
    "stoploss_trailing",
    "takeprofit",
    "exit_price",
}
TIMES = {"created_at", "filled_at", "closed_at"}


def _plain(obj: object) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, datetime):
            value = iso(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def _revive(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    for name in DECIMALS & set(out):
        out[name] = None if out[name] is None else Decimal(out[name])
    for name in TIMES & set(out):
        out[name] = None if out[name] is None else parse_iso(out[name])
    return out


def save_state(exchange: Exchange, path: str) -> None:
    state = {
        "version": VERSION,
        "lastPrice": str(exchange.last_price),
        "index": str(exchange.index),
        "accounts": [_plain(a) for a in exchange.accounts.values()],
        "keys": [_plain(k) for k in exchange.keys.values()],
        "trades": [_plain(t) for t in exchange.trades.values()],
        "fundingFees": exchange.funding_fees,
        "settlements": exchange.settlements,
        "counters": exchange.counters,
        "candles": exchange.candles.dump(),
    }
    target = Path(path)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(json.dumps(state, default=str), encoding="utf-8")
    os.replace(tmp, target)


def load_state(exchange: Exchange, path: str) -> bool:
    """Restore a saved state; False when the file does not exist."""
    target = Path(path)
    if not target.exists():
        return False
    state = json.loads(target.read_text(encoding="utf-8"))
    if state.get("version") != VERSION:
        raise ValueError(f"unsupported state file version in {path}")
    exchange.reset()
    exchange.last_price = Decimal(state["lastPrice"])
    exchange.index = Decimal(state["index"])
    exchange.quotes = make_quotes(exchange.last_price, exchange.config.buckets)
    for data in state["accounts"]:
        account = Account(**_revive(data))
        exchange.accounts[account.id] = account
    for data in state["keys"]:
        key = ApiKey(**{**data, "scopes": tuple(data["scopes"])})
        exchange.keys[key.key] = key
    for data in state["trades"]:
        trade = Trade(**_revive(data))
        exchange.trades[trade.id] = trade
        if trade.active:
            exchange.active[trade.id] = None
    exchange.funding_fees = {a: list(fees) for a, fees in state["fundingFees"].items()}
    for account_id in exchange.accounts:
        exchange.funding_fees.setdefault(account_id, [])
    exchange.settlements = [
        {**s, "fundingRate": Decimal(s["fundingRate"]), "fixingPrice": Decimal(s["fixingPrice"])}
        for s in state["settlements"]
    ]
    exchange.counters.update(state["counters"])
    if state.get("candles"):  # files written before candles were kept have none: keep the made-up history
        exchange.candles.load(state["candles"])
    return True
