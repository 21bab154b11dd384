"""The exchange's own trade events (private stream, docs/exchange-events.md) applied to the tracked trades at once.

A terminal event (``takeprofit``, ``stoploss``, ``liquidation``, ``closed``) closes the tracked trade with the exit
price, PnL and reason from the event, writes one audit entry that says it in words, and announces the change to the
owner's dashboard, all after one commit. A ``filled`` or ``funding`` event updates the trade's figures; ``canceled``
ends an open order.

Exactly one closed record and one audit entry per close, whichever of the event and reconciliation comes first: the
close is a compare-and-set on the row's state under its row lock (``select_for_update``; SQLite's immediate
transactions serialise writers): only the writer that moves the row out of ``running``/``open`` writes the audit
entry, and reconciliation (``trades.account_reconcile``) re-checks the same state under the same lock before it
writes its own. A ``closed`` event of a trade one of Axisor's close intents may have closed (``closed_by_axisor``)
is Axisor's close: the intent's own audit entry tells it.

The audit entry is the one reconciliation writes (``trades.trade_closed_said``): its ``inputs`` carry typed fields
for fan-out (notifications): ``trade_id``, ``closed_reason`` (``takeprofit``, ``stoploss``, ``liquidation``,
``outside``), ``exit_price`` (string, exact), ``pnl`` (sats; a liquidation loses the margin: the event carries no
PnL), plus ``source``: ``"stream"`` (reconciliation's entries have none).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Literal

from django.db import transaction
from django.utils import timezone

from automations.models import AuditEntry, TrackedTrade
from automations.publish import publish_account_changed_on_commit, publish_automation_log_on_commit
from automations.services.trades import closed_by_axisor, trade_closed_said
from lnmarkets.schemas import StreamTradeEvent

logger = logging.getLogger(__name__)

Applied = Literal["closed", "closed_by_axisor", "updated", "already", "unknown", "ignored"]

CLOSED_REASONS: dict[str, str] = {
    "takeprofit": "takeprofit",
    "stoploss": "stoploss",
    "liquidation": "liquidation",
    "closed": "outside",
}
_LIVE = (TrackedTrade.State.RUNNING, TrackedTrade.State.OPEN)
_CLOSE_FIELDS = ("state", "closed_at", "closed_reason", "closed_by_axisor", "exit_price", "pl", "last_seen_at")


def _when(stamp: datetime | None) -> datetime:
    return stamp if stamp is not None else timezone.now()


def trade_event_apply(account_id: int, event: StreamTradeEvent) -> Applied:
    """Apply one private trade event of ``account_id``; what happened (for counters and tests)."""
    if event.event in CLOSED_REASONS:
        return _close(account_id, event)
    if event.event == "canceled":
        return _cancel(account_id, event)
    if event.event in ("filled", "funding"):
        return _update(account_id, event)
    return "ignored"  # "open": a limit order accepted; reconciliation records orders


def _close(account_id: int, event: StreamTradeEvent) -> Applied:
    trade = event.trade
    with transaction.atomic():
        row = (
            TrackedTrade.objects.select_for_update(of=("self",))
            .select_related("account")
            .filter(account_id=account_id, trade_id=trade.id)
            .first()
        )
        if row is None:
            return "unknown"  # never tracked (opened and closed between reconciliations): nothing to close
        if row.state not in _LIVE:
            return "already"  # reconciliation or an earlier event told it
        ours = event.event == "closed" and closed_by_axisor(account_id, trade.id)
        row.state = TrackedTrade.State.CLOSED
        row.closed_at = _when(trade.closed_at)
        row.closed_reason = "closed" if event.event == "closed" else event.event
        row.closed_by_axisor = ours
        if trade.exit_price is not None:
            row.exit_price = trade.exit_price
        if trade.pl is not None:
            row.pl = trade.pl
        elif event.event == "liquidation":
            row.pl = -row.margin  # an isolated trade's liquidation loses its margin; the event carries no PnL
        row.last_seen_at = timezone.now()
        row.save(update_fields=[*_CLOSE_FIELDS])
        owner_id = row.account.owner_id
        publish_account_changed_on_commit(account_id, owner_id)
        if ours:
            return "closed_by_axisor"  # the close intent's own audit entry tells it
        message, inputs = trade_closed_said(trade.id, CLOSED_REASONS[event.event], row.exit_price, row.pl)
        entry = AuditEntry.objects.create(
            account=row.account,  # in hand: its readers (notifications) need no query for it
            event=AuditEntry.Event.RECONCILE,
            outcome=AuditEntry.Outcome.INFO,
            message=message,
            inputs={**inputs, "source": "stream"},
        )
        publish_automation_log_on_commit(entry.pk, account_id, owner_id)
    return "closed"


def _cancel(account_id: int, event: StreamTradeEvent) -> Applied:
    updated = TrackedTrade.objects.filter(
        account_id=account_id, trade_id=event.trade.id, state=TrackedTrade.State.OPEN
    ).update(
        state=TrackedTrade.State.CANCELED,
        closed_at=_when(event.trade.closed_at),
        closed_reason="canceled",
        last_seen_at=timezone.now(),
    )
    if updated:
        publish_account_changed_on_commit(account_id)
        return "updated"
    return "already"


def _update(account_id: int, event: StreamTradeEvent) -> Applied:
    trade = event.trade
    fields: dict[str, object] = {"last_seen_at": timezone.now()}
    if event.event == "filled":
        fields.update(state=TrackedTrade.State.RUNNING, entry_price=trade.price)
        if trade.margin is not None:
            fields["margin"] = trade.margin
        if trade.quantity is not None:
            fields["quantity"] = trade.quantity
    else:  # funding
        fields.update(margin=trade.margin, liquidation=trade.liquidation_price)
    updated = TrackedTrade.objects.filter(account_id=account_id, trade_id=trade.id, state__in=_LIVE).update(**fields)
    if not updated:
        return "unknown"  # a fill of a trade not yet recorded: the order's own bookkeeping or reconciliation will
    publish_account_changed_on_commit(account_id)
    return "updated"


def event_age_ms(event: StreamTradeEvent, now: datetime | None = None) -> float | None:
    """Milliseconds from the exchange's timestamp of a close to ``now`` (for the bench and logs)."""
    stamp = event.trade.closed_at
    if stamp is None:
        return None
    return ((now or datetime.now(UTC)) - stamp).total_seconds() * 1000
