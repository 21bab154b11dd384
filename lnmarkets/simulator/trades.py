"""Accounts, API keys and isolated trades of the simulated exchange, with their REST and Stream shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from lnmarkets.maths import Side
from lnmarkets.simulator.wire import iso, ms

TradeState = Literal["open", "running", "closed", "canceled"]
DEFAULT_SCOPES: tuple[str, ...] = ("account:read", "futures:isolated:read", "futures:isolated:write")
LEVERAGE_QUANTUM = Decimal("0.01")


@dataclass
class ApiKey:
    key: str
    secret: str
    passphrase: str
    scopes: tuple[str, ...]
    account_id: str


@dataclass
class Account:
    """One user. ``balance`` is the free balance (margins and reserves of live trades are not in it).

    The ledger fields make the money conservation checkable:
    ``balance + locked + fees_paid + funding_paid - realised_pl - absorbed == deposited``.
    """

    id: str
    username: str
    balance: int
    created_at: datetime
    fee_tier: int = 0
    deposited: int = 0
    fees_paid: int = 0
    funding_paid: int = 0
    realised_pl: int = 0
    absorbed: int = 0
    trade_ids: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "balance": self.balance,
            "syntheticUsdBalance": 0,
            "feeTier": self.fee_tier,
            "email": None,
            "linkingPublicKey": None,
        }


@dataclass
class Trade:
    id: str
    account_id: str
    type: Literal["market", "limit"]
    side: Side
    quantity: int
    margin: int
    entry_margin: int
    leverage: Decimal
    price: Decimal
    entry_price: Decimal
    liquidation: Decimal
    maintenance_margin: int
    created_at: datetime
    client_id: str | None = None
    stoploss: Decimal = Decimal(0)
    stoploss_trailing: Decimal = Decimal(0)
    takeprofit: Decimal = Decimal(0)
    exit_price: Decimal | None = None
    pl: int = 0
    opening_fee: int = 0
    closing_fee: int = 0
    sum_funding_fees: int = 0
    sum_cash_in_pl: int = 0
    sum_cash_in_margin: int = 0
    filled_at: datetime | None = None
    closed_at: datetime | None = None
    state: TradeState = "open"
    closed_by: str | None = None

    @property
    def active(self) -> bool:
        return self.state in ("open", "running")

    def as_json(self, pl: int | None = None) -> dict[str, object]:
        """The REST v3 trade (§5.1); ``pl`` overrides the stored value (unrealised PnL of a running trade)."""
        return {
            "id": self.id,
            "type": self.type,
            "side": self.side,
            "quantity": self.quantity,
            "margin": self.margin,
            "entryMargin": self.entry_margin,
            "leverage": self.leverage,
            "price": self.price,
            "entryPrice": self.entry_price,
            "liquidation": self.liquidation,
            "stoploss": self.stoploss,
            "stoplossTrailingDistance": self.stoploss_trailing,
            "takeprofit": self.takeprofit,
            "exitPrice": self.exit_price,
            "pl": self.pl if pl is None else pl,
            "openingFee": self.opening_fee,
            "closingFee": self.closing_fee,
            "maintenanceMargin": self.maintenance_margin,
            "sumFundingFees": self.sum_funding_fees,
            "sumCashInPl": self.sum_cash_in_pl,
            "sumCashInMargin": self.sum_cash_in_margin,
            "createdAt": iso(self.created_at),
            "filledAt": iso(self.filled_at) if self.filled_at else None,
            "closedAt": iso(self.closed_at) if self.closed_at else None,
            "open": self.state == "open",
            "running": self.state == "running",
            "canceled": self.state == "canceled",
            "closed": self.state == "closed",
            "clientId": self.client_id,
        }

    def event_payload(self, event: str) -> dict[str, object]:
        """The ``trade`` object of a Stream isolated-trades event (§7.1 table)."""
        if event in ("open", "filled"):
            return {
                "id": self.id,
                "side": self.side,
                "type": self.type,
                "quantity": self.quantity,
                "margin": self.margin,
                "leverage": self.leverage,
                "price": self.price,
                "openingFee": self.opening_fee,
                "createdAt": ms(self.created_at),
                "clientId": self.client_id,
            }
        closed_at = ms(self.closed_at) if self.closed_at else None
        if event == "canceled":
            return {"id": self.id, "closedAt": closed_at, "clientId": self.client_id}
        payload: dict[str, object] = {
            "id": self.id,
            "closedAt": closed_at,
            "closingFee": self.closing_fee,
            "exitPrice": self.exit_price,
            "clientId": self.client_id,
        }
        if event != "liquidation":
            payload["pl"] = self.pl
        return payload


def quantize_leverage(value: Decimal) -> Decimal:
    """Leverage as reported after add-margin / cash-in: two decimals ([U])."""
    return value.quantize(LEVERAGE_QUANTUM, rounding=ROUND_HALF_UP)
