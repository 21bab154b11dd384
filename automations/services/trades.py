"""Trades Axisor tracks, and reconciliation with the exchange (start-up, periodic, after every order).

A trade found on the exchange that Axisor did not open (no intent with its ``clientId``) is recorded as EXTERNAL and
never managed unless the account opted in. A tracked running trade that disappeared from the exchange is marked
closed with its exit price, PnL and reason (closed, stop-loss, take-profit, liquidation) from the closed list.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.audit_text import say
from automations.models import AuditEntry, OrderIntent, TrackedTrade
from automations.publish import publish_account_changed_on_commit, publish_automation_log_on_commit
from automations.services.compiled_update import compiled_update_rows
from lnmarkets.client import RestClient
from lnmarkets.schemas import Trade

logger = logging.getLogger(__name__)


def _state(trade: Trade) -> str:
    if trade.running:
        return TrackedTrade.State.RUNNING
    if trade.open:
        return TrackedTrade.State.OPEN
    if trade.canceled:
        return TrackedTrade.State.CANCELED
    return TrackedTrade.State.CLOSED


def _closed_reason(trade: Trade) -> str:
    """Best reading of why a trade closed: the exit matched its SL or TP, liquidation, or a plain close."""
    exit_price = trade.exit_price
    if exit_price is None:
        return "closed"
    if trade.stoploss and exit_price == trade.stoploss:
        return "stoploss"
    if trade.takeprofit and exit_price == trade.takeprofit:
        return "takeprofit"
    if trade.pl is not None and trade.pl <= -trade.margin:
        return "liquidation"
    return "closed"


_FINAL = (TrackedTrade.State.CLOSED, TrackedTrade.State.CANCELED)


def _ours(by_axisor: bool, closed_reason: str) -> bool:
    """Whether a trade's close was Axisor's: asked by us, and not the exchange's own trigger (SL, TP, liquidation)."""
    return by_axisor and closed_reason in ("", "closed")


def _tracked_fields(trade: Trade) -> dict[str, object]:
    """The tracked copy's columns from the exchange's ``trade``."""
    now = timezone.now()
    fields = {
        "client_id": trade.client_id or "",
        "state": _state(trade),
        "side": trade.side,
        "quantity": int(trade.quantity),
        "entry_price": trade.entry_price or trade.price,
        "margin": int(trade.margin),
        "leverage": trade.leverage,
        "liquidation": trade.liquidation,
        "stoploss": trade.stoploss,
        "takeprofit": trade.takeprofit,
        "maintenance_margin": int(trade.maintenance_margin),
        "opening_fee": int(trade.opening_fee),
        "pl": int(trade.pl),
        "exit_price": trade.exit_price,
        "last_seen_at": now,
    }
    if trade.closed or trade.canceled:
        fields["closed_at"] = trade.closed_at or now
        fields["closed_reason"] = _closed_reason(trade) if trade.closed else "canceled"
    return fields


def tracked_trade_upsert(
    account: ExchangeAccount, trade: Trade, *, managed: bool | None = None, by_axisor: bool | None = None
) -> TrackedTrade:
    """Create or refresh the tracked copy of ``trade``. ``managed=None`` keeps the stored flag (or, for a trade
    seen for the first time, manages it only if one of the account's intents carries its ``clientId``).
    ``by_axisor`` (a close): whether Axisor asked for it, stored as ``closed_by_axisor`` in the same write; None
    keeps the stored flag."""
    fields = _tracked_fields(trade)
    # No savepoint inside the settling transaction: an error here ends that transaction anyway.
    with transaction.atomic(savepoint=False):
        row = TrackedTrade.objects.select_for_update().filter(account=account, trade_id=trade.id).first()
        if row is None:
            ours = (
                bool(trade.client_id)
                and OrderIntent.objects.filter(account=account, client_id=trade.client_id).exists()
            )
            origin = TrackedTrade.Origin.AXISOR if (ours or managed) else TrackedTrade.Origin.EXTERNAL
            if by_axisor is not None:
                fields["closed_by_axisor"] = _ours(by_axisor, str(fields.get("closed_reason", "")))
            row = TrackedTrade.objects.create(
                account=account, trade_id=trade.id, origin=origin, managed=bool(managed or ours), **fields
            )
            publish_account_changed_on_commit(account.pk, account.owner_id)
            if origin == TrackedTrade.Origin.EXTERNAL:
                said = say("trade_opened_outside", trade=trade.id, side=trade.side, quantity=int(trade.quantity))
                external = AuditEntry.objects.create(
                    account=account,
                    event=AuditEntry.Event.RECONCILE,
                    outcome=AuditEntry.Outcome.INFO,
                    message=said.english,
                    inputs=said.inputs({"trade_id": trade.id}),
                )
                publish_automation_log_on_commit(external.pk, account.pk, account.owner_id)
            return row
        if row.state in _FINAL and fields["state"] not in _FINAL:
            # A closed or canceled trade never runs again: this is an older view of it (a list taken before the
            # close was recorded). Keep the newer truth.
            if by_axisor is not None and row.closed_by_axisor != _ours(by_axisor, row.closed_reason):
                row.closed_by_axisor = _ours(by_axisor, row.closed_reason)
                TrackedTrade.objects.filter(pk=row.pk).update(closed_by_axisor=row.closed_by_axisor)
            return row
        if row.state != fields["state"]:
            publish_account_changed_on_commit(account.pk, account.owner_id)
        for name, value in fields.items():
            setattr(row, name, value)
        if managed is not None:
            row.managed = managed
        if by_axisor is not None:
            row.closed_by_axisor = _ours(by_axisor, row.closed_reason)
        row.save()
        return row


