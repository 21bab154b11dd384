"""Open a market trade (Auto Entry, the reopen of a reduce, a manual entry), with SL/TP set from the fill."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from django.db.models import F
from django.utils.translation import gettext_noop
from pydantic import Field, model_validator

from automations.actions.base import ActionParams, Found, OrderAction, TradeBook
from automations.engine import Memory, stoploss_from_percent, takeprofit_from_percent
from automations.models import Automation, OrderIntent
from lnmarkets.maths import Side
from lnmarkets.schemas import Trade

if TYPE_CHECKING:
    from lnmarkets.client import RestClient


class OpenParams(ActionParams):
    """``quantity`` USD xor ``margin`` sats; absolute SL/TP sent with the order, ``*_percent`` set from the fill."""

    side: Side
    leverage: Decimal = Field(gt=0, le=100)
    quantity: int | None = Field(default=None, gt=0)
    margin: int | None = Field(default=None, gt=0)
    stoploss: Decimal | None = Field(default=None, gt=0)
    takeprofit: Decimal | None = Field(default=None, gt=0)
    stoploss_percent: Decimal | None = Field(default=None, gt=0)
    takeprofit_percent: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_size(self) -> OpenParams:
        if (self.quantity is None) == (self.margin is None):
            raise ValueError("exactly one of quantity or margin is required")
        return self


class OpenTrade(OrderAction[OpenParams]):
    key: ClassVar[str] = "open"
    label: ClassVar[str] = gettext_noop("Open trade")
    params_type = OpenParams
    refusal_may_be_done: ClassVar[bool] = False
    needs_trade: ClassVar[bool] = False

    def send(self, client: RestClient, intent: OrderIntent, params: OpenParams) -> Trade:
        return client.isolated_trade_create(
            type="market",
            side=params.side,
            leverage=params.leverage,
            quantity=params.quantity,
            margin=params.margin,
            stoploss=params.stoploss,
            takeprofit=params.takeprofit,
            client_id=intent.client_id,
            priority="high" if intent.protective else "normal",
        )

    def reconcile(self, client: RestClient, intent: OrderIntent, params: OpenParams) -> Found:
        trade = client.find_trade_by_client_id(intent.client_id)
        return Found("done", trade) if trade is not None else Found("absent")

    def bookkeeping(self, book: TradeBook, intent: OrderIntent, params: OpenParams, found: Found) -> None:
        if found.trade is not None:
            book.upsert(intent.account, found.trade, managed=True)
            _carry_memory(intent, found.trade)

    def followups(self, intent: OrderIntent, params: OpenParams, trade: Trade | None) -> list[OrderIntent]:
        """SL/TP given as a percentage: set from the actual fill once it is known."""
        if trade is None:
            return []
        fill = trade.entry_price or trade.price
        base = {"account_id": intent.account_id, "automation_id": intent.automation_id, "parent": intent}
        created: list[OrderIntent] = []
        for percent, action, fn in (
            (params.stoploss_percent, OrderIntent.Action.SET_STOPLOSS, stoploss_from_percent),
            (params.takeprofit_percent, OrderIntent.Action.SET_TAKEPROFIT, takeprofit_from_percent),
        ):
            if percent is not None:
                price = fn(trade.side, fill, percent)
                created.append(
                    OrderIntent(action=action, trade_id=trade.id, params={"price": str(price)}, protective=True, **base)
                )
        return created


def _carry_memory(intent: OrderIntent, new_trade: Trade) -> None:
    """After a reduce's reopen, every automation of the account keeps its memory of the old trade on the new one."""
    parent = intent.parent
    if parent is None or not parent.trade_id:
        return
    for automation in Automation.objects.filter(account_id=intent.account_id):
        memory = Memory.from_json(automation.memory)
        moved = memory.carry_over(parent.trade_id, new_trade.id)
        if moved is not memory:
            Automation.objects.filter(pk=automation.pk).update(memory=moved.to_json(), version=F("version") + 1)


ACTION = OpenTrade()
