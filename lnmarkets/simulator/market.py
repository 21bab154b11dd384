"""The market half of the simulated exchange: accounts, prices, the per-tick matching loop and funding.

Pure state and rules, no I/O: the server drives it from its single asyncio loop. User trading operations live in
``exchange.Exchange`` which extends this class.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from lnmarkets.maths import (
    TIER_FEE_RATES,
    fee,
    funding_fee,
    leverage_of,
    liquidation_price,
    pnl,
    round_to_tick,
)
from lnmarkets.simulator.config import SimulatorConfig
from lnmarkets.simulator.errors import ApiError, bad_request
from lnmarkets.simulator.events import Event, FundingEvent, Listener, TickEvent, TradeEvent
from lnmarkets.simulator.prices import CandleBook, CandleReplay, Quote, RandomWalk, load_candles, make_quotes, quote_for
from lnmarkets.simulator.trades import DEFAULT_SCOPES, Account, ApiKey, Trade, quantize_leverage
from lnmarkets.simulator.wire import iso, ms

Clock = Callable[[], datetime]
COUNTER_OF = {"takeprofit": "takeprofits", "stoploss": "stoplosses", "liquidation": "liquidations"}


def utc_now() -> datetime:
    return datetime.now(UTC)


def next_funding_time(now: datetime, hours: tuple[int, ...]) -> datetime:
    """The first funding hour (UTC) strictly after ``now``."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for offset in range(3):
        for hour in sorted(hours):
            moment = day + timedelta(days=offset, hours=hour)
            if moment > now:
                return moment
    raise ValueError("funding_hours must not be empty")


