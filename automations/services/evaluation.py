"""Evaluate automations: load inputs from the database, call the pure engine, persist decisions as order intents.

The one write path from a decision to an order: ``automation_evaluate`` stores the engine's new memory with a
compare-and-set on ``Automation.version`` (two evaluators of the same tick — two beats, a sweep and a tick — cannot
both win), writes an audit entry per decision and an ``OrderIntent`` per action in the same transaction, and
enqueues the intents' execution only after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F

from accounts.models import ExchangeAccount
from automations.actions import DECISION_PLANS
from automations.audit_text import Said, say
from automations.configs import config_from_json
from automations.engine import (
    AccountState,
    AutomationSpec,
    Bucket,
    Decision,
    EngineError,
    Evaluation,
    MarketSnapshot,
    Memory,
    Skip,
    SpecError,
    TradeState,
    evaluate_safe,
)
from automations.models import AuditEntry, Automation, GlobalSwitch, OrderIntent, TrackedTrade
from automations.publish import publish_automation_log_on_commit, publish_automations_changed_on_commit
from automations.services.intents import intent_of
from automations.services.outcomes import evaluation_note
from lnmarkets.feed import TickerSnapshot
from lnmarkets.schemas import Ticker

logger = logging.getLogger(__name__)


# --- inputs -------------------------------------------------------------------------------------------------------


def market_from_ticker(ticker: TickerSnapshot | Ticker) -> MarketSnapshot | None:
    """The engine's market snapshot from the feed's latest ticker (or a REST ticker); ``None`` if incomplete."""
    if isinstance(ticker, Ticker):
        last, index, buckets_raw, time = ticker.last_price, ticker.index, ticker.prices, ticker.time
    else:
        if ticker.last_price is None or ticker.index is None:
            return None
        last, index, buckets_raw, time = ticker.last_price, ticker.index, ticker.buckets, ticker.exchange_time
    buckets = tuple(
        Bucket(min_size=int(b.min_size), max_size=int(b.max_size), bid=b.bid_price, ask=b.ask_price)
        for b in buckets_raw
        if b.bid_price is not None and b.ask_price is not None
    )
    first = min(buckets, key=lambda b: b.min_size) if buckets else None
    bid = first.bid if first else last
    ask = first.ask if first else last
    return MarketSnapshot(last_price=last, index=index, bid=bid, ask=ask, time=time, buckets=buckets)


# The columns the engine needs, read as plain tuples: the tick path builds thousands of these per tick.
_TRADE_COLUMNS = (
    "account_id",
    "trade_id",
    "side",
    "quantity",
    "entry_price",
    "margin",
    "leverage",
    "liquidation",
    "stoploss",
    "takeprofit",
    "maintenance_margin",
    "opening_fee",
    "client_id",
    "managed",
)


def _trade_state(row: tuple[Any, ...], *, manage_external: bool) -> TradeState:
    (
        _,
        trade_id,
        side,
        quantity,
        entry,
        margin,
        leverage,
        liquidation,
        stoploss,
        takeprofit,
        maint,
        fee,
        cid,
        managed,
    ) = row
    return TradeState(
        id=trade_id,
        side="buy" if side == "buy" else "sell",
        quantity=quantity,
        entry_price=Decimal(entry),
        margin=max(int(margin), 1),
        leverage=Decimal(leverage),
        liquidation=Decimal(liquidation),
        stoploss=Decimal(stoploss),
        takeprofit=Decimal(takeprofit),
        maintenance_margin=int(maint),
        opening_fee=int(fee),
        client_id=cid or None,
        managed=managed or manage_external,
    )


def _pending_trade_ids(account_ids: Sequence[int]) -> dict[int, set[str]]:
    """Trades with an order still in flight, per account: the engine must not decide on them twice (their memory
    and cooldown are only the second line of defence)."""
    pending: dict[int, set[str]] = {}
    rows = (
        OrderIntent.objects.filter(account_id__in=account_ids, trade_id__gt="")
        .exclude(state__in=OrderIntent.TERMINAL)
        .values_list("account_id", "trade_id")
    )
    for account_id, trade_id in rows:
        pending.setdefault(account_id, set()).add(trade_id)
    return pending


def account_states_of(accounts: Sequence[ExchangeAccount], *, global_kill: bool) -> dict[int, AccountState]:
    """The engine's view of several accounts, in two queries: running trades Axisor tracks (minus those with an
    order in flight), free balance, failure breaker and kill switches."""
    ids = [a.pk for a in accounts]
    pending = _pending_trade_ids(ids)
    trades: dict[int, list[tuple[Any, ...]]] = {}
    rows = TrackedTrade.objects.filter(account_id__in=ids, state=TrackedTrade.State.RUNNING).values_list(
        *_TRADE_COLUMNS
    )
    for row in rows:
        if row[1] not in pending.get(row[0], ()):
            trades.setdefault(row[0], []).append(row)
    return {
        a.pk: AccountState(
            balance=int(a.balance or 0),
            trades=tuple(_trade_state(t, manage_external=a.manage_external_trades) for t in trades.get(a.pk, [])),
            entries_halted=a.entries_halted,
            kill_switch=a.kill_switch or global_kill,
        )
        for a in accounts
    }


def account_state_of(account: ExchangeAccount, *, global_kill: bool | None = None) -> AccountState:
    """The engine's view of one account (see ``account_states_of``)."""
    kill = GlobalSwitch.is_on() if global_kill is None else global_kill
    return account_states_of([account], global_kill=kill)[account.pk]


