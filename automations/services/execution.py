"""Execute order intents exactly once, whatever Celery redelivers (reliability.md §1–§2, product.md "Execution").

``order_intent_execute`` is the only code that sends an automation's order. Under the account lock it:

1. counts the delivery (a redelivery cap stops poison loops);
2. reconciles first when a previous delivery may have sent the order (state SUBMITTING or UNKNOWN): the order is
   looked up on the exchange (by ``clientId`` for a new trade; by the trade's state for the other actions), and is
   re-sent only when proven absent;
3. checks the kill switches and the failure breaker immediately before a new-entry POST (closes, margin additions
   and SL/TP changes always pass);
4. claims CREATED → SUBMITTING with a compare-and-set, sends, and records ACKED / REJECTED / UNKNOWN;
5. confirms the result against the exchange (RECONCILED) and queues follow-ups (the reopen of a reduce, SL/TP given
   as a percentage of the fill).

Errors that prove the order was not processed (429, 503, a refused connection) are retried up to
``MAX_ATTEMPTS`` with exponential backoff by the caller (``RetryLaterError``); a timeout or a 502/504 on the POST is
ambiguous and always reconciled, never blindly re-sent.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.crypto import CredentialDecryptionError
from accounts.models import ExchangeAccount
from automations.engine import Memory, stoploss_from_percent, takeprofit_from_percent
from automations.exchange import client_for_account
from automations.locks import account_lock
from automations.models import AuditEntry, Automation, GlobalSwitch, OrderIntent
from automations.services.trades import tracked_trade_closed, tracked_trade_upsert
from lnmarkets.client import RestClient
from lnmarkets.exceptions import (
    AmbiguousOutcomeError,
    AuthError,
    LNMarketsError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    TemporaryError,
)
from lnmarkets.schemas import Trade
from realtime.events import (
    publish_account_changed_on_commit,
    publish_automation_log_on_commit,
    publish_automations_changed_on_commit,
)

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
MAX_DELIVERIES = 8
FAILURES_TO_HALT = 3
BACKOFF_BASE = 1.0
BACKOFF_CAP = 8.0

State = OrderIntent.State


class RetryLaterError(Exception):
    """The order was provably not processed (or the account is busy): run the task again after ``countdown`` s."""

    def __init__(self, countdown: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown = countdown


@dataclass(frozen=True)
class Found:
    """What reconciliation learned: ``done`` (the action took effect) or ``absent`` (it provably did not)."""

    status: Literal["done", "absent"]
    trade: Trade | None = None
    note: str = ""


def backoff(attempt: int) -> float:
    """Full-jitter exponential backoff: uniform(0, min(cap, base × 2^(attempt−1))), at least 0.2 s."""
    return max(0.2, random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(attempt - 1, 0))))  # noqa: S311


# --- state changes ----------------------------------------------------------------------------------------------


def _audit(intent: OrderIntent, outcome: str, message: str, event: str = AuditEntry.Event.ORDER) -> None:
    entry = AuditEntry.objects.create(
        account_id=intent.account_id,
        automation_id=intent.automation_id,
        intent=intent,
        kind=intent.automation.kind if intent.automation_id and intent.automation else "",
        event=event,
        outcome=outcome,
        message=message[:500],
        inputs={"client_id": intent.client_id, "action": intent.action, "attempts": str(intent.attempts)},
    )
    publish_automation_log_on_commit(entry.pk)


def _cas(intent: OrderIntent, expected: str, new: str, **fields: object) -> bool:
    """Move ``intent`` from ``expected`` to ``new`` only if nobody else moved it; refreshes the instance."""
    updated = OrderIntent.objects.filter(pk=intent.pk, state=expected).update(state=new, **fields)
    intent.refresh_from_db()
    return updated == 1


def _finish(intent: OrderIntent, state: str, *, error: str = "", trade: Trade | None = None, note: str = "") -> None:
    fields: dict[str, object] = {"state": state, "finished_at": timezone.now()}
    if error:
        fields["error"] = error[:500]
    if trade is not None:
        fields["trade_id"] = intent.trade_id or trade.id
        fields["result"] = trade.model_dump(mode="json", by_alias=True)
    if note:
        fields["result"] = {**(fields.get("result") or intent.result or {}), "note": note}  # type: ignore[dict-item]
    OrderIntent.objects.filter(pk=intent.pk).update(**fields)
    intent.refresh_from_db()


def _record_failure(intent: OrderIntent, error: str) -> None:
    """REJECTED, audit, and the failure breaker: after 3 consecutive failures the account halts new entries."""
    _finish(intent, State.REJECTED, error=error)
    _audit(intent, AuditEntry.Outcome.REJECTED, f"{intent.get_action_display()} rejected: {error}")
    ExchangeAccount.objects.filter(pk=intent.account_id).update(consecutive_failures=F("consecutive_failures") + 1)
    account = ExchangeAccount.objects.get(pk=intent.account_id)
    if account.consecutive_failures >= FAILURES_TO_HALT and not account.entries_halted:
        reason = f"{account.consecutive_failures} consecutive order failures: new entries halted until reconciliation."
        ExchangeAccount.objects.filter(pk=account.pk).update(entries_halted=True, halt_reason=reason)
        entry = AuditEntry.objects.create(
            account=account,
            event=AuditEntry.Event.STATUS,
            outcome=AuditEntry.Outcome.ERROR,
            message=reason,
        )
        publish_automation_log_on_commit(entry.pk)
        publish_account_changed_on_commit(account.pk)


def _record_success(intent: OrderIntent) -> None:
    ExchangeAccount.objects.filter(pk=intent.account_id, consecutive_failures__gt=0).update(consecutive_failures=0)


def _pause_for_credentials(intent: OrderIntent, message: str) -> None:
    Automation.objects.filter(account_id=intent.account_id, status=Automation.Status.ACTIVE).update(
        status=Automation.Status.ERROR, status_message=message[:300]
    )
    publish_automations_changed_on_commit(intent.account_id)
    _finish(intent, State.REJECTED, error=message)
    _audit(intent, AuditEntry.Outcome.ERROR, message, event=AuditEntry.Event.ERROR)


# --- exchange calls ------------------------------------------------------------------------------------------------


def _decimal_or_none(value: object) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _send(client: RestClient, intent: OrderIntent) -> Trade:
    """The one exchange call of an intent. Raises the gateway's typed errors."""
    params = intent.params
    if intent.action == OrderIntent.Action.OPEN:
        return client.isolated_trade_create(
            type="market",
            side=params["side"],
            leverage=Decimal(str(params["leverage"])),
            quantity=params.get("quantity"),
            margin=params.get("margin"),
            stoploss=_decimal_or_none(params.get("stoploss")),
            takeprofit=_decimal_or_none(params.get("takeprofit")),
            client_id=intent.client_id,
            priority="high" if intent.protective else "normal",
        )
    if intent.action == OrderIntent.Action.CLOSE:
        return client.isolated_trade_close(intent.trade_id, priority="high")
    if intent.action == OrderIntent.Action.ADD_MARGIN:
        return client.isolated_trade_add_margin(intent.trade_id, int(params["amount"]), priority="high")
    if intent.action == OrderIntent.Action.SET_STOPLOSS:
        return client.isolated_trade_stoploss_set(intent.trade_id, Decimal(str(params["price"])), priority="high")
    if intent.action == OrderIntent.Action.SET_TAKEPROFIT:
        return client.isolated_trade_takeprofit_set(intent.trade_id, Decimal(str(params["price"])), priority="high")
    raise ValueError(f"unknown intent action {intent.action!r}")


