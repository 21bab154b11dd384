"""Execute order intents exactly once, whatever Celery redelivers (docs/exactly-once.md).

``order_intent_execute`` is the only code that sends an order. A delivery reads the intent and advances it by one
of the edges of ``intent_machine`` (each a compare-and-set on state and attempt number):

* ACKED: the exchange accepted it and only the bookkeeping is missing: settle from the stored answer (no I/O).
* SUBMITTING / UNKNOWN: an earlier attempt may have reached the exchange. Look for its effect (by ``clientId`` for a
  new trade, by the trade's state for the other actions). Found → settled. Absent → it may be sent again only once
  the attempt's fence has passed (its signature can no longer be accepted) and the look-up was made after the fence;
  a close is exempt (a trade closes once at the exchange whatever we send). Otherwise look again after a backoff.
* CREATED: the pre-send checks (kill switches, failure breaker, attempt cap, entry expiry), then the claim
  (CREATED → SUBMITTING, attempt + 1, a send deadline and a fence), then one POST signed before the deadline.

Outcomes of the POST: 2xx → ACKED (the answer stored) → RECONCILED with the bookkeeping in one transaction, from the
answer itself, so no later read can leave a protective action unfinished; a timeout or 500/502/504 → UNKNOWN,
reconciled; 429/503, a refused connection or a passed send deadline → provably unsent, back to CREATED and retried
(at most ``MAX_ATTEMPTS`` sends) after a backoff; a 400/404 on a close, SL/TP or margin addition → reconciled: the
trade being already closed (or already at the value) is "already done", not a failure; any other 4xx → REJECTED.

Retries back off exponentially with full jitter, capped at ``BACKOFF_CAP`` s, for as long as the intent needs; each
delivery leaves a lease (``next_check_at``) after which the intent sweep re-queues it if the retry was lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.signals import post_save
from django.utils import timezone

from accounts.crypto import CredentialDecryptionError
from accounts.models import ExchangeAccount
from automations.actions import ActionParamsError, Found, OrderAction, UnknownActionError, action_for
from automations.audit_text import Said, say
from automations.exchange import client_for_account, signing_from
from automations.models import AuditEntry, GlobalSwitch, OrderIntent
from automations.publish import publish_account_changed_on_commit, publish_automation_log_on_commit
from automations.services.audit_rows import audit_entries_insert
from automations.services.credentials_health import record_auth_failure
from automations.services.intent_machine import (
    IN_FLIGHT,
    MUTABLE_FIELDS,
    IllegalTransitionError,
    claim,
    claim_many,
    refresh_intent,
    transition,
    transition_many,
)
from automations.services.intent_read import (
    intent_lease,
    intent_with_account_and_automation,
    intents_lease,
    intents_with_account_and_automation,
)
from automations.services.outcomes import intents_settled
from automations.services.trades import (
    closed_by_axisor,
    tracked_trade_fill_exit,
    tracked_trade_mark_closed,
    tracked_trade_upsert,
    tracked_trades_closed_together,
)
from lnmarkets.client import RestClient, send_deadline
from lnmarkets.exceptions import (
    AmbiguousOutcomeError,
    AuthError,
    InvalidOrderError,
    LNMarketsError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TemporaryError,
)
from lnmarkets.schemas import Trade, parse_json, parse_model, to_wire_json

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MAX_DELIVERIES = 40
FAILURES_TO_HALT = 3
BACKOFF_BASE = 1.0
BACKOFF_CAP = 8.0
ENTRY_TTL = timedelta(seconds=60)
EXPIRED = f"it expired: the entry was decided more than {int(ENTRY_TTL.total_seconds())} s ago"
# How long one delivery may work on an intent before the sweep may assume it was lost (a lost delivery costs
# only time: correctness never rests on this lease).
DELIVERY_LEASE = timedelta(seconds=60)
LEASE_GRACE = timedelta(seconds=10)

State = OrderIntent.State
# Error codes of requests refused before they left this process: not a send.
NEVER_LEFT = frozenset({"local_rate_limit", "send_deadline"})
# A 429 says when to come back: a wait, not an attempt (docs/reliability.md T03); the entry TTL and the delivery cap
# bound how long it may go on.


class RetryLaterError(Exception):
    """Run the task again after ``countdown`` s: the order was provably not processed, or its effect is not known
    yet and must be looked up again before anything is sent."""

    def __init__(self, countdown: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown = countdown


def backoff(step: int) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base × 2^(step−1))), at least 0.2 s."""
    return max(0.2, random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(step - 1, 0))))  # noqa: S311


