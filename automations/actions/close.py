"""Close a running trade at market; a reduce is a close that carries the reopen (LN Markets has no partial close)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from django.utils.translation import gettext_noop

from automations.actions.base import ActionParams, Found, OrderAction, TradeBook, running_trade
from automations.actions.open import OpenParams
from automations.models import OrderIntent
from lnmarkets.exceptions import LNMarketsError
from lnmarkets.schemas import Trade

if TYPE_CHECKING:
    from lnmarkets.client import RestClient

logger = logging.getLogger(__name__)


class CloseParams(ActionParams):
    """``reopen``: the open that completes a reduce, sent once the close took effect."""

    reopen: OpenParams | None = None


class CloseTrade(OrderAction[CloseParams]):
    key: ClassVar[str] = "close"
    label: ClassVar[str] = gettext_noop("Close trade")
    params_type = CloseParams
    fence_at_once: ClassVar[bool] = True

    def send(self, client: RestClient, intent: OrderIntent, params: CloseParams) -> Trade:
        return client.isolated_trade_close(intent.trade_id, priority="high")

    def reconcile(self, client: RestClient, intent: OrderIntent, params: CloseParams) -> Found:
        running = running_trade(client, intent.trade_id)
        return Found("absent", running) if running is not None else Found("done", note="trade no longer running")

    def bookkeeping(self, book: TradeBook, intent: OrderIntent, params: CloseParams, found: Found) -> None:
        book.mark_closed(intent.account, intent.trade_id, closed=found.trade, by_axisor=found.ours)

    def after_settle(self, book: TradeBook, client: RestClient, intent: OrderIntent, found: Found) -> None:
        if found.trade is not None and found.trade.exit_price is not None:
            return
        try:
            book.fill_exit(client, intent.account, intent.trade_id)
        except LNMarketsError as exc:
            logger.warning("intent %s: exit details of trade %s not read (%s)", intent.pk, intent.trade_id, exc.code)

    def followups(self, intent: OrderIntent, params: CloseParams, trade: Trade | None) -> list[OrderIntent]:
        if params.reopen is None:
            return []
        base = {"account_id": intent.account_id, "automation_id": intent.automation_id, "parent": intent}
        return [OrderIntent(action=OrderIntent.Action.OPEN, params=params.reopen.to_json(), protective=False, **base)]


ACTION = CloseTrade()