def _running(client: RestClient, trade_id: str) -> Trade | None:
    return next((t for t in client.isolated_trades_running_list(priority="high") if t.id == trade_id), None)


def reconcile_intent(client: RestClient, intent: OrderIntent) -> Found:
    """Look on the exchange for the effect of ``intent``. GETs only; never sends an order."""
    params = intent.params
    if intent.action == OrderIntent.Action.OPEN:
        trade = client.find_trade_by_client_id(intent.client_id)
        return Found("done", trade) if trade is not None else Found("absent")
    running = _running(client, intent.trade_id)
    if intent.action == OrderIntent.Action.CLOSE:
        return Found("absent", running) if running is not None else Found("done", note="trade no longer running")
    if running is None:
        return Found("done", note="trade no longer running; nothing left to change")
    if intent.action == OrderIntent.Action.ADD_MARGIN:
        expected = int(params.get("margin_before", running.margin)) + int(params["amount"])
        return Found("done", running) if running.margin >= expected else Found("absent", running)
    wanted = Decimal(str(params["price"]))
    current = running.stoploss if intent.action == OrderIntent.Action.SET_STOPLOSS else running.takeprofit
    return Found("done", running) if current == wanted else Found("absent", running)


# --- follow-ups ----------------------------------------------------------------------------------------------------