def attempt_windows(now: datetime) -> tuple[datetime, datetime]:
    """(send deadline, fence) of an attempt claimed at ``now``: the request may be signed until the deadline; the
    exchange refuses a signature older than its timestamp window W, and the process that later looks for the
    attempt's effect has a clock within W of the exchange's (its own signed look-up succeeded), so after
    deadline + 2W the attempt can no longer take effect (docs/exactly-once.md)."""
    deadline = now + timedelta(seconds=settings.ORDER_SEND_WINDOW_SECONDS)
    return deadline, deadline + 2 * timedelta(seconds=settings.LNMARKETS_TIMESTAMP_WINDOW_SECONDS)


# --- audit and failure accounting ------------------------------------------------------------------------------


def _audit_entry(
    intent: OrderIntent, outcome: str, message: str | Said, event: str = AuditEntry.Event.ORDER
) -> AuditEntry:
    """One unsaved audit entry of ``intent``; a ``Said`` (message key and parameters) is shown in the reader's
    language."""
    said = message if isinstance(message, Said) else None
    inputs = {"client_id": intent.client_id, "action": intent.action, "attempts": str(intent.attempts)}
    return AuditEntry(
        account=intent.account,  # the cached row: whoever reads the entry's account next (notifications) needs no query
        # the cached rows: the notification derived from the entry reads its automation and intent without a query
        automation=intent.automation if intent.automation_id else None,
        intent=intent,
        kind=intent.automation.kind if intent.automation_id and intent.automation else "",
        event=event,
        outcome=outcome,
        message=said.english if said is not None else str(message)[:500],
        inputs=said.inputs(inputs) if said is not None else inputs,
    )


def _audit_write(entries: list[AuditEntry]) -> None:
    """Write ``entries`` (``_audit_entry``: each holds its intent's account row) in one statement, in order; each is
    then saved as far as its readers can tell (the ``post_save`` that derives its notification, the dashboard event
    after the commit). The ``post_save`` of entries written together carries one ``shared_reads`` dict: a receiver
    may keep there what it read for one entry and use it for the next (one owner's channels, read once)."""
    audit_entries_insert(entries)
    shared: dict[object, object] = {}  # the receivers may share reads between entries written together
    for entry in entries:
        post_save.send(
            sender=AuditEntry, instance=entry, created=True, raw=False, using=entry._state.db, shared_reads=shared
        )
    for entry in entries:
        publish_automation_log_on_commit(entry.pk, entry.account_id, entry.account.owner_id)


def _audit(intent: OrderIntent, outcome: str, message: str | Said, event: str = AuditEntry.Event.ORDER) -> None:
    """One audit entry of ``intent``; a ``Said`` (message key and parameters) is shown in the reader's language."""
    _audit_write([_audit_entry(intent, outcome, message, event)])


def _record_failure(intent: OrderIntent, error: str) -> None:
    """REJECTED, audit, and the failure breaker: after 3 consecutive failures the account halts new entries."""
    if not transition(intent, State.REJECTED, error=error[:500]):
        return
    _audit(intent, AuditEntry.Outcome.REJECTED, say("intent_rejected", action=intent.action, error=error))
    ExchangeAccount.objects.filter(pk=intent.account_id).update(consecutive_failures=F("consecutive_failures") + 1)
    account = ExchangeAccount.objects.get(pk=intent.account_id)
    if account.consecutive_failures >= FAILURES_TO_HALT and not account.entries_halted:
        said = say("entries_halted", failures=account.consecutive_failures)
        reason = said.english
        ExchangeAccount.objects.filter(pk=account.pk).update(entries_halted=True, halt_reason=reason)
        entry = AuditEntry.objects.create(
            account=account,
            event=AuditEntry.Event.STATUS,
            outcome=AuditEntry.Outcome.ERROR,
            message=reason,
            inputs=said.inputs(),
        )
        publish_automation_log_on_commit(entry.pk, account.pk, account.owner_id)
        publish_account_changed_on_commit(account.pk, account.owner_id)