_SPEC_CACHE: dict[int, tuple[object, object, int, AutomationSpec]] = {}
_SPEC_CACHE_MAX = 20_000


def spec_of(automation: Automation) -> AutomationSpec:
    """The engine spec of a stored automation; raises ``SpecError`` if its stored config or memory is invalid.

    Cached per automation and reused only while its stored config, memory and price-age limit are equal to the
    cached ones (dict equality is far cheaper than re-validating), so the tick path does not re-parse thousands of
    unchanged configs on every tick, and an edit made by any path is seen at once.
    """
    cached = _SPEC_CACHE.get(automation.pk)
    if (
        cached is not None
        and cached[2] == automation.max_price_age_seconds
        and cached[0] == automation.config
        and cached[1] == automation.memory
    ):
        return cached[3]
    spec = _spec_build(automation)
    if len(_SPEC_CACHE) >= _SPEC_CACHE_MAX:
        _SPEC_CACHE.clear()
    _SPEC_CACHE[automation.pk] = (automation.config, automation.memory, automation.max_price_age_seconds, spec)
    return spec


def _spec_build(automation: Automation) -> AutomationSpec:
    return AutomationSpec(
        id=automation.pk,
        kind=automation.kind,
        config=config_from_json(automation.kind, automation.config),
        memory=Memory.from_json(automation.memory),
        max_price_age_seconds=automation.max_price_age_seconds,
    )


# --- decisions → intents ------------------------------------------------------------------------------------------


def _intent_for(decision: Decision, automation: Automation) -> OrderIntent | None:
    """The order ``decision`` asks for (its plan in ``automations.actions``), unsaved; None for a skip."""
    plan = DECISION_PLANS.get(decision.kind)
    request = plan.request(decision) if plan is not None else None
    if request is None:
        return None
    return intent_of(request, account_id=automation.account_id, automation=automation)


def _audit_decision(automation: Automation, decision: Decision, intent: OrderIntent | None) -> AuditEntry:
    skip = isinstance(decision, Skip)
    reason = getattr(decision, "reason", "")
    return AuditEntry(
        account_id=automation.account_id,
        automation=automation,
        intent=intent,
        kind=automation.kind,
        event=AuditEntry.Event.SKIP if skip else AuditEntry.Event.DECISION,
        outcome=AuditEntry.Outcome.SKIPPED if skip else AuditEntry.Outcome.PENDING,
        message=f"{decision.kind}: {reason}"[:500],
        inputs=dict(decision.inputs),
        decision=decision.to_json(),
    )


def enqueue_intents(intents: Iterable[tuple[int, bool]]) -> None:
    """Queue the execution of (id, protective) intents, protective ones on the priority queue. Call after commit."""
    from automations.tasks import order_intent_enqueue

    for intent_id, protective in intents:
        order_intent_enqueue(intent_id, protective=protective)