def _mark_closed_unseen(row: TrackedTrade) -> None:
    """Close a tracked trade whose exit the exchange's closed list no longer shows (no exit price or PnL)."""
    row.state = TrackedTrade.State.CLOSED
    row.closed_at = timezone.now()
    row.closed_reason = row.closed_reason or "closed"
    row.save(update_fields=["state", "closed_at", "closed_reason"])


_Closed = tuple[ExchangeAccount, Trade, bool, dict[str, object]]
_closing_together: ContextVar[list[_Closed] | None] = ContextVar("axisor_closing_together", default=None)


@contextmanager
def tracked_trades_closed_together() -> Iterator[None]:
    """Inside (a transaction settling several closes): the tracked copies ``tracked_trade_mark_closed`` writes from a
    closed trade in hand are written together when the block ends without an error, in one statement on PostgreSQL
    (``compiled_update_rows``); nothing else inside the block may read them before that."""
    closing: list[_Closed] = []
    token = _closing_together.set(closing)
    try:
        yield
    finally:
        _closing_together.reset(token)
    _write_closed(closing)


def _write_closed(closing: list[_Closed]) -> None:
    rows = [{"account_id": account.pk, "trade_id": closed.id, **fields} for account, closed, _, fields in closing]
    matched = compiled_update_rows(TrackedTrade, key=("account_id", "trade_id"), rows=rows)
    told: set[int] = set()
    for account, closed, by_axisor, _ in closing:
        if (account.pk, closed.id) not in matched:
            tracked_trade_upsert(account, closed, by_axisor=by_axisor)  # not tracked yet: created
        elif account.pk not in told:
            told.add(account.pk)
            publish_account_changed_on_commit(account.pk, account.owner_id)


def tracked_trade_mark_closed(
    account: ExchangeAccount, trade_id: str, *, closed: Trade | None, by_axisor: bool
) -> None:
    """Record that ``trade_id`` is no longer running, from the exchange's closed trade when it is in hand (no I/O).
    ``by_axisor`` says whether it was Axisor's close (a stop-loss, take-profit or liquidation stays the exchange's);
    the later, better-informed call wins (a close of ours refused as "already closed" unmarks it)."""
    if closed is not None and (closed.closed or closed.canceled):
        # A closed trade is final (no older view to keep): its tracked copy, with whose close it was, is written in
        # one statement (with the others' inside ``tracked_trades_closed_together``); a trade not tracked yet is
        # created by the upsert.
        fields = _tracked_fields(closed)
        fields["closed_by_axisor"] = _ours(by_axisor, str(fields["closed_reason"]))
        closing = _closing_together.get()
        if closing is not None:
            closing.append((account, closed, by_axisor, fields))
        else:
            _write_closed([(account, closed, by_axisor, fields)])
        return
    row = TrackedTrade.objects.filter(account=account, trade_id=trade_id).first()
    if row is None:
        return
    if row.state in (TrackedTrade.State.RUNNING, TrackedTrade.State.OPEN):
        _mark_closed_unseen(row)
        publish_account_changed_on_commit(account.pk, account.owner_id)
    ours = _ours(by_axisor, row.closed_reason)
    if row.closed_by_axisor != ours:
        TrackedTrade.objects.filter(pk=row.pk).update(closed_by_axisor=ours)


def tracked_trade_fill_exit(client: RestClient, account: ExchangeAccount, trade_id: str) -> None:
    """Read a closed trade's exit price, PnL and reason from the exchange's closed list (bookkeeping after the
    intent that closed it is already terminal). Raises the gateway's read errors."""
    page = client.isolated_trades_closed_list(limit=50)
    closed = next((t for t in page.data if t.id == trade_id), None)
    if closed is not None:
        row = TrackedTrade.objects.filter(account=account, trade_id=trade_id).first()
        by_axisor = row is not None and row.closed_by_axisor
        row = tracked_trade_upsert(account, closed)
        if by_axisor and row.closed_reason != "closed":
            # The exchange's own trigger (SL, TP, liquidation) closed it before our close arrived.
            TrackedTrade.objects.filter(pk=row.pk).update(closed_by_axisor=False)


def closed_by_axisor(account_id: int, trade_id: str, *, besides: int | None = None) -> bool:
    """True when one of Axisor's close intents for the trade (other than ``besides``) may have reached the exchange
    (claimed at least once and not refused): its disappearance is then Axisor's doing, never "outside Axisor"."""
    intents = OrderIntent.objects.filter(
        account_id=account_id, action=OrderIntent.Action.CLOSE, trade_id=trade_id, attempts__gte=1
    ).exclude(state=OrderIntent.State.REJECTED)
    if besides is not None:
        intents = intents.exclude(pk=besides)
    return intents.exists()


