"""Notification rows derived from what automations already writes: audit entries.

``automations`` never imports this app. A ``post_save`` receiver on ``AuditEntry`` (``signals.py``) classifies each
new entry and, in the same transaction, writes one ``Notification`` per channel of the account's owner that wants the
event; the delivery task is queued on commit. A rolled-back outcome therefore never notifies, and a committed one
always has its rows (the sweep re-queues any whose enqueue was lost).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connections, router, transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import ExchangeAccount, User
from accounts.preferences import user_language
from automations.audit_text import audit_text
from automations.models import AuditEntry, GlobalSwitch, OrderIntent
from automations.services.intent_read import models_from_rows
from notifications.models import Channel, Event, Notification

logger = logging.getLogger(__name__)

# The typed reason of a trade closed without Axisor (``inputs["closed_reason"]``, written by the account
# reconciliation and by the exchange's stream events: automations/services/trades.py ``trade_closed_said``).
_CLOSED_TITLE = {
    "stoploss": gettext_noop("Trade closed by its stop-loss: %(trade)s"),
    "takeprofit": gettext_noop("Trade closed by its take-profit: %(trade)s"),
    "liquidation": gettext_noop("Trade liquidated: %(trade)s"),
    "outside": gettext_noop("Trade closed outside Axisor: %(trade)s"),
}


@dataclass(frozen=True)
class Derived:
    event: str
    title: str
    body: str
    protective: bool = False


@contextmanager
def owner_language(owner_id: int) -> Iterator[None]:
    """Speak to ``owner_id`` in their chosen language (the site's default when they chose none)."""
    owner = User.objects.filter(pk=owner_id).only("language").first()
    with translation.override(user_language(owner) if owner is not None else settings.LANGUAGE_CODE):
        yield


def _pnl(intent: OrderIntent) -> str:
    result: dict[str, Any] = intent.result if isinstance(intent.result, dict) else {}
    closed = intent.action == OrderIntent.Action.CLOSE and result.get("pl") not in (None, "")
    return "\n" + _("PnL: %(pnl)s sats") % {"pnl": result["pl"]} if closed else ""


def _price(intent: OrderIntent) -> str:
    result: dict[str, Any] = intent.result if isinstance(intent.result, dict) else {}
    for key in ("exitPrice", "exit_price", "price"):
        if result.get(key) not in (None, ""):
            return str(result[key])
    params: dict[str, Any] = intent.params if isinstance(intent.params, dict) else {}
    return str(params.get("price", "—"))


def _closed_reason(entry: AuditEntry) -> str | None:
    inputs = entry.inputs if isinstance(entry.inputs, dict) else {}
    reason = inputs.get("closed_reason")
    return reason if isinstance(reason, str) and reason in _CLOSED_TITLE and inputs.get("trade_id") else None


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
    if _closed_reason(entry) is not None:
        return Event.TRADE_CLOSED
    if event == AuditEntry.Event.ERROR and outcome == AuditEntry.Outcome.ERROR:
        return Event.CREDENTIALS
    if event == AuditEntry.Event.STATUS and outcome == AuditEntry.Outcome.ERROR:
        return "halted"
    inputs = entry.inputs if isinstance(entry.inputs, dict) else {}
    if event == AuditEntry.Event.STATUS and "kill_switch" in inputs:
        return Event.KILL_SWITCH
    return None


# The event of a kind that is not an event itself (``classify`` words a halt as a failed action).
_KIND_EVENT = {"halted": Event.ACTION_FAILED}


def _account_label(account: ExchangeAccount) -> str:
    return _("%(label)s (PAPER)") % {"label": account.label} if account.is_paper else account.label


def _intent_text(kind: str, entry: AuditEntry, account: str) -> Derived:
    intent = entry.intent
    assert intent is not None
    who = f"“{entry.automation.name}”" if entry.automation_id and entry.automation else _("A manual action")
    values = {"who": who, "action": _(_ACTION_NAMES.get(intent.action, intent.action)), "trade": intent.trade_id or "—"}
    result = audit_text(entry)
    if kind == Event.AUTOMATION_ACTED:
        title = _("%(who)s acted: %(action)s on trade %(trade)s") % values
        lines = [
            _("Account: %(account)s") % {"account": account},
            _("Price: %(price)s") % {"price": _price(intent)},
        ]
        body = "\n".join([title, *lines]) + _pnl(intent) + "\n" + _("Result: %(result)s") % {"result": result}
    else:
        title = _("Action failed: %(action)s on trade %(trade)s") % values
        lines = [
            _("Account: %(account)s") % {"account": account},
            _("By: %(who)s") % {"who": who},
            _("Result: %(result)s") % {"result": result},
        ]
        body = "\n".join([title, *lines])
    return Derived(kind, title, body, protective=intent.protective)


_ACTION_NAMES = {
    "open": gettext_noop("open trade"),
    "close": gettext_noop("close trade"),
    "add_margin": gettext_noop("add margin"),
    "set_stoploss": gettext_noop("set stop-loss"),
    "set_takeprofit": gettext_noop("set take-profit"),
}


def classify(entry: AuditEntry) -> Derived | None:
    """The notification an audit entry calls for, in the active language, or None (decided before any query)."""
    kind = _kind(entry)
    if kind is None:
        return None
    account = _account_label(entry.account)
    if kind in (Event.AUTOMATION_ACTED, Event.ACTION_FAILED) and entry.intent_id is not None:
        return _intent_text(kind, entry, account)
    said = audit_text(entry)
    if kind == Event.TRADE_CLOSED:
        reason = _closed_reason(entry)
        assert reason is not None
        title = _(_CLOSED_TITLE[reason]) % {"trade": entry.inputs["trade_id"]}
        body = "\n".join([title, _("Account: %(account)s") % {"account": account}, said])
        return Derived(Event.TRADE_CLOSED, title, body, True)
    if kind == Event.CREDENTIALS:
        title = _("Credentials rejected: automations of “%(account)s” paused") % {"account": account}
        return Derived(Event.CREDENTIALS, title, f"{title}\n{said}")
    if kind == "halted":
        title = _("New entries halted on “%(account)s”") % {"account": account}
        return Derived(Event.ACTION_FAILED, title, f"{title}\n{said}")
    if entry.inputs["kill_switch"]:
        title = _("Kill switch ON for “%(account)s”") % {"account": account}
    else:
        title = _("Kill switch off for “%(account)s”") % {"account": account}
    return Derived(Event.KILL_SWITCH, title, f"{title}\n{said}")


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
    return _notifications_create_for(
        channels_wanting(owner_id, event, channel_ids),
        event=event,
        title=title,
        body=body,
        source=source,
        protective=protective,
        source_at=source_at,
    )


@cache
def _enabled_channels_sql(db: str) -> str:
    """``Channel.objects.filter(owner_id=…, is_enabled=True).exclude(address="")`` in the model's order, written
    once per database: every settled order asks it of its owner, and building it through the ORM was a tenth of a
    crash tick's worker CPU for a query that mostly finds nothing (issue #14)."""
    qn = connections[db].ops.quote_name
    meta = Channel._meta
    column = {f.attname: qn(f.column) for f in meta.concrete_fields}
    return (
        f"SELECT {', '.join(column.values())} FROM {qn(meta.db_table)} "  # noqa: S608 - quoted identifiers, values as parameters
        f"WHERE {column['owner_id']} = %s AND {column['is_enabled']} = %s AND {column['address']} <> %s "
        f"ORDER BY {column['owner_id']}, {column['name']}, {column['id']}"
    )


def channels_wanting(owner_id: int, event: str, channel_ids: list[int] | None = None) -> list[Channel]:
    """The ready channels of ``owner_id`` that want ``event`` (among ``channel_ids`` when given): one query."""
    channels: Iterable[Channel]
    if channel_ids is not None:
        channels = Channel.objects.filter(owner_id=owner_id, is_enabled=True, pk__in=channel_ids).exclude(address="")
    else:
        # A cursor, not ``raw()``: setting up a raw queryset was most of the time of a read that mostly finds nothing
        db = router.db_for_read(Channel)
        with connections[db].cursor() as cursor:
            cursor.execute(_enabled_channels_sql(db), [owner_id, True, ""])
            rows = cursor.fetchall()
        channels = cast(list[Channel], models_from_rows(Channel, db, rows)) if rows else []
    return [channel for channel in channels if channel.is_ready and channel.wants(event)]


def _notifications_create_for(
    channels: list[Channel],
    *,
    event: str,
    title: str,
    body: str,
    source: str,
    protective: bool,
    source_at: datetime | None,
) -> list[int]:
    created: list[int] = []
    for channel in channels:
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
    """One ``kill_switch`` notification per user with an exchange account (keyed by the switch's ``updated_at``), in
    each user's language."""
    owners = ExchangeAccount.objects.values_list("owner_id", flat=True).distinct()
    created = 0
    for owner_id in sorted(set(owners)):
        with owner_language(owner_id):
            if switch.kill_switch:
                title = _("Global kill switch ON")
                body = _("Global kill switch turned ON: no new entries for anyone; closes and protection still run.")
            else:
                title = _("Global kill switch off")
                body = _("Global kill switch turned off.")
            if switch.reason:
                body += " " + _("Reason: %(reason)s") % {"reason": switch.reason}
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


def calls_for_notification(entry: AuditEntry) -> bool:
    """Whether ``entry`` may call for a notification at all (its own fields only, no query)."""
    return _kind(entry) is not None


def audit_channels(entry: AuditEntry, shared_reads: dict[object, object] | None = None) -> list[Channel]:
    """The owner's ready channels that want what ``entry`` calls for (none when it calls for nothing): one query,
    none when ``shared_reads`` (the entries of one write, in one transaction) already holds that owner's answer."""
    kind = _kind(entry)
    if kind is None:
        return []
    event = _KIND_EVENT.get(kind, kind)
    key = ("channels_wanting", entry.account.owner_id, event)
    if shared_reads is not None and key in shared_reads:
        return list(cast(list[Channel], shared_reads[key]))
    channels = channels_wanting(entry.account.owner_id, event)
    if shared_reads is not None:
        shared_reads[key] = list(channels)
    return channels


def notifications_from_audit(entry: AuditEntry, channels: list[Channel] | None = None) -> list[int]:
    """The notifications ``entry`` calls for, to ``channels`` (``audit_channels``, read here when not given). The
    owner's channels are read first: when none wants the event (most owners of a crash tick), nothing is worded and
    the owner's language is not read (one query instead of three)."""
    if channels is None:
        channels = audit_channels(entry)
    if not channels:
        return []
    with owner_language(entry.account.owner_id):
        derived = classify(entry)
    if derived is None:
        return []
    return _notifications_create_for(
        [channel for channel in channels if channel.wants(derived.event)],
        event=derived.event,
        title=derived.title,
        body=derived.body,
        source=f"audit{entry.pk}",
        protective=derived.protective,
        source_at=entry.created_at,
    )