def automation_record_evaluation(automation: Automation, evaluation: Evaluation, now: datetime) -> list[int]:
    """Persist one evaluation (memory CAS, intents, audit) and enqueue its intents on commit.

    Returns the ids of the intents created; an empty list when another evaluator already stored this version.
    """
    with transaction.atomic():
        fields: dict[str, object] = {
            "memory": evaluation.memory.to_json(),
            "version": F("version") + 1,
            "last_evaluated_at": now,
        }
        if evaluation.completed:
            fields["status"] = Automation.Status.COMPLETED
            fields["status_message"] = "Completed: every entry it was asked for has fired."
        else:
            fields["status_message"] = evaluation_note(evaluation.decisions)  # e.g. "cannot afford the entry"
        won = Automation.objects.filter(
            pk=automation.pk, version=automation.version, status=Automation.Status.ACTIVE
        ).update(**fields)
        if won != 1:
            return []
        intents: list[OrderIntent] = []
        entries: list[AuditEntry] = []
        for decision in evaluation.decisions:
            intent = _intent_for(decision, automation)
            if intent is not None:
                intent.save()
                intents.append(intent)
            entries.append(_audit_decision(automation, decision, intent))
        AuditEntry.objects.bulk_create(entries)
        for entry in entries:
            publish_automation_log_on_commit(entry.pk)
        if evaluation.completed:
            publish_automations_changed_on_commit(automation.account_id)
        ids = [i.pk for i in intents]
        queued = [(i.pk, i.protective) for i in intents]
        if queued:
            transaction.on_commit(lambda: enqueue_intents(queued))
    automation.version += 1
    return ids


def _mark_error(automation: Automation, said: Said) -> None:
    message = said.english
    with transaction.atomic():
        Automation.objects.filter(pk=automation.pk).update(status=Automation.Status.ERROR, status_message=message[:300])
        entry = AuditEntry.objects.create(
            account_id=automation.account_id,
            automation=automation,
            kind=automation.kind,
            event=AuditEntry.Event.ERROR,
            outcome=AuditEntry.Outcome.ERROR,
            message=message,
            inputs=said.inputs(),
        )
        publish_automation_log_on_commit(entry.pk)
        publish_automations_changed_on_commit(automation.account_id)
    logger.warning("automation %s set to error: %s", automation.pk, message)


def automations_evaluate_account(
    *,
    account: ExchangeAccount,
    market: MarketSnapshot,
    now: datetime,
    automations: Sequence[Automation] | None = None,
    global_kill: bool | None = None,
    state: AccountState | None = None,
) -> list[int]:
    """Evaluate every active automation of ``account`` on ``market`` at ``now``; returns the new intent ids.

    An automation whose stored config is invalid, or that makes the engine fail, goes to ``error`` with the reason
    (and an audit entry); the others carry on.
    """
    if automations is None:
        automations = list(Automation.objects.filter(account=account, status=Automation.Status.ACTIVE))
    if not automations:
        return []
    if state is None:
        state = account_state_of(account, global_kill=global_kill)
    created: list[int] = []
    for automation in automations:
        try:
            spec = spec_of(automation)
        except SpecError as exc:
            _mark_error(automation, say("invalid_settings", error=str(exc)))
            continue
        try:
            evaluation = evaluate_safe(spec, market, state, now)
        except EngineError as exc:
            _mark_error(automation, say("evaluation_failed", error=str(exc)))
            continue
        if not evaluation.decisions and evaluation.memory is spec.memory and not evaluation.completed:
            continue
        created += automation_record_evaluation(automation, evaluation, now)
    return created


_AUTOMATION_FIELDS = (
    "id",
    "account_id",
    "name",
    "kind",
    "config",
    "memory",
    "version",
    "status",
    "max_price_age_seconds",
    "account__id",
    "account__network",
    "account__balance",
    "account__manage_external_trades",
    "account__entries_halted",
    "account__kill_switch",
    "account__is_enabled",
)


def automations_evaluate_network(*, network: str, market: MarketSnapshot, now: datetime) -> list[int]:
    """Evaluate the active automations of every enabled account on ``network`` (one query for all of them)."""
    active = (
        Automation.objects.filter(status=Automation.Status.ACTIVE, account__network=network, account__is_enabled=True)
        .select_related("account")
        .only(*_AUTOMATION_FIELDS)
        .order_by("account_id", "id")
    )
    by_account: dict[int, list[Automation]] = {}
    accounts: dict[int, ExchangeAccount] = {}
    for automation in active:
        by_account.setdefault(automation.account_id, []).append(automation)
        accounts[automation.account_id] = automation.account
    states = account_states_of(list(accounts.values()), global_kill=GlobalSwitch.is_on())
    created: list[int] = []
    for account_id, automations in by_account.items():
        created += automations_evaluate_account(
            account=accounts[account_id], market=market, now=now, automations=automations, state=states[account_id]
        )
    return created


def automation_preview(*, automation: Automation, market: MarketSnapshot, now: datetime) -> Evaluation:
    """What ``automation`` would decide right now (nothing is stored or sent). Raises ``SpecError``/``EngineError``."""
    spec = spec_of(automation)
    return evaluate_safe(spec, market, account_state_of(automation.account), now)