class Market:
    def __init__(self, config: SimulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or utc_now
        self.rng = random.Random(config.seed)  # noqa: S311 - ids only, reproducible per seed
        self.listeners: list[Listener] = []
        # Prices
        self.walk = RandomWalk(config.seed, config.annual_volatility, config.tick_interval)
        self.replay = CandleReplay(load_candles(config.candles_file)) if config.candles_file else None
        self.last_price = round_to_tick(config.price)
        self.index = self.last_price
        self.quotes: tuple[Quote, ...] = make_quotes(self.last_price, config.buckets)
        self.ticker_time = self.clock()
        self.candles = CandleBook()
        if config.history_days > 0 and self.replay is None:
            self.candles.backfill(
                self.ticker_time, self.last_price, config.history_days * 1440, config.annual_volatility, config.seed
            )
        self.candles.record(self.ticker_time, self.last_price)
        self.next_funding = next_funding_time(self.ticker_time, config.funding_hours)
        self._stale_until = 0.0
        self._stale_time = self.ticker_time
        self.reset()

    # -- state ---------------------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every account, key, trade and counter and restore the configured rules; prices are kept."""
        # Rules that tests may change at run time (see README).
        self.trigger_mode = self.config.trigger_mode
        self.exit_mode = self.config.exit_mode
        self.funding_rate = self.config.funding_rate
        self.fee_rates = TIER_FEE_RATES
        self.trailing_divisor = Decimal(100)
        self.accounts: dict[str, Account] = {}
        self.keys: dict[str, ApiKey] = {}
        self.trades: dict[str, Trade] = {}
        self.active: dict[str, None] = {}  # ids of open + running trades, in creation order
        self.settlements: list[dict[str, object]] = []
        self.funding_fees: dict[str, list[dict[str, object]]] = {}
        self.counters: dict[str, int] = dict.fromkeys(
            ("ticks", "trades", "fills", "closes", "cancels", "takeprofits", "stoplosses", "liquidations", "fundings"),
            0,
        )

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            listener(event)

    def emit_trade(self, trade: Trade, event: str, payload: dict[str, object] | None = None) -> None:
        if self.listeners:
            self.emit(TradeEvent(trade.account_id, event, payload or trade.event_payload(event)))

    # -- accounts ------------------------------------------------------------------------------------------------
    def create_account(
        self,
        balance: int = 1_000_000,
        scopes: tuple[str, ...] | None = None,
        username: str | None = None,
        key: str | None = None,
        secret: str | None = None,
        passphrase: str | None = None,
    ) -> tuple[Account, ApiKey]:
        """A new account with one API key. Re-creating an existing key with the same secret and passphrase returns
        the existing account unchanged (idempotent restart of the embedded default)."""
        if key is not None and key in self.keys:
            known = self.keys[key]
            if (secret is None or secret == known.secret) and (passphrase is None or passphrase == known.passphrase):
                return self.accounts[known.account_id], known
            raise bad_request("This key already exists with other credentials")
        account_id = self.new_id()
        account = Account(
            id=account_id,
            username=username or f"sim-{len(self.accounts) + 1}-{account_id[:8]}",
            balance=balance,
            created_at=self.clock(),
            deposited=balance,
        )
        self.accounts[account_id] = account
        self.funding_fees[account_id] = []
        api_key = self.add_key(account_id, scopes, key=key, secret=secret, passphrase=passphrase)
        return account, api_key

    def add_key(
        self,
        account_id: str,
        scopes: tuple[str, ...] | None = None,
        *,
        key: str | None = None,
        secret: str | None = None,
        passphrase: str | None = None,
    ) -> ApiKey:
        self.account(account_id)
        api_key = ApiKey(
            key=key or secrets.token_hex(16),
            secret=secret or secrets.token_urlsafe(32),
            passphrase=passphrase or secrets.token_hex(8),
            scopes=DEFAULT_SCOPES if scopes is None else scopes,
            account_id=account_id,
        )
        if api_key.key in self.keys:
            raise bad_request("This key already exists")
        self.keys[api_key.key] = api_key
        return api_key

    def account(self, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None:
            raise ApiError("not_found", "Account not found")
        return account

    def set_balance(self, account_id: str, balance: int) -> Account:
        account = self.account(account_id)
        account.deposited += balance - account.balance
        account.balance = balance
        return account

    def locked(self, account: Account) -> int:
        """Margins and reserves of the account's live trades."""
        return sum(
            self.trades[t].margin + self.trades[t].maintenance_margin
            for t in account.trade_ids
            if self.trades[t].active
        )

    # -- prices --------------------------------------------------------------------------------------------------
    def quote(self, quantity: int) -> Quote:
        return quote_for(self.quotes, quantity)

    def entry_quote(self, side: str, quantity: int) -> Decimal:
        """Market fill price: buys at the bucket ask, sells at the bid (§9.8)."""
        quote = self.quote(quantity)
        return quote.ask if side == "buy" else quote.bid

    def mark(self, trade: Trade) -> Decimal:
        """Longs are marked to the bucket bid, shorts to the ask."""
        quote = self.quote(trade.quantity)
        return quote.bid if trade.side == "buy" else quote.ask

    def unrealised(self, trade: Trade) -> int:
        return pnl(trade.side, trade.quantity, trade.price, self.mark(trade)) if trade.state == "running" else 0

    def _reference(self, buying: bool, quote: Decimal) -> Decimal:
        """The trigger price per ``trigger_mode``: last, quote, or the worse of both for the one who trades."""
        if self.trigger_mode == "last":
            return self.last_price
        if self.trigger_mode == "quote":
            return quote
        return max(self.last_price, quote) if buying else min(self.last_price, quote)

    def entry_reference(self, trade: Trade) -> Decimal:
        return self._reference(trade.side == "buy", self.entry_quote(trade.side, trade.quantity))

    def exit_reference(self, trade: Trade) -> Decimal:
        return self._reference(trade.side == "sell", self.mark(trade))

    def ticker_moment(self) -> datetime:
        """The ticker time; frozen while a ``stale_ticker`` fault is active."""
        if time.monotonic() < self._stale_until:
            return self._stale_time
        return self.ticker_time

    def make_ticker_stale(self, seconds: float) -> None:
        self._stale_time = self.ticker_moment()
        self._stale_until = time.monotonic() + seconds

    def ticker(self) -> dict[str, object]:
        return {
            "time": iso(self.ticker_moment()),
            "index": self.index,
            "lastPrice": self.last_price,
            "fundingRate": self.funding_rate,
            "fundingTime": iso(self.next_funding),
            "prices": [quote.as_json() for quote in self.quotes],
            "exchangesWeights": {"bybit": Decimal("0.4"), "binance": Decimal("0.4"), "okx": Decimal("0.2")},
        }

    # -- ticks ---------------------------------------------------------------------------------------------------
    def tick(self, price: Decimal | None = None, index: Decimal | None = None) -> None:
        """One market tick: new prices, then fills, take-profits, stop-losses, liquidations, then funding if due."""
        now = self.clock()
        if price is None:
            price = self.replay.next_price(self.last_price) if self.replay else self.walk.next_price(self.last_price)
            index = self.walk.next_index(price, self.config.index_spread)
        self.last_price = price
        self.index = price if index is None else index
        self.quotes = make_quotes(price, self.config.buckets)
        self.ticker_time = now
        self.candles.record(now, price)
        self.counters["ticks"] += 1
        if self.listeners:
            self.emit(TickEvent())
        self.match(now)
        if now >= self.next_funding:
            self.settle_funding()
            self.next_funding = next_funding_time(now, self.config.funding_hours)

    def match(self, now: datetime) -> None:
        if not self.active:
            return
        live = [self.trades[i] for i in self.active]
        for trade in live:
            if trade.state == "open" and self._limit_crossed(trade):
                self.fill(trade, trade.price, now)
        running = [t for t in live if t.state == "running"]
        for trade in running:
            self._trail(trade)
        for reason in ("takeprofit", "stoploss", "liquidation"):
            for trade in running:
                if trade.state == "running" and self._triggered(trade, reason):
                    self._trigger(trade, reason, now)

    def _limit_crossed(self, trade: Trade) -> bool:
        ref = self.entry_reference(trade)
        return ref <= trade.price if trade.side == "buy" else ref >= trade.price

    def _triggered(self, trade: Trade, reason: str) -> bool:
        ref = self.exit_reference(trade)
        long = trade.side == "buy"
        if reason == "takeprofit":
            return trade.takeprofit > 0 and (ref >= trade.takeprofit if long else ref <= trade.takeprofit)
        if reason == "stoploss":
            return trade.stoploss > 0 and (ref <= trade.stoploss if long else ref >= trade.stoploss)
        return ref <= trade.liquidation if long else ref >= trade.liquidation

    def _trigger(self, trade: Trade, reason: str, now: datetime) -> None:
        levels = {"takeprofit": trade.takeprofit, "stoploss": trade.stoploss, "liquidation": trade.liquidation}
        exit_price = levels[reason] if self.exit_mode == "level" else self.mark(trade)
        self.counters[COUNTER_OF[reason]] += 1
        self.close(trade, exit_price, now, reason)

    def trailing_stop(self, trade: Trade, ref: Decimal) -> Decimal:
        fraction = trade.stoploss_trailing / self.trailing_divisor
        if trade.side == "buy":
            return max(round_to_tick(ref * (1 - fraction), ROUND_FLOOR), Decimal("0.5"))
        return round_to_tick(ref * (1 + fraction), ROUND_CEILING)

    def _trail(self, trade: Trade) -> None:
        if trade.stoploss_trailing <= 0:
            return
        candidate = self.trailing_stop(trade, self.exit_reference(trade))
        if trade.side == "buy":
            trade.stoploss = max(trade.stoploss, candidate)
        else:
            trade.stoploss = min(trade.stoploss, candidate) if trade.stoploss > 0 else candidate

    def drop_stoploss_past_liquidation(self, trade: Trade) -> None:
        """A fixed stop-loss beyond the (moved) liquidation price is dropped (§9.6 step 5)."""
        if trade.stoploss <= 0 or trade.stoploss_trailing > 0:
            return
        if trade.stoploss < trade.liquidation if trade.side == "buy" else trade.stoploss > trade.liquidation:
            trade.stoploss = Decimal(0)

    # -- fills and closes ----------------------------------------------------------------------------------------
    def fee_rate(self, account_id: str) -> Decimal:
        return self.fee_rates[self.accounts[account_id].fee_tier]

    def fill(self, trade: Trade, price: Decimal, now: datetime) -> None:
        account = self.accounts[trade.account_id]
        trade.opening_fee = fee(trade.quantity, price, self.fee_rate(trade.account_id))
        trade.maintenance_margin -= trade.opening_fee
        account.fees_paid += trade.opening_fee
        trade.state = "running"
        trade.filled_at = now
        self.counters["fills"] += 1
        self.candles.add_volume(now, price, trade.quantity)
        self.emit_trade(trade, "filled")

    def close(self, trade: Trade, exit_price: Decimal, now: datetime, reason: str = "closed") -> None:
        """Close a running trade at ``exit_price``: credit ``margin + pl + maintenance − closingFee`` (floored at 0,
        the shortfall is recorded in ``absorbed``). A liquidation loses exactly the margin."""
        account = self.accounts[trade.account_id]
        pl = -trade.margin if reason == "liquidation" else pnl(trade.side, trade.quantity, trade.price, exit_price)
        closing_fee = fee(trade.quantity, exit_price, self.fee_rate(trade.account_id))
        credit = trade.margin + pl + trade.maintenance_margin - closing_fee
        if credit < 0:
            account.absorbed += -credit
            credit = 0
        account.balance += credit
        account.fees_paid += closing_fee
        account.realised_pl += pl
        trade.pl = pl
        trade.closing_fee = closing_fee
        trade.maintenance_margin -= closing_fee
        trade.exit_price = exit_price
        trade.closed_at = now
        trade.state = "closed"
        trade.closed_by = reason
        self.active.pop(trade.id, None)
        self.counters["closes"] += 1
        self.candles.add_volume(now, exit_price, trade.quantity)
        self.emit_trade(trade, reason)

    # -- funding -------------------------------------------------------------------------------------------------
    def settle_funding(self, rate: Decimal | None = None) -> dict[str, object]:
        """Funding now at the index (fixing price): positive rate → longs pay from margin, shorts get it in balance."""
        now = self.clock()
        rate = self.funding_rate if rate is None else rate
        fixing = self.index
        settlement: dict[str, object] = {
            "id": self.new_id(),
            "time": iso(now),
            "fundingRate": rate,
            "fixingPrice": fixing,
        }
        self.settlements.append(settlement)
        self.counters["fundings"] += 1
        paid = 0
        for trade in [self.trades[i] for i in self.active]:
            if trade.state != "running":
                continue
            amount = funding_fee(trade.quantity, fixing, abs(rate))
            pays = (rate > 0) == (trade.side == "buy")
            self._apply_funding(trade, min(amount, trade.margin) if pays else -amount, settlement, now)
            paid += 1
        settlement["trades"] = paid
        if self.listeners:
            self.emit(FundingEvent(settlement))
        self.match(now)
        return settlement

    def _apply_funding(self, trade: Trade, signed_fee: int, settlement: dict[str, object], now: datetime) -> None:
        account = self.accounts[trade.account_id]
        if signed_fee >= 0:
            trade.margin -= signed_fee
            if trade.margin > 0:
                trade.leverage = quantize_leverage(leverage_of(trade.quantity, trade.margin, trade.price))
                trade.liquidation = liquidation_price(trade.side, trade.quantity, trade.price, trade.margin)
            else:
                trade.liquidation = trade.price
            self.drop_stoploss_past_liquidation(trade)
        else:
            account.balance += -signed_fee
        account.funding_paid += signed_fee
        trade.sum_funding_fees += signed_fee
        record = {"fee": signed_fee, "settlementId": settlement["id"], "time": iso(now), "tradeId": trade.id}
        self.funding_fees[trade.account_id].append(record)
        payload: dict[str, object] = {
            "id": trade.id,
            "margin": trade.margin,
            "liquidationPrice": trade.liquidation,
            "fundingFee": signed_fee,
            "fundedAt": ms(now),
            "clientId": trade.client_id,
        }
        self.emit_trade(trade, "funding", payload)
