"""Typed inputs of the pure automation engine (``automations.engine``): market, account, configs, memory, spec.

Everything here is a frozen, slotted dataclass built from plain values: ``Decimal`` prices (USD on the 0.5 tick),
``int`` sats and USD quantities, timezone-aware datetimes. Configs validate themselves in ``__post_init__`` and raise
:class:`SpecError` with a plain-English message that names the field; the UI forms show these messages as they are
(``error.field`` says which form field to attach it to).

No Django, no ORM, no network, no clock: the service layer builds these objects from its rows and the market feed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, Literal, TypeAlias, get_args

from lnmarkets.maths import TICK, Side

JSONValue: TypeAlias = str | int | float | bool | None | dict[str, "JSONValue"] | list["JSONValue"]

# An automation kind's key (``automations.kinds.KINDS``), as stored in ``Automation.kind``.
AutomationKind: TypeAlias = str

# How old a price may be for an entry (``Automation.max_price_age_seconds``): the one place these bounds live.
PRICE_AGE_MIN_SECONDS = 1
PRICE_AGE_MAX_SECONDS = 3600
PRICE_AGE_DEFAULT_SECONDS = 15

MAX_LEVERAGE = Decimal(100)
MAX_QUANTITY = 500_000
ZERO = Decimal(0)
HUNDRED = Decimal(100)


class SpecError(ValueError):
    """A config, state or memory value the engine cannot accept; ``str(error)`` is a message fit for a user.

    ``field`` names the offending attribute (a form field name for configs).
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# --- small validators (each raises SpecError naming the field) -------------------------------------------------------


def _decimal(obj: object, name: str, value: object, label: str) -> Decimal:
    """Coerce an int or a finite Decimal into ``Decimal`` (stored back on the frozen ``obj``); refuse floats."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise SpecError(name, f"{label} must be a decimal number (got {type(value).__name__}).")
    result = Decimal(value)
    if not result.is_finite():
        raise SpecError(name, f"{label} must be a finite number.")
    if result is not value:
        object.__setattr__(obj, name, result)
    return result


def one_of(value: object, name: str, label: str, allowed: object) -> None:
    """``value`` must be one of the values of the ``Literal`` type ``allowed`` (the one place they are listed)."""
    values = get_args(allowed)
    if value not in values:
        raise SpecError(name, f"{label} must be one of: {', '.join(repr(v) for v in values)}.")


def _integer(name: str, value: object, label: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(name, f"{label} must be a whole number (got {type(value).__name__}).")
    return value


def _on_tick(name: str, value: Decimal, label: str) -> None:
    if value % TICK != 0:
        raise SpecError(name, f"{label} must be a multiple of 0.5 USD (LN Markets' price tick); got {value}.")


def _percent_open(obj: object, name: str, value: object, label: str) -> Decimal:
    """A percentage strictly between 0 and 100."""
    result = _decimal(obj, name, value, label)
    if not ZERO < result < HUNDRED:
        raise SpecError(name, f"{label} must be greater than 0 and less than 100 (percent); got {result}.")
    return result


def _positive_price(obj: object, name: str, value: object, label: str) -> Decimal:
    result = _decimal(obj, name, value, label)
    if result <= 0:
        raise SpecError(name, f"{label} must be greater than 0; got {result}.")
    _on_tick(name, result, label)
    return result


def _unused(name: str, value: object, label: str, when: str) -> None:
    if value is not None:
        raise SpecError(name, f"{label} is only used {when}; leave it empty.")


def _aware(name: str, value: object, label: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise SpecError(name, f"{label} must be a timezone-aware datetime.")
    return value


def _trade_ids(obj: object, value: object) -> None:
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise SpecError("trade_ids", "Trade ids must be a list of trade ids (empty = every managed running trade).")
    ids = tuple(value)
    for item in ids:
        if not isinstance(item, str) or not item:
            raise SpecError("trade_ids", "Each trade id must be a non-empty string.")
    if len(set(ids)) != len(ids):
        raise SpecError("trade_ids", "Trade ids must not repeat.")
    if ids is not value:
        object.__setattr__(obj, "trade_ids", ids)


# --- market and account ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    """One size bucket of LN Markets' volume ladder: the bid/ask quoted for quantities in [min_size, max_size] USD."""

    min_size: int
    max_size: int
    bid: Decimal
    ask: Decimal

    def __post_init__(self) -> None:
        if self.min_size > self.max_size:
            raise SpecError("buckets", f"A bucket's min_size ({self.min_size}) exceeds its max_size ({self.max_size}).")
        if self.bid <= 0 or self.ask <= 0:
            raise SpecError("buckets", "A bucket's bid and ask must be greater than 0.")


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """LN Markets' ticker at ``time``: last price, index, top-of-book bid/ask and the size buckets."""

    last_price: Decimal
    index: Decimal
    bid: Decimal
    ask: Decimal
    time: datetime
    buckets: tuple[Bucket, ...] = ()

    def __post_init__(self) -> None:
        for name in ("last_price", "index", "bid", "ask"):
            value = _decimal(self, name, getattr(self, name), name)
            if value <= 0:
                raise SpecError(name, f"The market {name} must be greater than 0; got {value}.")
        _aware("time", self.time, "The market time")
        if not isinstance(self.buckets, tuple):
            object.__setattr__(self, "buckets", tuple(self.buckets))

    def quote_for(self, quantity: int) -> tuple[Decimal, Decimal]:
        """(bid, ask) of the first bucket whose [min_size, max_size] contains ``quantity``, else the top-level quote."""
        for bucket in self.buckets:
            if bucket.min_size <= quantity <= bucket.max_size:
                return bucket.bid, bucket.ask
        return self.bid, self.ask

    def age(self, now: datetime) -> timedelta:
        """How old the snapshot is at ``now`` (negative if the feed's clock is ahead of ours)."""
        return now - self.time