def _pause_for_credentials(intent: OrderIntent, code: str | None, reason: str) -> None:
    """The credentials failed (``code``: the exchange's refusal; None: the stored ones cannot be decrypted): the
    account's automations pause and it backs off (``credentials_health``, the one way to pause for credentials);
    the intent ends REJECTED unless the exchange already accepted it."""
    record_auth_failure(account_id=intent.account_id, reason=reason)
    key = "credentials_undecryptable" if code is None else "credentials_rejected"
    if intent.state in IN_FLIGHT - {State.ACKED}:
        key += "_unknown"  # the earlier attempt's outcome is unknown
    said = say(key, code=code or "")
    if intent.state != State.ACKED and transition(intent, State.REJECTED, error=said.english):
        _audit(intent, AuditEntry.Outcome.ERROR, said, event=AuditEntry.Event.ERROR)


# --- exchange calls ------------------------------------------------------------------------------------------------


class _Trades:
    """The tracked-trades service as the actions' ``TradeBook`` (actions never import services)."""

    upsert = staticmethod(tracked_trade_upsert)
    mark_closed = staticmethod(tracked_trade_mark_closed)
    fill_exit = staticmethod(tracked_trade_fill_exit)


TRADES = _Trades()


def _action(intent: OrderIntent) -> OrderAction[Any]:
    return action_for(intent.action)


def _send(client: RestClient, intent: OrderIntent) -> Trade:
    """The one exchange call of an intent (its action's ``send``). Raises the gateway's typed errors."""
    action = _action(intent)
    return action.send(client, intent, action.parse(intent.params))


def reconcile_intent(client: RestClient, intent: OrderIntent) -> Found:
    """Look on the exchange for the effect of ``intent`` (its action's ``reconcile``). GETs only."""
    action = _action(intent)
    return action.reconcile(client, intent, action.parse(intent.params))


def _look_up(client: RestClient, intent: OrderIntent) -> Found:
    """``reconcile_intent``, counted; a failed look-up keeps the state and asks to look again after a backoff."""
    OrderIntent.objects.filter(pk=intent.pk).update(checks=F("checks") + 1)
    intent.refresh_from_db(fields=["checks"])
    try:
        return reconcile_intent(client, intent)
    except LNMarketsError as exc:
        # The exchange cannot be asked now: never send meanwhile, look again later.
        raise RetryLaterError(backoff(intent.checks), f"reconciliation failed ({exc.code})") from exc


# --- settling ------------------------------------------------------------------------------------------------------


ORDER_RESPONSE = "confirmed by the order response"


def _settle(client: RestClient, intent: OrderIntent, found: Found, *, accepted: Trade | None = None) -> list[int]:
    """The action took effect (or nothing is left to do): RECONCILED, with the tracked trade, the audit entry and
    the follow-ups written in the same transaction, from what is in hand (no I/O before the terminal state).
    ``accepted``: the exchange's answer to this intent's order, told by an entry of its own before the outcome's (in
    the same statement; only the delivery whose RECONCILED compare-and-set succeeds writes it)."""
    with transaction.atomic():
        written = _settle_writes(intent, found, accepted=accepted)
        if written is None:
            return []  # another delivery settled it
        entries, followups = written
        _audit_write(entries)
        for followup in followups:
            followup.save()
    # The terminal state is written: bookkeeping that needs the exchange (a close's exit) may fail alone.
    _after_settle(client, intent=intent, found=found)
    return [f.pk for f in followups]


def _settle_writes(
    intent: OrderIntent, found: Found, *, accepted: Trade | None
) -> tuple[list[AuditEntry], list[OrderIntent]] | None:
    """Inside the settling transaction: RECONCILED (its decision's outcome told) and what goes with it
    (``_reconciled_writes``); ``None`` when another delivery settled the intent first."""
    if not transition(intent, State.RECONCILED, **_settled_fields(intent, found)):
        return None
    return _reconciled_writes(intent, found, accepted=accepted)


