"""What the pure engine decides: frozen decision records, and the :class:`Evaluation` that carries them.

The service layer turns each decision into an audit entry and, except for :class:`Skip`, into an order intent.
Every decision carries ``inputs``: the values it was decided on, as strings (price used, bid/ask, PnL %, margin
ratio, distance, price age…), for the audit log. ``protective`` says which queue and rate-limit budget it belongs to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import ClassVar

from lnmarkets.maths import Side

from .specs import JSONValue, Memory


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """Base of every decision; ``kind`` is a stable name for the audit log ("close", "reduce", …)."""

    kind: ClassVar[str] = "decision"
    inputs: Mapping[str, str] = field(default_factory=dict)

    @property
    def protective(self) -> bool:
        """True for work that protects an open trade (priority queue); False for new entries."""
        return True

    def to_json(self) -> dict[str, JSONValue]:
        """JSON-safe dict of the decision (Decimals as strings) with its ``kind`` and ``protective`` flag."""
        data: dict[str, JSONValue] = {"kind": self.kind, "protective": self.protective}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Decimal):
                data[f.name] = str(value)
            elif isinstance(value, Mapping):
                data[f.name] = {str(k): str(v) for k, v in value.items()}
            else:
                data[f.name] = value
        return data


@dataclass(frozen=True, slots=True)
class ClosePosition(Decision):
    """Close the running trade at market."""

    kind: ClassVar[str] = "close"
    trade_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReducePosition(Decision):
    """Close the trade, then reopen ``reopen_quantity`` at market with the same side, leverage, SL and TP.

    LN Markets has no partial close of an isolated trade. ``stoploss``/``takeprofit`` are None when the trade had none
    or when the old value would be rejected for the reopened trade (the reason says so, ``inputs`` has the details).
    """

    kind: ClassVar[str] = "reduce"
    trade_id: str
    close_quantity: int
    reopen_quantity: int
    side: Side
    leverage: Decimal
    stoploss: Decimal | None
    takeprofit: Decimal | None
    reason: str


@dataclass(frozen=True, slots=True)
class AddMargin(Decision):
    """Add ``amount`` sats of margin to the running trade."""

    kind: ClassVar[str] = "add_margin"
    trade_id: str
    amount: int
    reason: str


@dataclass(frozen=True, slots=True)
class SetStopLoss(Decision):
    """Set the trade's stop-loss to ``price`` (already checked against LN Markets' rules)."""

    kind: ClassVar[str] = "set_stoploss"
    trade_id: str
    price: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class SetTakeProfit(Decision):
    """Set the trade's take-profit to ``price`` (already checked against LN Markets' rules)."""

    kind: ClassVar[str] = "set_takeprofit"
    trade_id: str
    price: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class OpenPosition(Decision):
    """Open a market trade of ``quantity`` USD xor ``margin`` sats.

    ``stoploss``/``takeprofit`` are absolute prices sent with the order; ``*_percent`` are distances from the actual
    fill price that the service converts with ``engine.stoploss_from_percent`` / ``takeprofit_from_percent`` once the
    fill is known, then sets with an update.
    """

    kind: ClassVar[str] = "open"
    side: Side
    leverage: Decimal
    quantity: int | None
    margin: int | None
    stoploss: Decimal | None
    takeprofit: Decimal | None
    stoploss_percent: Decimal | None
    takeprofit_percent: Decimal | None
    reason: str

    @property
    def protective(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Skip(Decision):
    """A trigger was hit but no action can be taken (stale price, kill switch, rule violation, balance, cap…).

    ``code`` is a stable machine name of the reason (e.g. ``"stale_price"``); ``protective`` is True when the skip
    concerns a running trade (``trade_id`` set), False for a skipped entry.
    """

    kind: ClassVar[str] = "skip"
    reason: str
    trade_id: str | None = None
    code: str = "skip"

    @property
    def protective(self) -> bool:
        return self.trade_id is not None


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of one ``evaluate`` call.

    ``memory`` already reflects ``decisions`` (persist it before executing them); ``completed`` is True when an Auto
    Entry has used all its fires (the automation's status becomes ``completed``).
    """

    decisions: tuple[Decision, ...]
    memory: Memory
    completed: bool = False


__all__ = [
    "AddMargin",
    "ClosePosition",
    "Decision",
    "Evaluation",
    "OpenPosition",
    "ReducePosition",
    "SetStopLoss",
    "SetTakeProfit",
    "Skip",
]
