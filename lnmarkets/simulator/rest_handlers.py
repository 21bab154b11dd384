"""REST v3 endpoints (§4): one small function each, over the Exchange. Routing and auth are in ``rest.py``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lnmarkets.simulator.errors import bad_request
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.pagination import PAGE_PARAMS, paginate
from lnmarkets.simulator.prices import RESOLUTIONS
from lnmarkets.simulator.trades import Trade
from lnmarkets.simulator.validation import (
    as_choice,
    as_int,
    as_price,
    body_object,
    parse_order,
    trade_id,
    trailing_distance,
)
from lnmarkets.simulator.wire import iso, parse_iso

READ = "futures:isolated:read"
WRITE = "futures:isolated:write"


@dataclass
class Call:
    exchange: Exchange
    account_id: str
    body: Any
    query: Mapping[str, str]


class Text(str):
    """A plain-text response body (``/v3/ping``)."""


@dataclass(frozen=True)
class Endpoint:
    handler: Callable[[Call], object]
    scope: str | None  # None = public
    query: frozenset[str] = field(default_factory=frozenset)
    has_body: bool = False


def _ping(call: Call) -> object:
    return Text("pong")


def _time(call: Call) -> object:
    return {"time": iso(call.exchange.clock())}


def _ticker(call: Call) -> object:
    return call.exchange.ticker()


def _candles(call: Call) -> object:
    resolution = call.query.get("range", "1m")
    if resolution not in RESOLUTIONS:
        raise bad_request(f"range must be one of {', '.join(RESOLUTIONS)}")
    candles = call.exchange.candles.candles(resolution)
    records = [(c["time"], str(index), c) for index, c in enumerate(candles)]
    return paginate(records, call.query, _candle_json)  # type: ignore[arg-type]


def _candle_json(candle: dict[str, object]) -> object:
    return {**candle, "time": iso(candle["time"])}  # type: ignore[arg-type]


def _settlements(call: Call) -> object:
    items = [(parse_iso(str(s["time"])), str(s["id"]), s) for s in call.exchange.settlements]
    return paginate(items, call.query, lambda s: {k: v for k, v in s.items() if k != "trades"})


def _account(call: Call) -> object:
    return call.exchange.account(call.account_id).as_json()


def _new_trade(call: Call) -> object:
    return call.exchange.trade_json(call.exchange.open_trade(call.account_id, parse_order(call.body)))


def _list(state: str) -> Callable[[Call], object]:
    def handler(call: Call) -> object:
        trades = call.exchange.trades_of(call.account_id, state)  # type: ignore[arg-type]
        return [call.exchange.trade_json(t) for t in trades]

    return handler


def _history(state: str) -> Callable[[Call], object]:
    def handler(call: Call) -> object:
        trades = call.exchange.trades_of(call.account_id, state)  # type: ignore[arg-type]
        records: list[tuple[Any, str, Trade]] = [(t.closed_at, t.id, t) for t in trades]
        return paginate(records, call.query, call.exchange.trade_json)

    return handler


def _id_body(call: Call) -> str:
    return trade_id(body_object(call.body, {"id"}, {"id"}))


def _close(call: Call) -> object:
    return call.exchange.trade_json(call.exchange.close_trade(call.account_id, _id_body(call)))


def _cancel(call: Call) -> object:
    return call.exchange.trade_json(call.exchange.cancel_trade(call.account_id, _id_body(call)))


def _cancel_all(call: Call) -> object:
    if call.body not in (None, {}):
        raise bad_request("This endpoint takes no body")
    return [call.exchange.trade_json(t) for t in call.exchange.cancel_all(call.account_id)]


def _stoploss(call: Call) -> object:
    body = body_object(call.body, {"id", "value", "mode"}, {"id", "value"})
    mode = as_choice(body.get("mode", "fixed"), "mode", ("fixed", "trailing"))
    raw = body["value"]
    value = trailing_distance(raw) if mode == "trailing" else _price_or_zero(raw)
    trade = call.exchange.set_stoploss(call.account_id, trade_id(body), value, mode)
    return call.exchange.trade_json(trade)


def _takeprofit(call: Call) -> object:
    body = body_object(call.body, {"id", "value"}, {"id", "value"})
    trade = call.exchange.set_takeprofit(call.account_id, trade_id(body), _price_or_zero(body["value"]))
    return call.exchange.trade_json(trade)


def _price_or_zero(value: Any) -> Decimal:
    """A price on the tick, or 0 (= remove)."""
    if not isinstance(value, bool) and isinstance(value, int | Decimal) and value == 0:
        return Decimal(0)
    return as_price(value, "value")


def _query_id(call: Call) -> str:
    if "id" not in call.query:
        raise bad_request("Missing query parameter: id")
    return trade_id(call.query)


def _remove_stoploss(call: Call) -> object:
    return call.exchange.trade_json(call.exchange.remove_stoploss(call.account_id, _query_id(call)))


def _remove_takeprofit(call: Call) -> object:
    return call.exchange.trade_json(call.exchange.remove_takeprofit(call.account_id, _query_id(call)))


def _amount(call: Call) -> tuple[str, int]:
    body = body_object(call.body, {"id", "amount"}, {"id", "amount"})
    return trade_id(body), as_int(body["amount"], "amount", minimum=1, maximum=10**12)


def _add_margin(call: Call) -> object:
    return call.exchange.trade_json(call.exchange.add_margin(call.account_id, *_amount(call)))


def _cash_in(call: Call) -> object:
    return call.exchange.trade_json(call.exchange.cash_in(call.account_id, *_amount(call)))


def _funding_fees(call: Call) -> object:
    fees = call.exchange.funding_fees_of(call.account_id, call.query.get("tradeId"))
    records = [(parse_iso(str(f["time"])), f"{f['settlementId']}:{f['tradeId']}", f) for f in fees]
    return paginate(records, call.query, lambda f: f)


ISO = "/v3/futures/isolated"
ROUTES: dict[str, dict[str, Endpoint]] = {
    "/v3/ping": {"GET": Endpoint(_ping, None)},
    "/v3/time": {"GET": Endpoint(_time, None)},
    "/v3/futures/ticker": {"GET": Endpoint(_ticker, None)},
    "/v3/futures/candles": {"GET": Endpoint(_candles, None, PAGE_PARAMS | {"range"})},
    "/v3/futures/funding-settlements": {"GET": Endpoint(_settlements, None, PAGE_PARAMS)},
    "/v3/account": {"GET": Endpoint(_account, "account:read")},
    f"{ISO}/trade": {"POST": Endpoint(_new_trade, WRITE, has_body=True)},
    f"{ISO}/trades/open": {"GET": Endpoint(_list("open"), READ)},
    f"{ISO}/trades/running": {"GET": Endpoint(_list("running"), READ)},
    f"{ISO}/trades/closed": {"GET": Endpoint(_history("closed"), READ, PAGE_PARAMS)},
    f"{ISO}/trades/canceled": {"GET": Endpoint(_history("canceled"), READ, PAGE_PARAMS)},
    f"{ISO}/trade/close": {"POST": Endpoint(_close, WRITE, has_body=True)},
    f"{ISO}/trade/cancel": {"POST": Endpoint(_cancel, WRITE, has_body=True)},
    f"{ISO}/trades/cancel-all": {"POST": Endpoint(_cancel_all, WRITE, has_body=True)},
    f"{ISO}/trade/stoploss": {
        "PUT": Endpoint(_stoploss, WRITE, has_body=True),
        "DELETE": Endpoint(_remove_stoploss, WRITE, frozenset({"id"})),
    },
    f"{ISO}/trade/takeprofit": {
        "PUT": Endpoint(_takeprofit, WRITE, has_body=True),
        "DELETE": Endpoint(_remove_takeprofit, WRITE, frozenset({"id"})),
    },
    f"{ISO}/trade/add-margin": {"POST": Endpoint(_add_margin, WRITE, has_body=True)},
    f"{ISO}/trade/cash-in": {"POST": Endpoint(_cash_in, WRITE, has_body=True)},
    f"{ISO}/funding-fees": {"GET": Endpoint(_funding_fees, READ, PAGE_PARAMS | {"tradeId"})},
}