def _settled_fields(intent: OrderIntent, found: Found) -> dict[str, Any]:
    """What RECONCILED stores with the intent: the trade and what was found."""
    fields: dict[str, Any] = {}
    if found.trade is not None:
        fields["trade_id"] = intent.trade_id or found.trade.id
        fields["result"] = {**found.trade.model_dump(mode="json", by_alias=True), "note": found.note}
    elif found.note:
        fields["result"] = {**(intent.result or {}), "note": found.note}
    return fields


def _reconciled_writes(
    intent: OrderIntent, found: Found, *, accepted: Trade | None
) -> tuple[list[AuditEntry], list[OrderIntent]]:
    """After RECONCILED, in the same transaction: the action's bookkeeping and the failure count; returns the audit
    entries and the follow-ups the caller writes."""
    action = _action(intent)
    params = action.parse(intent.params)
    action.bookkeeping(TRADES, intent, params, found)
    if intent.account.consecutive_failures:
        # Read with the intent at the start of this delivery; a failure counted since then is not undone (the
        # breaker errs on the side of halting entries, never on the side of sending them).
        ExchangeAccount.objects.filter(pk=intent.account_id, consecutive_failures__gt=0).update(consecutive_failures=0)
    if found.trade is not None:
        key = "intent_done_note" if found.note else "intent_done"
        said = say(key, action=intent.action, trade=found.trade.id, note=found.note)
    else:
        said = say("intent_note", action=intent.action, note=found.note or "done")
    entries = [_audit_entry(intent, AuditEntry.Outcome.OK, said, event=AuditEntry.Event.RECONCILE)]
    if accepted is not None:
        told = say("intent_accepted", action=intent.action, trade=accepted.id)
        entries.insert(0, _audit_entry(intent, AuditEntry.Outcome.OK, told))
    return entries, action.followups(intent, params, found.trade)


def _settle_acked(client: RestClient, intent: OrderIntent) -> list[int]:
    """ACKED: the exchange's answer is stored; only the bookkeeping was lost. Never re-sent, never re-read."""
    wire = (intent.result or {}).get("wire")
    try:
        trade = parse_model(Trade, parse_json(wire), context="stored answer") if isinstance(wire, str) else None
    except (ValueError, LNMarketsError):
        trade = None
    if trade is None:
        found = _look_up(client, intent)
        trade = found.trade
    # The acceptance is told with the outcome (``_after_ack``), unless an earlier version told it on its own.
    told = AuditEntry.objects.filter(intent=intent, event=AuditEntry.Event.ORDER, outcome=AuditEntry.Outcome.OK)
    accepted = trade if trade is not None and not told.exists() else None
    return _settle(client, intent, Found("done", trade, note=ORDER_RESPONSE), accepted=accepted)


# --- the entry point -----------------------------------------------------------------------------------------------


def _blocked(intent: OrderIntent) -> str:
    """Why a new entry may not be sent now ("" when it may). Read from the database immediately before the POST."""
    if intent.protective:
        return ""
    if GlobalSwitch.is_on():
        return "the global kill switch is on"
    account = ExchangeAccount.objects.only("kill_switch", "entries_halted", "halt_reason").get(pk=intent.account_id)
    if account.kill_switch:
        return "the account's kill switch is on"
    if account.entries_halted:
        return f"new entries are halted ({account.halt_reason or 'awaiting reconciliation'})"
    if intent.created_at < timezone.now() - ENTRY_TTL:
        return EXPIRED
    return ""


def reject_unsent(intent: OrderIntent, why: str) -> bool:
    """CREATED → REJECTED without sending, with its audit entry and the decision's outcome; False when another
    delivery moved the intent first (it was claimed: that delivery decides)."""
    if not transition(intent, State.REJECTED, error=f"not sent: {why}"):
        return False
    _audit(intent, AuditEntry.Outcome.REJECTED, say("intent_not_sent", action=intent.action, why=why))
    return True