@dataclass(frozen=True, slots=True)
class TradeState:
    """A running isolated trade as last seen on the exchange (``stoploss``/``takeprofit`` 0 = none).

    ``managed`` False means Axisor did not open it and the user did not opt in: no automation ever acts on it.
    """

    id: str
    side: Side
    quantity: int
    entry_price: Decimal
    margin: int
    leverage: Decimal
    liquidation: Decimal
    stoploss: Decimal
    takeprofit: Decimal
    maintenance_margin: int
    opening_fee: int
    client_id: str | None
    managed: bool

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise SpecError("side", f"A trade's side must be 'buy' or 'sell'; got {self.side!r}.")
        if _integer("quantity", self.quantity, "A trade's quantity") < 1:
            raise SpecError("quantity", "A trade's quantity must be at least 1 USD.")
        if _integer("margin", self.margin, "A trade's margin") < 1:
            raise SpecError("margin", "A trade's margin must be at least 1 sat.")
        for name in ("entry_price", "leverage", "liquidation"):
            if _decimal(self, name, getattr(self, name), f"A trade's {name}") <= 0:
                raise SpecError(name, f"A trade's {name} must be greater than 0.")
        for name in ("stoploss", "takeprofit"):
            if _decimal(self, name, getattr(self, name), f"A trade's {name}") < 0:
                raise SpecError(name, f"A trade's {name} must be 0 (none) or a price.")
        _integer("maintenance_margin", self.maintenance_margin, "A trade's maintenance margin")
        _integer("opening_fee", self.opening_fee, "A trade's opening fee")

    @property
    def is_long(self) -> bool:
        return self.side == "buy"


