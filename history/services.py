"""Reconcile an account's closed and canceled trades from the exchange into ``ClosedTrade`` (GETs only).

The exchange's lists are the truth: every trade there is copied, whoever closed it. Who closed it comes from what
Axisor knows: the exchange's own trigger (take-profit, stop-loss, liquidation) as the tracked trade recorded it
(reconciliation, or the stream's close events) or as the exit shows it; else a close intent of Axisor's (an
automation's, or one made by hand in Axisor); else it was closed outside Axisor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.models import Automation, OrderIntent, TrackedTrade
from history.models import BalancePoint, ClosedTrade
from lnmarkets.client import RestClient
from lnmarkets.schemas import Page, Trade

logger = logging.getLogger(__name__)

PAGE_LIMIT = 100
MAX_PAGES = 50  # 5,000 trades per list and sync; the next sync goes on from the newest stored
OVERLAP = timedelta(minutes=5)  # re-read the last minutes: a close recorded late is still picked up
EXCHANGE_REASONS = frozenset({"takeprofit", "stoploss", "liquidation"})


@dataclass(frozen=True)
class SyncResult:
    new: int
    updated: int


def exit_reason(trade: Trade) -> str:
    """The exchange's own trigger read from the exit: ``takeprofit``, ``stoploss``, ``liquidation`` or ``""``."""
    if trade.exit_price is None:
        return ""
    if trade.takeprofit and trade.exit_price == trade.takeprofit:
        return "takeprofit"
    if trade.stoploss and trade.exit_price == trade.stoploss:
        return "stoploss"
    if trade.pl <= -trade.margin:
        return "liquidation"
    return ""


def attribution(account: ExchangeAccount, trade: Trade) -> tuple[str, Automation | None]:
    """``(closed_by, automation)`` of one closed or canceled trade."""
    if trade.canceled:
        return ClosedTrade.ClosedBy.CANCELED, None
    tracked = TrackedTrade.objects.filter(account=account, trade_id=trade.id).only("closed_reason").first()
    reason = tracked.closed_reason if tracked is not None else ""
    if reason not in EXCHANGE_REASONS:
        reason = exit_reason(trade)
    if reason:
        return reason, None
    close = (
        OrderIntent.objects.filter(account=account, action=OrderIntent.Action.CLOSE, trade_id=trade.id, attempts__gte=1)
        .exclude(state=OrderIntent.State.REJECTED)
        .select_related("automation")
        .order_by("created_at", "id")
        .first()
    )
    if close is None:
        return ClosedTrade.ClosedBy.OUTSIDE, None
    if close.automation is not None:
        return ClosedTrade.ClosedBy.AUTOMATION, close.automation
    return ClosedTrade.ClosedBy.MANUAL, None


def closed_trade_upsert(account: ExchangeAccount, trade: Trade) -> bool:
    """Store one closed or canceled trade; True when it was new. A stored attribution to an automation is kept
    when the automation was deleted since (its name stays)."""
    closed_by, automation = attribution(account, trade)
    fields: dict[str, object] = {
        "client_id": trade.client_id or "",
        "canceled": trade.canceled,
        "side": trade.side,
        "quantity": int(trade.quantity),
        "leverage": trade.leverage,
        "margin": int(trade.entry_margin if trade.entry_margin is not None else trade.margin),
        "entry_price": trade.entry_price if trade.filled_at is not None else None,
        "exit_price": trade.exit_price,
        "stoploss": trade.stoploss,
        "takeprofit": trade.takeprofit,
        "pl": int(trade.pl) if trade.closed else 0,
        "opening_fee": int(trade.opening_fee),
        "closing_fee": int(trade.closing_fee),
        "funding_fees": int(trade.sum_funding_fees),
        "opened_at": trade.filled_at or trade.created_at,
        "closed_at": trade.closed_at or timezone.now(),
        "closed_by": closed_by,
    }
    if automation is not None:
        fields["automation"] = automation
        fields["automation_name"] = automation.name
    with transaction.atomic():
        row = ClosedTrade.objects.select_for_update().filter(account=account, trade_id=trade.id).first()
        if row is None:
            ClosedTrade.objects.create(account=account, trade_id=trade.id, **fields)
            return True
        if row.closed_by == ClosedTrade.ClosedBy.AUTOMATION and closed_by != ClosedTrade.ClosedBy.AUTOMATION:
            fields.pop("closed_by")  # the automation was deleted since: keep its name on the row
        for name, value in fields.items():
            setattr(row, name, value)
        row.save()
        return False


def _pages(fetch: Callable[..., Page[Trade]], since: datetime | None) -> list[Trade]:
    trades: list[Trade] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = fetch(from_=since, limit=PAGE_LIMIT, cursor=cursor, priority="low")
        trades.extend(page.data)
        cursor = page.next_cursor
        if not cursor:
            break
    return trades


def history_sync(*, account_id: int, client: RestClient | None = None) -> SyncResult:
    """Copy the account's closed and canceled trades newer than the newest stored (less ``OVERLAP``) and record
    its balance. Raises the gateway's errors."""
    from automations.exchange import client_for_account

    account = ExchangeAccount.objects.get(pk=account_id)
    client = client or client_for_account(account.pk, account.network)
    newest = ClosedTrade.objects.filter(account=account).order_by("-closed_at").values_list("closed_at", flat=True)
    since = newest[0] - OVERLAP if newest else None
    trades = _pages(client.isolated_trades_closed_list, since) + _pages(client.isolated_trades_canceled_list, since)
    new = sum(1 for trade in trades if closed_trade_upsert(account, trade))
    balance_record(account, client)
    logger.info("history of account %s: %d new, %d seen again", account.pk, new, len(trades) - new)
    return SyncResult(new=new, updated=len(trades) - new)


def balance_record(account: ExchangeAccount, client: RestClient) -> BalancePoint:
    """One balance point: the free balance and the margin of the running trades, as the exchange has them now."""
    free = client.account_get(priority="low").balance
    in_margin = sum(int(t.margin) for t in client.isolated_trades_running_list(priority="low"))
    last = BalancePoint.objects.filter(account=account).order_by("-at").first()
    now = timezone.now()
    if last is not None and (last.free, last.in_margin) == (free, in_margin) and now - last.at < timedelta(hours=1):
        return last  # unchanged: one point an hour is enough to draw a flat line
    return BalancePoint.objects.create(account=account, at=now, free=free, in_margin=in_margin)
