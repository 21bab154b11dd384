"""Notification rows derived from what automations already writes: audit entries.

``automations`` never imports this app. A ``post_save`` receiver on ``AuditEntry`` (``signals.py``) classifies each
new entry and, in the same transaction, writes one ``Notification`` per channel of the account's owner that wants the
event; the delivery task is queued on commit. A rolled-back outcome therefore never notifies, and a committed one
always has its rows (the sweep re-queues any whose enqueue was lost).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import ExchangeAccount
from automations.models import AuditEntry, GlobalSwitch, OrderIntent
from notifications.models import Channel, Event, Notification

logger = logging.getLogger(__name__)

# account_reconcile writes "Trade {id} hit its stop-loss|hit its take-profit|was liquidated|was closed outside Axisor
# (exit …, PnL … sats)." for a trade that closed without Axisor (automations/services/trades.py).
_CLOSED_RE = re.compile(
    r"^Trade (?P<trade>\S+) (?P<how>hit its stop-loss|hit its take-profit|was liquidated|was closed outside Axisor)"
)
_CLOSED_TITLE = {
    "hit its stop-loss": "Trade closed by its stop-loss",
    "hit its take-profit": "Trade closed by its take-profit",
    "was liquidated": "Trade liquidated",
    "was closed outside Axisor": "Trade closed outside Axisor",
}


@dataclass(frozen=True)
class Derived:
    event: str
    title: str
    body: str
    protective: bool = False


def _pnl(intent: OrderIntent) -> str:
    result: dict[str, Any] = intent.result if isinstance(intent.result, dict) else {}
    closed = intent.action == OrderIntent.Action.CLOSE and result.get("pl") not in (None, "")
    return f"\nPnL: {result['pl']} sats" if closed else ""


def _price(intent: OrderIntent) -> str:
    result: dict[str, Any] = intent.result if isinstance(intent.result, dict) else {}
    for key in ("exitPrice", "exit_price", "price"):
        if result.get(key) not in (None, ""):
            return str(result[key])
    params: dict[str, Any] = intent.params if isinstance(intent.params, dict) else {}
    return str(params.get("price", "—"))


def _kind(entry: AuditEntry) -> str | None:
    """Which notification an entry calls for, from its own fields only (no query): most entries call for none."""
    event, outcome = entry.event, entry.outcome
    if event in (AuditEntry.Event.DECISION, AuditEntry.Event.SKIP):
        return None
    if entry.intent_id is not None:
        if event == AuditEntry.Event.RECONCILE and outcome == AuditEntry.Outcome.OK:
            return Event.AUTOMATION_ACTED
        if outcome in (AuditEntry.Outcome.REJECTED, AuditEntry.Outcome.ERROR):
            return Event.ACTION_FAILED
        return None
    if event == AuditEntry.Event.RECONCILE and outcome == AuditEntry.Outcome.INFO:
        return Event.TRADE_CLOSED if _CLOSED_RE.match(entry.message) else None
    if event == AuditEntry.Event.ERROR and outcome == AuditEntry.Outcome.ERROR:
        return Event.CREDENTIALS
    if event == AuditEntry.Event.STATUS and outcome == AuditEntry.Outcome.ERROR:
        return "halted"
    inputs = entry.inputs if isinstance(entry.inputs, dict) else {}
    if event == AuditEntry.Event.STATUS and "kill_switch" in inputs:
        return Event.KILL_SWITCH
    return None


def classify(entry: AuditEntry) -> Derived | None:
    """The notification an audit entry calls for, or None (decided before any query)."""
    kind = _kind(entry)
    if kind is None:
        return None
    account = entry.account
    account_label = f"{account.label} (PAPER)" if account.is_paper else account.label
    if kind in (Event.AUTOMATION_ACTED, Event.ACTION_FAILED) and entry.intent_id is not None:
        intent = entry.intent
        assert intent is not None
        who = f"“{entry.automation.name}”" if entry.automation_id and entry.automation else "A manual action"
        trade = intent.trade_id or "—"
        action = intent.get_action_display().lower()
        if kind == Event.AUTOMATION_ACTED:
            title = f"{who} acted: {action} on trade {trade}"
            body = f"{title}\nAccount: {account_label}\nPrice: {_price(intent)}{_pnl(intent)}\nResult: {entry.message}"
        else:
            title = f"Action failed: {action} on trade {trade}"
            body = f"{title}\nAccount: {account_label}\nBy: {who}\nResult: {entry.message}"
        return Derived(kind, title, body, protective=intent.protective)
    if kind == Event.TRADE_CLOSED:
        match = _CLOSED_RE.match(entry.message)
        assert match is not None
        title = f"{_CLOSED_TITLE[match['how']]}: {match['trade']}"
        return Derived(Event.TRADE_CLOSED, title, f"{title}\nAccount: {account_label}\n{entry.message}", True)
    if kind == Event.CREDENTIALS:
        title = f"Credentials rejected: automations of “{account_label}” paused"
        return Derived(Event.CREDENTIALS, title, f"{title}\n{entry.message}")
    if kind == "halted":
        title = f"New entries halted on “{account_label}”"
        return Derived(Event.ACTION_FAILED, title, f"{title}\n{entry.message}")
    title = f"Kill switch {'ON' if entry.inputs['kill_switch'] else 'off'} for “{account_label}”"
    return Derived(Event.KILL_SWITCH, title, f"{title}\n{entry.message}")


def notifications_create(
    *,
    owner_id: int,
    event: str,
    title: str,
    body: str,
    source: str,
    protective: bool = False,
    source_at: datetime | None = None,
    channel_ids: list[int] | None = None,
) -> list[int]:
    """One pending row per ready channel of ``owner_id`` that wants ``event`` (or per ``channel_ids``); the delivery
    tasks are queued after the commit. Keys are ``{event}:{source}:{channel}``: deriving twice creates nothing."""
    channels = Channel.objects.filter(owner_id=owner_id, is_enabled=True).exclude(address="")
    if channel_ids is not None:
        channels = channels.filter(pk__in=channel_ids)
    created: list[int] = []
    for channel in channels:
        if not channel.is_ready or not channel.wants(event):
            continue
        fields: dict[str, Any] = {"channel": channel, "event": event, "title": title[:200], "body": body}
        fields["protective"] = protective
        if source_at is not None:
            fields["source_at"] = source_at
        try:
            with transaction.atomic():
                row = Notification.objects.create(idempotency_key=f"{event}:{source}:{channel.pk}"[:200], **fields)
        except IntegrityError:
            continue  # derived already
        created.append(row.pk)
    if created:
        from notifications.tasks import notifications_enqueue

        transaction.on_commit(lambda: notifications_enqueue(created), robust=True)
    return created


def global_kill_switch_notify(switch: GlobalSwitch) -> int:
    """One ``kill_switch`` notification per user with an exchange account (keyed by the switch's ``updated_at``)."""
    state = "ON: no new entries for anyone; closes and protection still run" if switch.kill_switch else "off"
    title = f"Global kill switch {'ON' if switch.kill_switch else 'off'}"
    body = f"Global kill switch turned {state}." + (f" Reason: {switch.reason}" if switch.reason else "")
    owners = ExchangeAccount.objects.values_list("owner_id", flat=True).distinct()
    created = 0
    for owner_id in sorted(set(owners)):
        created += len(
            notifications_create(
                owner_id=owner_id,
                event=Event.KILL_SWITCH,
                title=title,
                body=body,
                source=f"global:{switch.updated_at.timestamp():.6f}",
            )
        )
    return created


def notifications_from_audit(entry: AuditEntry) -> list[int]:
    derived = classify(entry)
    if derived is None:
        return []
    return notifications_create(
        owner_id=entry.account.owner_id,
        event=derived.event,
        title=derived.title,
        body=derived.body,
        source=f"audit{entry.pk}",
        protective=derived.protective,
        source_at=entry.created_at,
    )