def order_intent_execute(*, intent_id: int) -> list[int]:
    """Advance one intent as far as it can go now; returns follow-up intent ids to enqueue.

    Idempotent under any redelivery or overlap (see the module docstring). Raises ``RetryLaterError`` when the
    intent must be looked at again later; its lease is moved past that retry first.
    """
    intent = order_intent_deliver(intent_id)
    return order_intent_advance(intent) if intent is not None else []


def order_intent_deliver(intent_id: int) -> OrderIntent | None:
    """The start of a delivery: the intent counted and leased first, then read with what the delivery needs (its
    account and automation), in two statements compiled once (``intent_read``); ``None`` when it is terminal (left
    as it is) or gone. It is then advanced by ``order_intent_advance``, from this view: every move is a
    compare-and-set, so a view that went stale meanwhile only costs a re-read."""
    if not intent_lease(intent_id, timezone.now() + DELIVERY_LEASE):
        return None
    intent = intent_with_account_and_automation(intent_id)
    return intent if intent is not None and not intent.is_terminal else None


def order_intents_deliver(intent_ids: Sequence[int]) -> list[OrderIntent]:
    """``order_intent_deliver`` of a batch's intents in two statements (``intent_read``): each counted and leased
    on its own condition, then read with its account and automation; the terminal and gone ones left out."""
    leased = intents_lease(intent_ids, timezone.now() + DELIVERY_LEASE)
    intents = intents_with_account_and_automation([pk for pk in intent_ids if pk in leased])
    return [intent for intent in intents if not intent.is_terminal]


def may_claim_together(intent: OrderIntent) -> bool:
    """Whether ``intent`` may be claimed in one statement with the others of its batch (``order_intents_claim``):
    a protective CREATED intent whose pre-send checks (``_preflight``) would pass with no query and no read at the
    exchange: nothing blocks a protective order, it has sends left, its parameters parse and its action reads
    nothing before its send. Any other intent is advanced on its own (``order_intent_advance``)."""
    if not intent.protective or intent.state != State.CREATED:
        return False
    if intent.deliveries > MAX_DELIVERIES or intent.sends >= MAX_ATTEMPTS:
        return False
    try:
        action = _action(intent)
    except UnknownActionError:
        return False  # its own delivery fails alone, without holding up the batch
    if type(action).before_send is not OrderAction.before_send:
        return False
    try:
        action.parse(intent.params)
    except ActionParamsError:
        return False
    return True


def order_intents_claim(intents: Sequence[OrderIntent]) -> list[OrderIntent]:
    """Claim intents that ``may_claim_together`` in one statement, each by its own compare-and-set exactly as
    ``_attempt`` claims one (``intent_machine.claim_many``); returns the ones claimed, to be sent once each by
    ``order_intent_send``. The others were moved by another delivery: nothing more is done with them."""
    return claim_many(intents, **claim_windows(timezone.now()))


def order_intent_send(intent: OrderIntent) -> Trade | list[int]:
    """The one POST of an intent claimed by ``order_intents_claim`` (credentials and retries as in
    ``order_intent_advance``): the exchange's answer on a 2xx, which ``order_intents_settle`` writes; otherwise the
    outcome mapped as for a single delivery, and its follow-up intent ids."""
    return _step(intent, lambda client: _send_claimed(client, intent))


@dataclass
class Settled:
    """What ``order_intents_settle`` wrote: the follow-up intents to queue, and the intents it settled with what
    was found (for ``order_intent_after_settle``)."""

    followups: list[int]
    intents: list[tuple[OrderIntent, Found]]