def _followups(intent: OrderIntent, trade: Trade | None) -> list[int]:
    """Intents that complete this one: the reopen of a reduce; SL/TP set as a percentage of the actual fill."""
    created: list[OrderIntent] = []
    base = {"account_id": intent.account_id, "automation_id": intent.automation_id, "parent": intent}
    reopen = intent.params.get("reopen")
    if intent.action == OrderIntent.Action.CLOSE and isinstance(reopen, dict):
        created.append(OrderIntent(action=OrderIntent.Action.OPEN, params={**reopen}, protective=False, **base))
    if intent.action == OrderIntent.Action.OPEN and trade is not None:
        fill = trade.entry_price or trade.price
        side = trade.side
        for key, action, fn in (
            ("stoploss_percent", OrderIntent.Action.SET_STOPLOSS, stoploss_from_percent),
            ("takeprofit_percent", OrderIntent.Action.SET_TAKEPROFIT, takeprofit_from_percent),
        ):
            percent = _decimal_or_none(intent.params.get(key))
            if percent is not None:
                price = fn(side, fill, percent)
                created.append(
                    OrderIntent(action=action, trade_id=trade.id, params={"price": str(price)}, protective=True, **base)
                )
    for followup in created:
        followup.save()
    return [f.pk for f in created]


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


def _settle(client: RestClient, intent: OrderIntent, found: Found) -> list[int]:
    """The action took effect: record the trade, RECONCILED, follow-ups (returned for enqueueing after commit)."""
    account = intent.account
    if intent.action == OrderIntent.Action.CLOSE:
        tracked_trade_closed(client, account, intent.trade_id, by_axisor=True)
    elif found.trade is not None:
        managed = True if intent.action == OrderIntent.Action.OPEN else None
        tracked_trade_upsert(account, found.trade, managed=managed)
        if intent.action == OrderIntent.Action.OPEN:
            _carry_memory(intent, found.trade)
    with transaction.atomic():
        _finish(intent, State.RECONCILED, trade=found.trade, note=found.note)
        _record_success(intent)
        _audit(
            intent,
            AuditEntry.Outcome.OK,
            f"{intent.get_action_display()} done" + (f" (trade {found.trade.id})" if found.trade else ""),
            event=AuditEntry.Event.RECONCILE,
        )
        return _followups(intent, found.trade)


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
    return ""


def order_intent_execute(*, intent_id: int) -> list[int]:
    """Send the order of one intent, at most once; returns follow-up intent ids to enqueue.

    Idempotent under redelivery: a terminal intent is left alone; one in SUBMITTING/UNKNOWN is reconciled first.
    Raises ``RetryLaterError`` when the order provably did not reach the exchange and may be tried again.
    """
    intent = OrderIntent.objects.select_related("account", "automation", "parent").filter(pk=intent_id).first()
    if intent is None or intent.is_terminal:
        return []
    with account_lock(intent.account_id):
        OrderIntent.objects.filter(pk=intent.pk).update(deliveries=F("deliveries") + 1)
        intent.refresh_from_db()
        if intent.is_terminal:
            return []
        if intent.deliveries > MAX_DELIVERIES:
            _record_failure(intent, f"gave up after {MAX_DELIVERIES} deliveries")
            return []
        client = client_for_account(intent.account_id, intent.account.network)
        try:
            return _execute_locked(client, intent)
        except CredentialDecryptionError:
            _pause_for_credentials(intent, "Stored credentials cannot be decrypted: automations paused.")
            return []
        except AuthError as exc:
            _pause_for_credentials(intent, f"The exchange rejected the credentials ({exc.code}): automations paused.")
            return []


def _execute_locked(client: RestClient, intent: OrderIntent) -> list[int]:
    if intent.state in (State.ACKED, State.SUBMITTING, State.UNKNOWN):
        settled = _resume_in_flight(client, intent)
        if settled is not None:
            return settled
    refusal = _preflight(client, intent)
    if refusal is not None:
        return refusal
    if not _cas(intent, State.CREATED, State.SUBMITTING, attempts=F("attempts") + 1, submitted_at=timezone.now()):
        return []
    return _submit(client, intent)


def _resume_in_flight(client: RestClient, intent: OrderIntent) -> list[int] | None:
    """A previous delivery may have sent the order: settle it if it took effect; ``None`` when it may be sent."""
    found = _reconcile_or_retry(client, intent)
    if intent.state == State.ACKED:
        # The exchange accepted it; only the confirmation was lost (worker died): settle, never re-send.
        return _settle(client, intent, found if found.status == "done" else Found("done", note="acknowledged"))
    if found.status == "done":
        return _settle(client, intent, found)
    # Proven absent, twice for an ambiguous answer (once right after it, once after a backoff): the previous
    # delivery never reached the exchange, so the order may be sent (again, with the same clientId).
    return None if _cas(intent, intent.state, State.CREATED) else []


