"""Move a running trade's stop-loss or take-profit to a price (already checked against LN Markets' rules), or remove
it (price 0: the exchange's DELETE; a trade without one shows 0, so the look-up needs no other rule)."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from django.utils.translation import gettext_noop
from pydantic import Field

from automations.actions.base import ActionParams, Found, OrderAction, running_trade

if TYPE_CHECKING:
    from automations.models import OrderIntent
    from lnmarkets.client import RestClient
    from lnmarkets.schemas import Trade


class PriceParams(ActionParams):
    price: Decimal = Field(ge=0)  # 0 removes it


class _MoveExit(OrderAction[PriceParams]):
    params_type = PriceParams

    def _current(self, trade: Trade) -> Decimal:
        raise NotImplementedError

    def reconcile(self, client: RestClient, intent: OrderIntent, params: PriceParams) -> Found:
        running = running_trade(client, intent.trade_id)
        if running is None:
            return Found("done", note="trade no longer running; nothing left to change")
        return Found("done", running) if self._current(running) == params.price else Found("absent", running)


class SetStopLoss(_MoveExit):
    key: ClassVar[str] = "set_stoploss"
    label: ClassVar[str] = gettext_noop("Set stop-loss")

    def _current(self, trade: Trade) -> Decimal:
        return trade.stoploss

    def send(self, client: RestClient, intent: OrderIntent, params: PriceParams) -> Trade:
        if params.price == 0:
            return client.isolated_trade_stoploss_remove(intent.trade_id, priority="high")
        return client.isolated_trade_stoploss_set(intent.trade_id, params.price, priority="high")


class SetTakeProfit(_MoveExit):
    key: ClassVar[str] = "set_takeprofit"
    label: ClassVar[str] = gettext_noop("Set take-profit")

    def _current(self, trade: Trade) -> Decimal:
        return trade.takeprofit

    def send(self, client: RestClient, intent: OrderIntent, params: PriceParams) -> Trade:
        if params.price == 0:
            return client.isolated_trade_takeprofit_remove(intent.trade_id, priority="high")
        return client.isolated_trade_takeprofit_set(intent.trade_id, params.price, priority="high")


STOPLOSS = SetStopLoss()
TAKEPROFIT = SetTakeProfit()