def order_intents_settle(acks: Sequence[tuple[OrderIntent, Trade]]) -> Settled:
    """Settle acknowledged intents (``order_intent_send``'s answers) in one transaction: each RECONCILED from its
    answer by its own compare-and-set (SUBMITTING → RECONCILED; the answer is stored with the outcome instead of in
    an ACKED step of its own) in one statement for all (``intent_machine.transition_many``), with its bookkeeping, its
    decision's outcome and its two audit entries, the batch's decisions told in one statement, its tracked trades
    closed in one and its entries written in one. The bookkeeping that may need the exchange is
    left to the caller (``order_intent_after_settle`` of each intent settled).

    Raises when the transaction fails: nothing of it is written and each intent is left as it was read (SUBMITTING);
    the caller then settles them one by one (``order_intent_settle_ack``). A process that dies before the commit
    leaves them SUBMITTING, as one dying between its POST and its ACKED step: the intent sweep looks each one up
    at the exchange once its lease has run out and settles what it finds."""
    if not acks:
        return Settled([], [])
    as_read = [(intent, {name: getattr(intent, name) for name in MUTABLE_FIELDS}) for intent, _ in acks]
    found = {intent.pk: Found("done", trade, note=ORDER_RESPONSE) for intent, trade in acks}
    intents = [intent for intent, _ in acks]
    try:
        with transaction.atomic():
            fields = [_settled_fields(intent, found[intent.pk]) for intent in intents]
            moved = transition_many(intents, State.RECONCILED, fields)  # the others: another delivery settled them
            intents_settled(moved)
            entries: list[AuditEntry] = []
            followups: list[OrderIntent] = []
            with tracked_trades_closed_together():  # their tracked copies in one statement, before the entries
                for intent, trade in acks:
                    if intent in moved:
                        written, more = _reconciled_writes(intent, found[intent.pk], accepted=trade)
                        entries += written
                        followups += more
            _audit_write(entries)
            for followup in followups:
                followup.save()
    except BaseException:
        for intent, as_it_was in as_read:
            for name, value in as_it_was.items():
                setattr(intent, name, value)
        raise
    return Settled([f.pk for f in followups], [(intent, found[intent.pk]) for intent in moved])


def order_intent_after_settle(intent: OrderIntent, found: Found) -> list[int]:
    """The bookkeeping of a settled intent that may need the exchange (a close's exit details); nothing to follow."""
    _step(intent, partial(_after_settle, intent=intent, found=found))
    return []


def _after_settle(client: RestClient, *, intent: OrderIntent, found: Found) -> None:
    _action(intent).after_settle(TRADES, client, intent, found)


def order_intent_settle_ack(intent: OrderIntent, trade: Trade) -> list[int]:
    """One acknowledged intent settled as a single delivery settles it: its answer stored (ACKED), then settled."""
    settled = _step(intent, lambda client: _after_ack(client, intent, trade))
    assert isinstance(settled, list)
    return settled


def order_intent_advance(intent: OrderIntent) -> list[int]:
    """Advance one delivered intent (``order_intent_deliver``) as far as it can go now; returns follow-up intent
    ids to enqueue. Raises ``RetryLaterError`` when it must be looked at again later; its lease is moved past that
    retry first."""
    if intent.deliveries > MAX_DELIVERIES:
        error = f"gave up after {MAX_DELIVERIES} deliveries"
        if intent.state in IN_FLIGHT:
            error += " (its outcome is unknown: reconciliation adopts the trade if it exists)"
        _record_failure(intent, error)
        return []
    advanced = _step(intent, lambda client: _advance(client, intent))
    assert isinstance(advanced, list)
    return advanced


R = TypeVar("R")


def _step(intent: OrderIntent, work: Callable[[RestClient], R]) -> R | list[int]:
    """``work`` with the intent's client, signing from the account row read with the intent (its credentials are
    not read again). Credentials that fail pause the account (``[]``: nothing to follow); a ``RetryLaterError``
    moves the intent's lease past the retry first."""
    client = client_for_account(intent.account_id, intent.account.network)
    try:
        with signing_from(intent.account):
            return work(client)
    except CredentialDecryptionError as exc:
        _pause_for_credentials(intent, None, type(exc).__name__)
        return []
    except AuthError as exc:
        _pause_for_credentials(intent, exc.code, type(exc).__name__)
        return []
    except RetryLaterError as exc:
        lease = timezone.now() + timedelta(seconds=exc.countdown) + LEASE_GRACE
        OrderIntent.objects.filter(pk=intent.pk, state__in=[State.CREATED, *IN_FLIGHT]).update(next_check_at=lease)
        raise


def _advance(client: RestClient, intent: OrderIntent) -> list[int]:
    if intent.state == State.ACKED:
        return _settle_acked(client, intent)
    if intent.state in IN_FLIGHT:
        settled = _resume_in_flight(client, intent)
        if settled is not None:
            return settled
    if intent.state != State.CREATED:
        return []
    return _attempt(client, intent)