@dataclass(frozen=True, slots=True)
class AccountState:
    """The exchange account: free balance (sats), running trades, and the two entry blocks.

    ``entries_halted`` is the account's failure breaker; ``kill_switch`` is the per-account or global kill switch.
    Both block NEW entries only: closes, margin additions and SL/TP changes still go through.
    """

    balance: int
    trades: tuple[TradeState, ...]
    entries_halted: bool
    kill_switch: bool

    def __post_init__(self) -> None:
        _integer("balance", self.balance, "The free balance")
        if not isinstance(self.trades, tuple):
            object.__setattr__(self, "trades", tuple(self.trades))


# --- configs ---------------------------------------------------------------------------------------------------------


class KindConfig:
    """Base of every kind's config: a frozen, slotted dataclass in its kind's module (``automations.kinds``) that
    validates itself in ``__post_init__``; ``kind`` is its kind's key."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]  # every subclass is a dataclass
    kind: ClassVar[str]
    trade_ids: tuple[str, ...] = ()  # the trades it is limited to (kinds that act on running trades)


AutomationConfig: TypeAlias = KindConfig


# --- memory ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeMemory:
    """What an automation remembers about one trade.

    - ``last_action_at``: when the engine last proposed an action on the trade (cooldowns count from here);
    - ``crossed``: the trigger held at the last evaluation (a new "crossing" starts when it goes False → True);
    - ``fired``: TP/SL has fired for this trade (it fires once per trade; only trailing keeps re-deciding);
    - ``trail_best`` / ``trail_stoploss``: best mark since the trailing trigger, and the last stop-loss proposed;
    - ``added_margin``: sats of margin proposed so far (counts against ``max_added_per_trade``);
    - ``pending_margin``: sats of the last addition; held back from the free balance during its cooldown, since the
      account state may not show it yet;
    - ``skip``: code of the last :class:`Skip` emitted in the current crossing (one audit entry per reason).
    """

    last_action_at: datetime | None = None
    crossed: bool = False
    fired: bool = False
    trail_best: Decimal | None = None
    trail_stoploss: Decimal | None = None
    added_margin: int = 0
    pending_margin: int = 0
    skip: str | None = None

    def to_json(self) -> dict[str, JSONValue]:
        """JSON-safe dict; default values are left out to keep the stored memory small."""
        data: dict[str, JSONValue] = {}
        if self.last_action_at is not None:
            data["last_action_at"] = self.last_action_at.isoformat()
        if self.crossed:
            data["crossed"] = True
        if self.fired:
            data["fired"] = True
        if self.trail_best is not None:
            data["trail_best"] = str(self.trail_best)
        if self.trail_stoploss is not None:
            data["trail_stoploss"] = str(self.trail_stoploss)
        if self.added_margin:
            data["added_margin"] = self.added_margin
        if self.pending_margin:
            data["pending_margin"] = self.pending_margin
        if self.skip is not None:
            data["skip"] = self.skip
        return data

    @classmethod
    def from_json(cls, data: object) -> TradeMemory:
        """Inverse of :meth:`to_json`; raises :class:`SpecError` on a malformed value."""
        if not isinstance(data, Mapping):
            raise SpecError("memory", "Trade memory must be an object.")
        return cls(
            last_action_at=_json_datetime(data.get("last_action_at"), "last_action_at"),
            crossed=_json_bool(data.get("crossed", False), "crossed"),
            fired=_json_bool(data.get("fired", False), "fired"),
            trail_best=_json_decimal(data.get("trail_best"), "trail_best"),
            trail_stoploss=_json_decimal(data.get("trail_stoploss"), "trail_stoploss"),
            added_margin=_json_int(data.get("added_margin", 0), "added_margin"),
            pending_margin=_json_int(data.get("pending_margin", 0), "pending_margin"),
            skip=_json_str(data.get("skip"), "skip"),
        )


EMPTY_TRADE_MEMORY = TradeMemory()


@dataclass(frozen=True, slots=True)
class Memory:
    """An automation's runtime state, persisted by the service layer as ``to_json()`` in a JSONField.

    ``trades`` maps trade id → :class:`TradeMemory` (Margin Guard, TP/SL). ``fires``, ``last_fire_at``, ``armed`` and
    ``skip`` belong to Auto Entry: how many times it fired, when it last fired, whether a price trigger has been
    re-armed (the price left the trigger zone since the last fire), and the last Skip code emitted.

    Treat it as immutable: the engine never mutates a Memory, it returns a new one (the same object when nothing
    changed, so ``evaluation.memory is spec.memory`` tells the service it need not write).
    """

    trades: Mapping[str, TradeMemory] = field(default_factory=dict)
    fires: int = 0
    last_fire_at: datetime | None = None
    armed: bool = True
    skip: str | None = None

    def trade(self, trade_id: str) -> TradeMemory:
        """The memory of one trade (an empty one if the automation never looked at it)."""
        return self.trades.get(trade_id, EMPTY_TRADE_MEMORY)

    def carry_over(self, old_trade_id: str, new_trade_id: str) -> Memory:
        """A copy where ``new_trade_id`` inherits the memory of ``old_trade_id`` (which is dropped).

        The service calls this on every automation of the account after a reduce (close + reopen) so the reopened
        trade keeps the cooldown, the margin already added and the TP/SL "fired"/trailing state.
        """
        if old_trade_id not in self.trades:
            return self
        trades = dict(self.trades)
        trades[new_trade_id] = trades.pop(old_trade_id)
        return Memory(trades=trades, fires=self.fires, last_fire_at=self.last_fire_at, armed=self.armed, skip=self.skip)

    def to_json(self) -> dict[str, JSONValue]:
        """JSON-safe dict (versioned) for the automation's JSONField."""
        data: dict[str, JSONValue] = {"v": 1, "trades": {tid: tm.to_json() for tid, tm in self.trades.items()}}
        if self.fires:
            data["fires"] = self.fires
        if self.last_fire_at is not None:
            data["last_fire_at"] = self.last_fire_at.isoformat()
        if not self.armed:
            data["armed"] = False
        if self.skip is not None:
            data["skip"] = self.skip
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> Memory:
        """Inverse of :meth:`to_json`; ``None`` or ``{}`` is a fresh memory. Raises :class:`SpecError` if malformed."""
        if not data:
            return cls()
        if not isinstance(data, Mapping):
            raise SpecError("memory", "Memory must be an object.")
        raw_trades = data.get("trades", {})
        if not isinstance(raw_trades, Mapping):
            raise SpecError("memory", "Memory 'trades' must be an object.")
        return cls(
            trades={str(tid): TradeMemory.from_json(value) for tid, value in raw_trades.items()},
            fires=_json_int(data.get("fires", 0), "fires"),
            last_fire_at=_json_datetime(data.get("last_fire_at"), "last_fire_at"),
            armed=_json_bool(data.get("armed", True), "armed"),
            skip=_json_str(data.get("skip"), "skip"),
        )


