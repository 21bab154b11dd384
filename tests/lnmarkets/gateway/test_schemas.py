"""Recorded responses parse into typed models; anything off-schema is rejected with ResponseFormatError."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lnmarkets.exceptions import ResponseFormatError
from lnmarkets.schemas import (
    Account,
    Candle,
    FundingFee,
    JSONValue,
    StreamBuckets,
    StreamIndex,
    StreamLastPrice,
    StreamRawEvent,
    StreamTicker,
    StreamTradeEvent,
    Ticker,
    Trade,
    parse_json,
    parse_model,
    parse_page,
    to_wire_json,
)
from lnmarkets.stream import decode_message
from tests.lnmarkets.gateway.fakes import load


def obj(name: str) -> dict[str, JSONValue]:
    value = parse_json(load(name))
    assert isinstance(value, dict)
    return value


def test_account_parses() -> None:
    account = parse_model(Account, obj("account.json"), context="t")
    assert account.balance == 1_000_000
    assert account.username == "satoshi"


def test_ticker_parses_with_decimals_and_aware_times() -> None:
    ticker = parse_model(Ticker, obj("ticker.json"), context="t")
    assert ticker.last_price == Decimal("100000.5")
    assert isinstance(ticker.last_price, Decimal)
    assert ticker.time.tzinfo is not None
    assert ticker.prices[0].ask_price == Decimal("100000.5")
    assert ticker.price_change_24h is not None
    assert ticker.exchanges_weights["okx"] == Decimal("0.2")


def test_running_trade_has_all_v3_fields() -> None:
    trade = parse_model(Trade, obj("trade_running.json"), context="t")
    assert trade.state == "running"
    assert trade.liquidation == Decimal(90909)
    assert trade.client_id == "cid-1"
    assert trade.filled_at == datetime(2026, 11, 26, 15, 32, 28, 834000, tzinfo=UTC)


@pytest.mark.parametrize("name", ["trade_running.json", "trade_open_ts_sdk.json"])
def test_a_trade_written_as_exchange_json_parses_back_equal(name: str) -> None:
    trade = parse_model(Trade, obj(name), context="t")
    text = to_wire_json(trade)
    assert "E+" not in text
    assert parse_model(Trade, parse_json(text), context="stored") == trade


def test_open_trade_from_the_ts_sdk_live_test_without_2026_fields() -> None:
    trade = parse_model(Trade, obj("trade_open_ts_sdk.json"), context="t")
    assert trade.state == "open"
    assert (trade.margin, trade.maintenance_margin, trade.liquidation) == (10, 2, Decimal(99010))
    assert trade.sum_cash_in_pl == 0
    assert trade.stoploss_trailing_distance == 0


def test_pages_parse() -> None:
    page = parse_page(Trade, obj("trades_closed_page.json"), context="t")
    assert page.next_cursor == "eyJvZmZzZXQiOjF9"
    assert page.data[0].state == "closed"
    assert parse_page(Candle, obj("candles_page.json"), context="t").data[0].high == Decimal("100010.5")
    assert parse_page(FundingFee, obj("funding_fees_page.json"), context="t").data[0].fee == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("margin", "10000"),  # string for sats
        ("price", "100000"),  # string for a price
        ("margin", Decimal("10000.5")),  # fractional sats
        ("quantity", True),  # bool for int
        ("running", 1),  # int for a flag
        ("createdAt", 1764171148822),  # ms where ISO belongs
        ("createdAt", "2026-11-26T15:32:28"),  # naive time
        ("side", "b"),  # v2 letters
        ("closed", True),  # two state flags
    ],
)
def test_trade_rejects_wrong_types(field: str, value: JSONValue) -> None:
    data = obj("trade_running.json")
    data[field] = value
    with pytest.raises(ResponseFormatError):
        parse_model(Trade, data, context="t")


@pytest.mark.parametrize("field", ["id", "margin", "liquidation", "running", "createdAt"])
def test_trade_rejects_missing_fields(field: str) -> None:
    data = obj("trade_running.json")
    del data[field]
    with pytest.raises(ResponseFormatError, match=field):
        parse_model(Trade, data, context="t")


def test_non_finite_numbers_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        parse_json('{"price": NaN}')


def test_every_stream_frame_decodes_into_its_model() -> None:
    frames = json.loads(load("stream_frames.json"))
    events = [decode_message(json.dumps(frame)) for frame in frames]
    types = [type(e) for e in events]
    assert types[:4] == [StreamTicker, StreamLastPrice, StreamIndex, StreamBuckets]
    trade_events = [e for e in events if isinstance(e, StreamTradeEvent)]
    assert [e.event for e in trade_events] == [
        "open",
        "filled",
        "closed",
        "stoploss",
        "takeprofit",
        "liquidation",
        "canceled",
        "funding",
    ]
    assert trade_events[2].trade.pl == 890
    assert trade_events[-1].trade.liquidation_price == Decimal(90918)
    assert isinstance(events[-1], StreamRawEvent)
    ticker = events[0]
    assert isinstance(ticker, StreamTicker)
    assert ticker.time == datetime(2025, 11, 26, 15, 32, 28, 822000, tzinfo=UTC)
    assert ticker.funding is not None
    assert ticker.funding.rate == Decimal("0.0001")


@pytest.mark.parametrize(
    "data",
    [
        {"pair": "btc_usd", "event": "closed", "trade": {"id": "t", "closedAt": 1}},  # closed without pl/exitPrice
        {"pair": "btc_usd", "event": "exploded", "trade": {"id": "t"}},
        {"pair": "btc_usd", "event": "funding", "trade": {"id": "t", "margin": "1"}},
    ],
)
def test_stream_trade_event_rejects_payloads_missing_event_fields(data: dict[str, JSONValue]) -> None:
    with pytest.raises(ResponseFormatError):
        parse_model(StreamTradeEvent, data, context="t")