def _fence(intent: OrderIntent) -> datetime:
    """When the current attempt can no longer take effect (a close: at once, a trade closes only once)."""
    if _action(intent).fence_at_once:
        return intent.created_at
    return intent.fence_at or attempt_windows(intent.submitted_at or intent.updated_at)[1]


def _resume_in_flight(client: RestClient, intent: OrderIntent) -> list[int] | None:
    """SUBMITTING or UNKNOWN: settle the earlier attempt if it took effect; ``None`` once the intent is CREATED
    again and may be sent (absent, asked after the fence)."""
    fence = _fence(intent)
    fence_passed = timezone.now() >= fence  # read before the look-up: the look-up must be made after the fence
    found = _look_up(client, intent)
    if found.status == "done":
        return _settle(client, intent, found)
    if not fence_passed:
        until_fence = (fence - timezone.now()).total_seconds()
        raise RetryLaterError(
            max(0.2, min(backoff(intent.checks), until_fence + 0.2)), "absent; the earlier attempt is not fenced yet"
        )
    if transition(intent, State.CREATED, error="not found at the exchange after its fence: may be sent again"):
        return None
    return []


def _preflight(client: RestClient, intent: OrderIntent) -> list[int] | None:
    """Checks immediately before the claim; a list (possibly empty) ends the execution, ``None`` lets it send."""
    why = _blocked(intent)
    if why:
        reject_unsent(intent, why)
        return []
    if intent.sends >= MAX_ATTEMPTS:
        _record_failure(intent, f"gave up after {intent.sends} attempts")
        return []
    action = _action(intent)
    try:
        params = action.parse(intent.params)
    except ActionParamsError as exc:
        _record_failure(intent, f"invalid parameters ({exc})")
        return []
    try:
        # The action's last reads (an addition remembers the margin before it, so that an ambiguous answer can be
        # reconciled by reading the trade).
        prepared = action.before_send(client, intent, params)
    except LNMarketsError as exc:
        raise RetryLaterError(backoff(intent.attempts + 1), f"could not read the trade ({exc.code})") from exc
    if isinstance(prepared, Found):
        return _settle(client, intent, prepared)
    if prepared != params:
        OrderIntent.objects.filter(pk=intent.pk, state=State.CREATED, attempts=intent.attempts).update(
            params=prepared.to_json()
        )
        refresh_intent(intent)
    return None


def _attempt(client: RestClient, intent: OrderIntent) -> list[int]:
    """CREATED: check, claim (attempt + 1), send once before the attempt's deadline, map the outcome."""
    done = _preflight(client, intent)
    if done is not None:
        return done
    if not claim(intent, **claim_windows(timezone.now())):
        return []
    sent = _send_claimed(client, intent)
    return _after_ack(client, intent, sent) if isinstance(sent, Trade) else sent


def claim_windows(now: datetime) -> dict[str, datetime]:
    """The claim's times for an attempt claimed at ``now``: its send deadline and fence (``attempt_windows``), and
    its lease: lost if not finished by the deadline plus one HTTP timeout (the sweep then looks it up: settled at
    once when it was sent; waited out to the fence when it was not)."""
    deadline, fence = attempt_windows(now)
    lease = deadline + timedelta(seconds=settings.LNMARKETS_HTTP_TIMEOUT) + LEASE_GRACE
    return {"now": now, "send_deadline": deadline, "fence_at": fence, "lease": lease}


def _send_claimed(client: RestClient, intent: OrderIntent) -> Trade | list[int]:
    """The one POST of a claimed attempt, signed before its deadline: the exchange's answer on a 2xx (the caller
    stores and settles it), otherwise the outcome mapped (follow-ups, or ``RetryLaterError``)."""
    deadline = intent.send_deadline
    if intent.state != State.SUBMITTING or deadline is None:
        raise IllegalTransitionError(f"intent {intent.pk}: only a claimed attempt is sent, not one {intent.state}")
    pause = float(settings.FAULT_PAUSE_BEFORE_SEND_SECONDS)
    if pause > 0:
        time.sleep(pause)  # fault injection for the battery (a worker killed between claim and send); 0 in use
    try:
        with send_deadline(deadline):
            return _send(client, intent)
    except AmbiguousOutcomeError as exc:
        return _after_ambiguous(client, intent, exc)
    except (NotFoundError, InvalidOrderError) as exc:
        if not _action(intent).refusal_may_be_done:
            _record_failure(intent, f"{exc.code}: {exc.message}")
            return []
        return _after_refusal(client, intent, exc)
    except TemporaryError as exc:
        return _after_unprocessed(intent, exc)
    except AuthError:
        raise
    except PermanentError as exc:
        _record_failure(intent, f"{exc.code}: {exc.message}")
        return []