def _json_datetime(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError("memory", f"Memory '{name}' must be an ISO datetime string.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise SpecError("memory", f"Memory '{name}' is not an ISO datetime: {value!r}.") from exc
    return _aware("memory", parsed, f"Memory '{name}'")


def _json_decimal(value: object, name: str) -> Decimal | None:
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise SpecError("memory", f"Memory '{name}' must be a decimal string.")
    try:
        result = Decimal(value)
    except ArithmeticError as exc:
        raise SpecError("memory", f"Memory '{name}' is not a decimal: {value!r}.") from exc
    if not result.is_finite():
        raise SpecError("memory", f"Memory '{name}' must be finite.")
    return result


def _json_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError("memory", f"Memory '{name}' must be a whole number ≥ 0.")
    return value


def _json_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError("memory", f"Memory '{name}' must be true or false.")
    return value


def _json_str(value: object, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise SpecError("memory", f"Memory '{name}' must be a string.")
    return value


def check_price_age(seconds: object) -> None:
    """A price-age limit must be a whole number of seconds within the bounds above."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise SpecError("max_price_age_seconds", "Maximum price age must be a whole number of seconds.")
    if not PRICE_AGE_MIN_SECONDS <= seconds <= PRICE_AGE_MAX_SECONDS:
        raise SpecError(
            "max_price_age_seconds",
            f"Maximum price age must be between {PRICE_AGE_MIN_SECONDS} and {PRICE_AGE_MAX_SECONDS} seconds.",
        )


# --- the spec --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AutomationSpec:
    """One automation as the engine sees it: its kind, validated config, memory, and the entry price-age limit."""

    id: int
    kind: AutomationKind
    config: AutomationConfig
    memory: Memory = field(default_factory=Memory)
    max_price_age_seconds: int = PRICE_AGE_DEFAULT_SECONDS

    def __post_init__(self) -> None:
        expected = getattr(type(self.config), "kind", None)
        if not isinstance(self.config, KindConfig) or expected is None:
            raise SpecError("config", f"Unknown config type {type(self.config).__name__}.")
        if self.kind != expected:
            raise SpecError("kind", f"Kind {self.kind!r} does not match a {type(self.config).__name__}.")
        check_price_age(self.max_price_age_seconds)


# --- field rules: which settings a config uses, and their ranges (read by the forms and the summaries) --------------

FieldUnit = Literal["choice", "percent", "price", "usd", "sats", "seconds", "count", "leverage", "ids"]


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One setting of a config: its unit, its range, and when it is used.

    ``when`` lists (selector field, allowed values) pairs; the setting is used (shown, required if ``required``,
    validated) only when every selector has one of its values, and must be left empty otherwise, as the config's
    ``__post_init__`` says. ``minimum``/``maximum`` are inclusive unless ``min_open``/``max_open``; ``tick`` is the
    price step. The config classes enforce the same numbers (``tests/automations/test_rules.py`` checks each
    boundary against them); the forms build their help texts and per-field checks from this table only.
    """

    name: str
    unit: FieldUnit
    required: bool = False
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    min_open: bool = False
    max_open: bool = False
    tick: Decimal | None = None
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def used(self, values: Mapping[str, object]) -> bool:
        """Whether the setting is used with these selector values."""
        return all(values.get(selector) in allowed for selector, allowed in self.when)

    def problem(self, value: Decimal | int) -> str | None:
        """``None`` if ``value`` is in range and on the tick, else the code of the broken bound
        (``"min"``, ``"max"`` or ``"tick"``)."""
        number = Decimal(value)
        if self.minimum is not None and (number <= self.minimum if self.min_open else number < self.minimum):
            return "min"
        if self.maximum is not None and (number >= self.maximum if self.max_open else number > self.maximum):
            return "max"
        if self.tick is not None and number % self.tick != 0:
            return "tick"
        return None


def _pct_rule(name: str, *, required: bool = False, when: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> FieldRule:
    """A percentage strictly between 0 and 100."""
    return FieldRule(name, "percent", required, ZERO, HUNDRED, min_open=True, max_open=True, when=when)


def _price_rule(name: str, *, required: bool = False, when: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> FieldRule:
    """A USD price above 0 on LN Markets' 0.5 tick."""
    return FieldRule(name, "price", required, ZERO, min_open=True, tick=TICK, when=when)


__all__ = [
    "PRICE_AGE_DEFAULT_SECONDS",
    "PRICE_AGE_MAX_SECONDS",
    "PRICE_AGE_MIN_SECONDS",
    "AccountState",
    "AutomationConfig",
    "AutomationKind",
    "AutomationSpec",
    "Bucket",
    "FieldRule",
    "JSONValue",
    "KindConfig",
    "MarketSnapshot",
    "Memory",
    "SpecError",
    "TradeMemory",
    "TradeState",
    "check_price_age",
    "one_of",
]
