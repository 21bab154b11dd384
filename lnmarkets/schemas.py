"""Typed models of LN Markets REST v3 responses and Stream v1 payloads (docs/protocol.md §4, §5, §7.1).

Parsing rules (strict enough to catch a drifting or broken exchange at the boundary, not three layers later):

* JSON is decoded with ``parse_float=Decimal`` (``parse_json``), so prices never pass through ``float``.
* Prices, rates and leverage are ``Decimal``; sats and USD quantities are ``int``. A string where a number belongs,
  a boolean where a number belongs, or a fractional value for sats is rejected.
* REST timestamps are ISO-8601 strings and must carry a timezone; Stream timestamps are integer milliseconds
  (converted to aware UTC datetimes).
* Unknown extra fields are ignored (forward compatibility); missing documented fields are errors, except those
  added in 2026 (``stoplossTrailingDistance``, ``sumCashInPl``, ``sumCashInMargin``) which default to 0.

``parse_model``/``parse_model_list`` turn any failure into ``ResponseFormatError``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Generic, Literal, NoReturn, TypeAlias, TypeVar

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError
from pydantic import model_validator as _model_validator
from pydantic.alias_generators import to_camel

from lnmarkets.exceptions import ResponseFormatError

JSONValue: TypeAlias = str | int | Decimal | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject: TypeAlias = dict[str, JSONValue]


def _no_constant(name: str) -> Decimal:
    raise ValueError(f"non-finite JSON number {name} is not accepted")


def parse_json(text: str | bytes) -> JSONValue:
    """Decode JSON with ``Decimal`` for every non-integer number; ``ValueError`` on invalid or non-finite input."""
    value: JSONValue = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    return value


# --- numeric and time field types -----------------------------------------------------------------------------

INT64 = 2**63
MAX_NUMBER = Decimal(10) ** 15  # sanity bound for prices, rates, leverage, sizes (max price is 1e8, §9.7)


def _reject(message: str) -> NoReturn:
    """Pydantic turns ``ValueError`` (not ``TypeError``) raised by validators into a ``ValidationError``."""
    raise ValueError(message)


def _as_int(value: object) -> object:
    if isinstance(value, bool | str | float):
        _reject(f"expected an integer number, got {type(value).__name__}")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError("expected an integer number")
        value = int(value)
    if isinstance(value, int) and not -INT64 <= value < INT64:
        _reject("integer out of the signed 64-bit range")
    return value


def _as_decimal(value: object) -> object:
    if isinstance(value, bool | str | float):
        _reject(f"expected a number, got {type(value).__name__}")
    if isinstance(value, int):
        value = Decimal(value)
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError("expected a finite number")
    return value


def _as_iso_time(value: object) -> object:
    if not isinstance(value, str | datetime):
        _reject("expected an ISO-8601 timestamp string")
    return value


def _as_ms_time(value: object) -> object:
    """Stream times are integer ms; ISO strings are tolerated (some trade-event fields are documented loosely)."""
    if isinstance(value, bool):
        _reject("expected a timestamp")
    if isinstance(value, int):
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            _reject("timestamp out of range")
    if isinstance(value, str | datetime):
        return value
    raise ValueError("expected integer milliseconds or an ISO-8601 timestamp")


Sats = Annotated[int, BeforeValidator(_as_int), Strict()]
"""Integer satoshis (or integer USD contracts): numbers only, no strings, no fractions."""
Num = Annotated[Decimal, BeforeValidator(_as_decimal), Strict()]
"""A price, rate or leverage as ``Decimal``: numbers only, no strings."""
IsoTime = Annotated[AwareDatetime, BeforeValidator(_as_iso_time)]
MsTime = Annotated[AwareDatetime, BeforeValidator(_as_ms_time)]
Flag = Annotated[bool, Strict()]

Side = Literal["buy", "sell"]
OrderType = Literal["market", "limit"]
TradeState = Literal["open", "running", "closed", "canceled"]


class Schema(BaseModel):
    """Base: camelCase aliases, immutable, extra fields ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


# --- REST v3 ----------------------------------------------------------------------------------------------------


class ServerTime(Schema):
    """``GET /v3/time`` (§4.1)."""

    time: IsoTime


class Account(Schema):
    """``GET /v3/account`` (§5.6). ``balance`` is the free balance in sats."""

    id: str
    username: str
    balance: Sats
    synthetic_usd_balance: Num | None = None
    fee_tier: Sats = 0
    email: str | None = None
    linking_public_key: str | None = None


class PriceBucket(Schema):
    """One rung of the volume ladder: bid/ask for orders whose size is in ``[min_size, max_size]`` (§4.3)."""

    min_size: Num
    max_size: Num
    bid_price: Num | None = None
    ask_price: Num | None = None