# The typed reason of a trade that closed without Axisor (``inputs["closed_reason"]``, read by notifications).
_CLOSED_BY = {"stoploss": "stoploss", "takeprofit": "takeprofit", "liquidation": "liquidation"}


def trade_closed_said(trade_id: str, closed_reason: str, exit_price: object, pnl: int) -> tuple[str, dict[str, object]]:
    """The message and ``inputs`` of the audit entry of a trade that closed without Axisor: ``closed_reason`` is
    ``takeprofit``, ``stoploss``, ``liquidation`` or ``outside``."""
    exit_text = "—" if exit_price in (None, "") else str(exit_price)
    said = say(f"trade_closed_{closed_reason}", trade=trade_id, exit=exit_text, pnl=int(pnl))
    typed = {
        "trade_id": trade_id,
        "closed_reason": closed_reason,
        "exit_price": None if exit_price in (None, "") else str(exit_price),
        "pnl": int(pnl),
    }
    return said.english, said.inputs(typed)


def account_reconcile(*, account_id: int) -> dict[str, int]:
    """Bring the tracked trades and the balance of one account in line with the exchange (GETs only).

    Returns counts: ``running``, ``new_external``, ``closed_outside``. Clears the account's entry halt on success.
    Raises the gateway's errors (the task retries temporary ones).
    """
    from automations.exchange import client_for_account

    account = ExchangeAccount.objects.get(pk=account_id)
    client = client_for_account(account.pk, account.network)
    balance = client.account_get(priority="low").balance
    listed_at = timezone.now()  # before the list: a row seen after this is newer than what the list can show
    running = client.isolated_trades_running_list(priority="low")
    running_ids = {t.id for t in running}
    counts = {"running": len(running), "new_external": 0, "closed_outside": 0}
    known = set(TrackedTrade.objects.filter(account=account).values_list("trade_id", flat=True))
    for trade in running:
        row = tracked_trade_upsert(account, trade)
        if trade.id not in known and row.origin == TrackedTrade.Origin.EXTERNAL:
            counts["new_external"] += 1
    # Gone: running when last seen, before the list was taken, and not in it. A trade an order of ours opened while
    # the list was on its way is not in it, yet not gone (the soak caught it called "closed outside Axisor").
    gone = TrackedTrade.objects.filter(
        account=account, state=TrackedTrade.State.RUNNING, last_seen_at__lt=listed_at
    ).exclude(trade_id__in=running_ids)
    if gone.exists():
        closed = {t.id: t for t in client.isolated_trades_closed_list(limit=100, priority="low").data}
        for row in gone:
            with transaction.atomic():
                # The state re-checked under the row's lock: an exchange event (services/exchange_events.py) that
                # closed it since the query above wrote this close's one audit entry.
                if not TrackedTrade.objects.select_for_update().filter(pk=row.pk, state=row.state).exists():
                    continue
                ours = closed_by_axisor(account.pk, row.trade_id)
                tracked_trade_mark_closed(account, row.trade_id, closed=closed.get(row.trade_id), by_axisor=ours)
                row.refresh_from_db()
                if row.closed_by_axisor:
                    continue  # the close intent's own audit entry tells it
                by_exchange = _CLOSED_BY.get(row.closed_reason)
                if by_exchange is None:
                    counts["closed_outside"] += 1
                message, inputs = trade_closed_said(row.trade_id, by_exchange or "outside", row.exit_price, row.pl)
                entry = AuditEntry.objects.create(
                    account=account,
                    event=AuditEntry.Event.RECONCILE,
                    outcome=AuditEntry.Outcome.INFO,
                    message=message,
                    inputs=inputs,
                )
                publish_automation_log_on_commit(entry.pk, account.pk, account.owner_id)
    now = timezone.now()
    publish_account_changed_on_commit(account.pk, account.owner_id)
    ExchangeAccount.objects.filter(pk=account.pk).update(
        balance=balance,
        balance_updated_at=now,
        reconciled_at=now,
        entries_halted=False,
        halt_reason="",
        consecutive_failures=0,
    )
    return counts


def intents_due(*, now: datetime) -> list[tuple[int, bool]]:
    """Unfinished intents whose lease has run out (their retry was lost, or no delivery ever ran): the intent
    sweep re-queues them: ``(id, protective)`` pairs. A delivery that is still working only costs a wasted
    look-up: nothing rests on this."""
    return list(
        OrderIntent.objects.filter(
            state__in=[
                OrderIntent.State.CREATED,
                OrderIntent.State.SUBMITTING,
                OrderIntent.State.UNKNOWN,
                OrderIntent.State.ACKED,
            ],
        )
        .filter(Q(next_check_at__lt=now) | Q(next_check_at__isnull=True, created_at__lt=now - timedelta(seconds=10)))
        .values_list("pk", "protective")
    )