def _after_unprocessed(intent: OrderIntent, exc: TemporaryError) -> list[int]:
    """429, 503, a refused connection or a passed send deadline: provably not processed, may be sent again. A
    request that never left this process (local rate limiter, send deadline), or that the exchange asked us to
    send later (429), does not count as a send."""
    unsent = exc.code in NEVER_LEFT or isinstance(exc, RateLimitedError)
    fields: dict[str, Any] = {"sends": F("sends") - 1} if unsent else {}
    if not transition(intent, State.CREATED, error=f"not processed: {exc.code}"[:500], **fields):
        return []
    _audit(intent, AuditEntry.Outcome.INFO, say("intent_not_processed", action=intent.action, code=exc.code))
    if intent.sends >= MAX_ATTEMPTS:
        _record_failure(intent, f"not processed after {intent.sends} attempts ({exc.code})")
        return []
    wait = max(exc.retry_after if isinstance(exc, RateLimitedError) else 0.0, backoff(intent.sends))
    raise RetryLaterError(wait, f"not processed ({exc.code})") from exc


def _after_ack(client: RestClient, intent: OrderIntent, trade: Trade) -> list[int]:
    """2xx: store the answer (ACKED) first, then settle from it."""
    answer = {**trade.model_dump(mode="json", by_alias=True), "note": "order response", "wire": to_wire_json(trade)}
    if not transition(intent, State.ACKED, trade_id=intent.trade_id or trade.id, result=answer, error=""):
        # Only a delivery that found this attempt's effect at the exchange can have moved it: it is settled.
        logger.warning("intent %s: acknowledged, but already moved to %s by another delivery", intent.pk, intent.state)
        return []
    # The acceptance is told in the settling transaction, with the outcome (one statement for both entries).
    return _settle(client, intent, Found("done", trade, note=ORDER_RESPONSE), accepted=trade)


def _after_ambiguous(client: RestClient, intent: OrderIntent, exc: AmbiguousOutcomeError) -> list[int]:
    if not transition(intent, State.UNKNOWN, error=f"ambiguous: {exc.code}"[:500]):
        return []
    _audit(intent, AuditEntry.Outcome.UNKNOWN, say("intent_unknown", action=intent.action, code=exc.code))
    found = _look_up(client, intent)
    if found.status == "done":
        return _settle(client, intent, found)
    raise RetryLaterError(backoff(intent.checks), "absent after an ambiguous answer; looking again before any send")


def _after_refusal(client: RestClient, intent: OrderIntent, exc: PermanentError) -> list[int]:
    """A 400/404 on an action on an existing trade: already done (closed, at the value) or a real refusal."""
    try:
        found = reconcile_intent(client, intent)
    except LNMarketsError as read_error:
        # The refusal ended the attempt; whether it is done is not known yet: reconcile before anything else.
        transition(intent, State.UNKNOWN, error=f"refused ({exc.code}); checking the trade"[:500])
        raise RetryLaterError(backoff(1), f"refused, then the look-up failed ({read_error.code})") from read_error
    if found.status == "done":
        # Not this attempt's doing; an earlier attempt of this intent, or another close of ours, may have done it.
        note = f"already done at the exchange ({exc.code}: {exc.message})"[:300]
        ours = intent.attempts > 1 or closed_by_axisor(intent.account_id, intent.trade_id, besides=intent.pk)
        return _settle(client, intent, Found("done", found.trade, note=note, ours=ours))
    _record_failure(intent, f"{exc.code}: {exc.message}")
    return []