class PriceChange(Schema):
    ratio: Num
    updated_at: IsoTime | None = None


class Ticker(Schema):
    """``GET /v3/futures/ticker`` (§4.3)."""

    time: IsoTime
    index: Num
    last_price: Num
    funding_rate: Num | None = None
    funding_time: IsoTime | None = None
    prices: tuple[PriceBucket, ...] = ()
    price_change_24h: PriceChange | None = Field(default=None, alias="priceChange24h")
    exchanges_weights: dict[str, Num] = Field(default_factory=dict)


class Candle(Schema):
    """One OHLC candle (§5.5)."""

    time: IsoTime
    open: Num
    high: Num
    low: Num
    close: Num
    volume: Num


class Trade(Schema):
    """An isolated-margin trade (§5.1). Exactly one of the four flags is true; ``0`` means unset for SL/TP."""

    id: str
    type: OrderType
    side: Side
    quantity: Sats
    margin: Sats
    entry_margin: Sats | None = None
    leverage: Num
    price: Num
    entry_price: Num | None = None
    liquidation: Num
    stoploss: Num
    stoploss_trailing_distance: Num = Decimal(0)
    takeprofit: Num
    exit_price: Num | None = None
    pl: Sats
    opening_fee: Sats
    closing_fee: Sats
    maintenance_margin: Sats
    sum_funding_fees: Sats
    sum_cash_in_pl: Sats = 0
    sum_cash_in_margin: Sats = 0
    created_at: IsoTime
    filled_at: IsoTime | None = None
    closed_at: IsoTime | None = None
    open: Flag
    running: Flag
    canceled: Flag
    closed: Flag
    client_id: str | None = None

    @_model_validator(mode="after")
    def _one_state(self) -> Trade:
        if (self.open, self.running, self.canceled, self.closed).count(True) != 1:
            raise ValueError("exactly one of open/running/canceled/closed must be true")
        return self

    @property
    def state(self) -> TradeState:
        """The lifecycle state named by the true flag (§4.4)."""
        if self.open:
            return "open"
        if self.running:
            return "running"
        return "closed" if self.closed else "canceled"


T = TypeVar("T")


class Page(Schema, Generic[T]):
    """A cursor-paginated list (§2): ``{"data": [...], "nextCursor": str | null}``."""

    data: tuple[T, ...]
    next_cursor: str | None


class FundingFee(Schema):
    """One funding fee charged to (or paid to) a trade (§5.4). Sign convention undocumented [U]."""

    fee: Sats
    settlement_id: str
    time: IsoTime
    trade_id: str | None = None


# --- Stream v1 --------------------------------------------------------------------------------------------------

TOPIC_TICKER = "futures/inverse/btc_usd/ticker"
TOPIC_LAST_PRICE = "futures/inverse/btc_usd/lastPrice"
TOPIC_INDEX = "futures/inverse/btc_usd/index"
TOPIC_BUCKETS = "futures/inverse/btc_usd/buckets"
TOPIC_ISOLATED_TRADES = "futures/inverse/btc_usd/isolated/trades"


class StreamFunding(Schema):
    rate: Num | None = None
    time: MsTime | None = None


class StreamTicker(Schema):
    """``futures/inverse/btc_usd/ticker`` payload (§7.1)."""

    time: MsTime
    last_price: Num | None = None
    index: Num | None = None
    funding: StreamFunding | None = None


class StreamLastPrice(Schema):
    """``futures/inverse/btc_usd/lastPrice`` payload."""

    time: MsTime
    last_price: Num


class StreamIndex(Schema):
    """``futures/inverse/btc_usd/index`` payload."""

    time: MsTime
    index: Num


class StreamBuckets(Schema):
    """``futures/inverse/btc_usd/buckets`` payload: the volume ladder."""

    time: MsTime
    buckets: tuple[PriceBucket, ...]


TradeEventName = Literal["open", "filled", "closed", "stoploss", "takeprofit", "liquidation", "canceled", "funding"]

_EVENT_REQUIRED: dict[str, tuple[str, ...]] = {
    "open": ("side", "type", "quantity", "margin", "leverage", "price"),
    "filled": ("side", "type", "quantity", "margin", "leverage", "price"),
    "closed": ("exit_price", "pl"),
    "stoploss": ("exit_price", "pl"),
    "takeprofit": ("exit_price", "pl"),
    "liquidation": ("exit_price",),
    "canceled": (),
    "funding": ("margin", "liquidation_price", "funding_fee"),
}


