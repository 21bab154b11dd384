"""The simulated LN Markets exchange: the market (``market.Market``) plus every user trading operation (§4.4, §9).

Every method runs synchronously on the server's event loop; errors are ``ApiError`` (→ the REST error body).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from lnmarkets.maths import (
    entry_price_after_cash_in,
    fee_reserves,
    initial_liquidation_price,
    leverage_of,
    liquidation_price,
    margin_from_quantity,
    pnl,
    quantity_from_margin,
    round_to_tick,
)
from lnmarkets.simulator.errors import ApiError, bad_request
from lnmarkets.simulator.market import Market
from lnmarkets.simulator.trades import Trade, TradeState, quantize_leverage
from lnmarkets.simulator.validation import OrderRequest

SAME_AS_PREVIOUS = "The new value is the same as the previous one"


class Exchange(Market):
    # -- queries -------------------------------------------------------------------------------------------------
    def trade_of(self, account_id: str, trade_id: str) -> Trade:
        trade = self.trades.get(trade_id)
        if trade is None or trade.account_id != account_id:
            raise ApiError("not_found", "Trade not found")
        return trade

    def trades_of(self, account_id: str, state: TradeState) -> list[Trade]:
        account = self.account(account_id)
        return [self.trades[i] for i in account.trade_ids if self.trades[i].state == state]

    def trade_json(self, trade: Trade) -> dict[str, object]:
        return trade.as_json(self.unrealised(trade) if trade.state == "running" else None)

    # -- new trade -----------------------------------------------------------------------------------------------
    def open_trade(self, account_id: str, order: OrderRequest) -> Trade:
        """Validate (§9.7), debit margin + Tier-1 reserves, fill a market order at the bucket quote."""
        account = self.account(account_id)
        live = [self.trades[i] for i in account.trade_ids if self.trades[i].active]
        if len(live) >= self.config.max_trades:
            raise bad_request(f"Maximum of {self.config.max_trades} open and running trades reached")
        quantity, margin, entry = self._size(order)
        if quantity > self.config.max_quantity:
            raise bad_request(f"quantity must be <= {self.config.max_quantity}")
        if sum(t.quantity for t in live) + quantity > self.config.max_account_quantity:
            raise bad_request(f"Open quantity per account must be <= {self.config.max_account_quantity}")
        if order.quantity is not None:
            liquidation = initial_liquidation_price(order.side, quantity, entry, order.leverage)
        else:
            liquidation = liquidation_price(order.side, quantity, entry, margin)
        trade = Trade(
            id=self.new_id(),
            account_id=account_id,
            type=order.type,
            side=order.side,
            quantity=quantity,
            margin=margin,
            entry_margin=margin,
            leverage=order.leverage,
            price=entry,
            entry_price=entry,
            liquidation=liquidation,
            maintenance_margin=sum(fee_reserves(quantity, entry, liquidation)),
            created_at=self.clock(),
            client_id=order.client_id,
        )
        if order.stoploss is not None:
            if order.stoploss_mode == "trailing":
                trade.stoploss_trailing = order.stoploss
                trade.stoploss = self.trailing_stop(trade, entry)
            else:
                self.check_stoploss(trade, order.stoploss, entry)
                trade.stoploss = order.stoploss
        if order.takeprofit is not None:
            self.check_takeprofit(trade, order.takeprofit, entry)
            trade.takeprofit = order.takeprofit
        cost = margin + trade.maintenance_margin
        if cost > account.balance:
            raise ApiError("insufficient_funds", f"Insufficient funds: {cost} sats needed, {account.balance} available")
        account.balance -= cost
        self.trades[trade.id] = trade
        self.active[trade.id] = None
        account.trade_ids.append(trade.id)
        self.counters["trades"] += 1
        if order.type == "market":
            self.fill(trade, entry, trade.created_at)
        else:
            self.emit_trade(trade, "open")
        return trade

    def _size(self, order: OrderRequest) -> tuple[int, int, Decimal]:
        """(quantity, margin, entry price). With a margin, the bucket is chosen from the quantity it buys."""
        if order.quantity is not None:
            entry = order.price if order.price is not None else self.entry_quote(order.side, order.quantity)
            return order.quantity, margin_from_quantity(order.quantity, entry, order.leverage), entry
        assert order.margin is not None
        entry = order.price if order.price is not None else self.entry_quote(order.side, 1)
        quantity = quantity_from_margin(order.margin, entry, order.leverage)
        if order.price is None:
            entry = self.entry_quote(order.side, max(quantity, 1))
            quantity = quantity_from_margin(order.margin, entry, order.leverage)
        if quantity < 1:
            raise bad_request("margin is too small for a quantity of 1 USD at this leverage")
        return quantity, order.margin, entry

    # -- SL / TP rules -------------------------------------------------------------------------------------------
    def check_stoploss(self, trade: Trade, value: Decimal, ref: Decimal | None = None) -> None:
        """long: liquidation ≤ SL < bid/entry (and < TP); short: ask/entry < SL ≤ liquidation (and > TP)."""
        if ref is None:
            ref = trade.price if trade.state == "open" else self.mark(trade)
        if trade.side == "buy":
            if not trade.liquidation <= value < ref:
                raise bad_request(f"stoploss must be >= liquidation ({trade.liquidation}) and < {ref}")
            if trade.takeprofit > 0 and value >= trade.takeprofit:
                raise bad_request("stoploss must be below the takeprofit")
        else:
            if not ref < value <= trade.liquidation:
                raise bad_request(f"stoploss must be > {ref} and <= liquidation ({trade.liquidation})")
            if trade.takeprofit > 0 and value <= trade.takeprofit:
                raise bad_request("stoploss must be above the takeprofit")

    def check_takeprofit(self, trade: Trade, value: Decimal, ref: Decimal | None = None) -> None:
        """long: TP > ask/entry (and > SL); short: TP < bid/entry (and < SL)."""
        if ref is None:
            ref = trade.price if trade.state == "open" else self.entry_quote(trade.side, trade.quantity)
        if trade.side == "buy":
            if not value > ref:
                raise bad_request(f"takeprofit must be > {ref}")
            if trade.stoploss > 0 and value <= trade.stoploss:
                raise bad_request("takeprofit must be above the stoploss")
        else:
            if not value < ref:
                raise bad_request(f"takeprofit must be < {ref}")
            if trade.stoploss > 0 and value >= trade.stoploss:
                raise bad_request("takeprofit must be below the stoploss")

    def _live(self, account_id: str, trade_id: str) -> Trade:
        trade = self.trade_of(account_id, trade_id)
        if not trade.active:
            raise bad_request(f"Trade is {trade.state}")
        return trade

    def set_stoploss(self, account_id: str, trade_id: str, value: Decimal, mode: str = "fixed") -> Trade:
        trade = self._live(account_id, trade_id)
        if mode == "trailing":
            if value == trade.stoploss_trailing:
                raise bad_request(SAME_AS_PREVIOUS)
            trade.stoploss_trailing = value
            ref = trade.price if trade.state == "open" else self.exit_reference(trade)
            trade.stoploss = self.trailing_stop(trade, ref)
            return trade
        if value == trade.stoploss and trade.stoploss_trailing == 0:
            raise bad_request(SAME_AS_PREVIOUS)
        if value != 0:
            self.check_stoploss(trade, value)
        trade.stoploss = value
        trade.stoploss_trailing = Decimal(0)
        return trade

    def set_takeprofit(self, account_id: str, trade_id: str, value: Decimal) -> Trade:
        trade = self._live(account_id, trade_id)
        if value == trade.takeprofit:
            raise bad_request(SAME_AS_PREVIOUS)
        if value != 0:
            self.check_takeprofit(trade, value)
        trade.takeprofit = value
        return trade

    def remove_stoploss(self, account_id: str, trade_id: str) -> Trade:
        trade = self._live(account_id, trade_id)
        if trade.stoploss == 0 and trade.stoploss_trailing == 0:
            raise bad_request("The trade has no stoploss")
        trade.stoploss = Decimal(0)
        trade.stoploss_trailing = Decimal(0)
        return trade

    def remove_takeprofit(self, account_id: str, trade_id: str) -> Trade:
        trade = self._live(account_id, trade_id)
        if trade.takeprofit == 0:
            raise bad_request("The trade has no takeprofit")
        trade.takeprofit = Decimal(0)
        return trade

    # -- close / cancel ------------------------------------------------------------------------------------------
    def close_trade(self, account_id: str, trade_id: str) -> Trade:
        """Close a running trade at market: longs sell at the bucket bid, shorts buy at the ask."""
        trade = self.trade_of(account_id, trade_id)
        if trade.state != "running":
            raise bad_request(f"Only a running trade can be closed; this one is {trade.state}")
        self.close(trade, self.mark(trade), self.clock())
        return trade

    def cancel_trade(self, account_id: str, trade_id: str) -> Trade:
        trade = self.trade_of(account_id, trade_id)
        if trade.state != "open":
            raise bad_request(f"Only an open trade can be canceled; this one is {trade.state}")
        self._cancel(trade)
        return trade

    def cancel_all(self, account_id: str) -> list[Trade]:
        trades = self.trades_of(account_id, "open")
        for trade in trades:
            self._cancel(trade)
        return trades

    def _cancel(self, trade: Trade) -> None:
        account = self.accounts[trade.account_id]
        account.balance += trade.margin + trade.maintenance_margin
        trade.state = "canceled"
        trade.closed_at = self.clock()
        self.active.pop(trade.id, None)
        self.counters["cancels"] += 1
        self.emit_trade(trade, "canceled")

    # -- add margin / cash-in ------------------------------------------------------------------------------------
    def add_margin(self, account_id: str, trade_id: str, amount: int) -> Trade:
        trade = self.trade_of(account_id, trade_id)
        if trade.state != "running":
            raise bad_request(f"Margin can only be added to a running trade; this one is {trade.state}")
        account = self.accounts[account_id]
        if amount > account.balance:
            raise ApiError(
                "insufficient_funds", f"Insufficient funds: {amount} sats needed, {account.balance} available"
            )
        new_margin = trade.margin + amount
        leverage = leverage_of(trade.quantity, new_margin, trade.price)
        if leverage < 1:
            raise bad_request("Leverage would fall below 1")
        account.balance -= amount
        self._remargin(trade, new_margin, trade.price, leverage)
        return trade

    def cash_in(self, account_id: str, trade_id: str, amount: int) -> Trade:
        """Take ``amount`` out of a running trade: positive PnL first (moves the entry price), then margin (§9.6)."""
        trade = self.trade_of(account_id, trade_id)
        if trade.state != "running":
            raise bad_request(f"Only a running trade can be cashed in; this one is {trade.state}")
        mark = self.mark(trade)
        pl_now = pnl(trade.side, trade.quantity, trade.price, mark)
        entry = trade.price
        if pl_now > 0 and amount < pl_now:
            rounding = ROUND_CEILING if trade.side == "buy" else ROUND_FLOOR
            entry = round_to_tick(entry_price_after_cash_in(trade.side, trade.quantity, entry, amount), rounding)
            from_pl, from_margin = amount, 0
        elif pl_now > 0:
            entry, from_pl, from_margin = mark, pl_now, amount - pl_now
        else:
            from_pl, from_margin = 0, amount
        new_margin = trade.margin - from_margin
        if new_margin <= 0:
            raise bad_request("Cash-in would leave no margin")
        leverage = leverage_of(trade.quantity, new_margin, entry)
        if leverage > 100:
            raise bad_request("Leverage would exceed 100")
        account = self.accounts[account_id]
        account.balance += amount
        account.realised_pl += from_pl
        trade.sum_cash_in_pl += from_pl
        trade.sum_cash_in_margin += from_margin
        self._remargin(trade, new_margin, entry, leverage)
        return trade

    def _remargin(self, trade: Trade, margin: int, entry: Decimal, leverage: Decimal) -> None:
        trade.margin = margin
        trade.price = entry
        trade.leverage = quantize_leverage(leverage)
        trade.liquidation = liquidation_price(trade.side, trade.quantity, entry, margin)
        self.drop_stoploss_past_liquidation(trade)

    # -- ledgers -------------------------------------------------------------------------------------------------
    def conservation_gap(self, account_id: str) -> int:
        """0 when the account's money is conserved (see ``Account``)."""
        account = self.account(account_id)
        total = account.balance + self.locked(account) + account.fees_paid + account.funding_paid
        return total - account.realised_pl - account.absorbed - account.deposited

    def funding_fees_of(self, account_id: str, trade_id: str | None = None) -> list[dict[str, object]]:
        fees: Iterable[dict[str, object]] = self.funding_fees.get(account_id, [])
        return [f for f in fees if trade_id is None or f["tradeId"] == trade_id]