def _preflight(client: RestClient, intent: OrderIntent) -> list[int] | None:
    """Checks immediately before the POST; a list (possibly empty) ends the execution, ``None`` lets it send."""
    why = _blocked(intent)
    if why:
        _finish(intent, State.REJECTED, error=f"not sent: {why}")
        _audit(intent, AuditEntry.Outcome.REJECTED, f"{intent.get_action_display()} not sent: {why}")
        return []
    if intent.attempts >= MAX_ATTEMPTS:
        _record_failure(intent, f"gave up after {intent.attempts} attempts")
        return []
    if intent.action == OrderIntent.Action.ADD_MARGIN and "margin_before" not in intent.params:
        # Remember the margin before adding, so an ambiguous answer can be reconciled by reading the trade.
        running = _running(client, intent.trade_id)
        if running is None:
            return _settle(client, intent, Found("done", note="trade no longer running; no margin added"))
        OrderIntent.objects.filter(pk=intent.pk).update(params={**intent.params, "margin_before": running.margin})
        intent.refresh_from_db()
    return None


def _submit(client: RestClient, intent: OrderIntent) -> list[int]:
    """Send the claimed (SUBMITTING) intent and map every outcome to its state."""
    try:
        trade = _send(client, intent)
    except AmbiguousOutcomeError as exc:
        _cas(intent, State.SUBMITTING, State.UNKNOWN, error=f"ambiguous: {exc.code}"[:500])
        _audit(intent, AuditEntry.Outcome.UNKNOWN, f"{intent.get_action_display()} outcome unknown ({exc.code})")
        found = _reconcile_or_retry(client, intent)
        if found.status == "done":
            return _settle(client, intent, found)
        # Not visible yet: stay UNKNOWN and look again after a backoff before anything is re-sent.
        raise RetryLaterError(backoff(intent.attempts), "absent after an ambiguous answer") from exc
    except NotFoundError as exc:
        if intent.action != OrderIntent.Action.OPEN:
            # The trade is gone (closed by TP/SL, liquidated, or by hand): nothing left to do on it.
            return _settle(client, intent, Found("done", note=f"trade not found on the exchange ({exc.code})"))
        _record_failure(intent, f"{exc.code}: {exc}")
        return []
    except TemporaryError as exc:
        # 429, 503 or a refused connection: provably not processed, so it may be sent again later.
        _cas(intent, State.SUBMITTING, State.CREATED, error=f"not processed: {exc.code}"[:500])
        if intent.attempts >= MAX_ATTEMPTS:
            _record_failure(intent, f"not processed after {intent.attempts} attempts ({exc.code})")
            return []
        wait = max(exc.retry_after if isinstance(exc, RateLimitedError) else 0.0, backoff(intent.attempts))
        raise RetryLaterError(wait, f"not processed ({exc.code})") from exc
    except AuthError:
        raise
    except PermanentError as exc:
        _record_failure(intent, f"{exc.code}: {exc}")
        return []
    _cas(intent, State.SUBMITTING, State.ACKED, trade_id=intent.trade_id or trade.id)
    _audit(intent, AuditEntry.Outcome.OK, f"{intent.get_action_display()} accepted by the exchange (trade {trade.id})")
    return _settle(client, intent, _confirm(client, intent, trade))


def _reconcile_or_retry(client: RestClient, intent: OrderIntent) -> Found:
    try:
        return reconcile_intent(client, intent)
    except LNMarketsError as exc:
        # Reconciliation itself failed (exchange down): keep the state, try again later; never send meanwhile.
        raise RetryLaterError(backoff(intent.attempts + 1), f"reconciliation failed ({exc.code})") from exc


def _confirm(client: RestClient, intent: OrderIntent, acked: Trade) -> Found:
    """After an ACK, read the exchange once more so the intent ends RECONCILED against real state."""
    try:
        found = reconcile_intent(client, intent)
    except LNMarketsError as exc:
        logger.warning("intent %s acked; confirmation read failed (%s): trusting the ack", intent.pk, exc.code)
        return Found("done", acked, note="confirmed by the order response")
    if found.status == "absent":
        logger.warning("intent %s acked but not visible yet; trusting the ack", intent.pk)
        return Found("done", acked, note="confirmed by the order response")
    return Found("done", found.trade or acked, note=found.note)