class StreamTrade(Schema):
    """The ``trade`` object of an isolated-trade event; which fields are present depends on the event (§7.1)."""

    id: str
    client_id: str | None = None
    side: Side | None = None
    type: OrderType | None = None
    quantity: Sats | None = None
    margin: Sats | None = None
    leverage: Num | None = None
    price: Num | None = None
    opening_fee: Sats | None = None
    created_at: MsTime | None = None
    closed_at: MsTime | None = None
    closing_fee: Sats | None = None
    pl: Sats | None = None
    exit_price: Num | None = None
    liquidation_price: Num | None = None
    funding_fee: Sats | None = None
    funded_at: MsTime | None = None


class StreamTradeEvent(Schema):
    """``futures/inverse/btc_usd/isolated/trades`` payload: ``{pair, event, trade}`` (private topic)."""

    pair: str
    event: TradeEventName
    trade: StreamTrade

    @_model_validator(mode="after")
    def _fields_for_event(self) -> StreamTradeEvent:
        missing = [name for name in _EVENT_REQUIRED[self.event] if getattr(self.trade, name) is None]
        if missing:
            raise ValueError(f"{self.event} event without {', '.join(missing)}")
        return self

    @property
    def is_terminal(self) -> bool:
        """True when the trade left the book (closed by any cause, or canceled)."""
        return self.event in ("closed", "stoploss", "takeprofit", "liquidation", "canceled")


class AuthenticateResult(Schema):
    """Result of the Stream ``authenticate`` call: whether it worked and the granted scopes (§3.5, §7.1)."""

    authenticated: Flag
    permissions: tuple[str, ...] = ()


class StreamRawEvent(Schema):
    """A push on a topic this client does not model (announcements, cross, wallet, ohlc): the raw ``data``."""

    topic: str
    data: object


StreamEvent: TypeAlias = (
    StreamTicker | StreamLastPrice | StreamIndex | StreamBuckets | StreamTradeEvent | StreamRawEvent
)

TOPIC_MODELS: dict[str, type[StreamTicker | StreamLastPrice | StreamIndex | StreamBuckets | StreamTradeEvent]] = {
    TOPIC_TICKER: StreamTicker,
    TOPIC_LAST_PRICE: StreamLastPrice,
    TOPIC_INDEX: StreamIndex,
    TOPIC_BUCKETS: StreamBuckets,
    TOPIC_ISOLATED_TRADES: StreamTradeEvent,
}


# --- parsing helpers --------------------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        loc = ".".join(str(p) for p in item["loc"])
        parts.append(f"{loc}: {item['msg']}")
    return "; ".join(parts)


def parse_model(model: type[M], data: JSONValue, *, context: str, status: int | None = None) -> M:
    """Validate decoded JSON into ``model``; any mismatch becomes ``ResponseFormatError`` naming the fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ResponseFormatError(f"{context}: unexpected response ({_describe(exc)})", status=status) from exc


def parse_model_list(model: type[M], data: JSONValue, *, context: str, status: int | None = None) -> tuple[M, ...]:
    """Validate a JSON array of ``model`` objects into a tuple; mismatches become ``ResponseFormatError``."""
    if not isinstance(data, list):
        raise ResponseFormatError(f"{context}: expected a JSON array", status=status)
    return tuple(parse_model(model, item, context=context, status=status) for item in data)


def parse_page(model: type[M], data: JSONValue, *, context: str, status: int | None = None) -> Page[M]:
    """Validate ``{"data": [...], "nextCursor": ...}`` into ``Page[model]``."""
    if not isinstance(data, dict) or "data" not in data:
        raise ResponseFormatError(f"{context}: expected a paginated object with 'data'", status=status)
    items = parse_model_list(model, data["data"], context=context, status=status)
    cursor = data.get("nextCursor")
    if cursor is not None and not isinstance(cursor, str):
        raise ResponseFormatError(f"{context}: nextCursor must be a string or null", status=status)
    return Page(data=items, next_cursor=cursor)


def decimal_text(value: Decimal) -> str:
    """A finite ``Decimal`` as plain JSON-number text (``100000.5``, never ``1E+5``)."""
    if not value.is_finite():
        raise ValueError("non-finite Decimal")
    return format(value, "f")


def to_wire_json(model: BaseModel) -> str:
    """``model`` as the exchange would send it: camelCase, numbers as JSON numbers from their decimal text (never
    through ``float``), times as ISO-8601. ``parse_model(type(model), parse_json(text))`` gives it back."""
    return _wire(model.model_dump(by_alias=True))


def _wire(value: object) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return json.dumps(value.isoformat())
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{_wire(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_wire(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as exchange JSON")
