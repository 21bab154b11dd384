"""Evaluate automations: load inputs from the database, call the pure engine, persist decisions as order intents.

The one write path from a decision to an order: ``automation_evaluate`` stores the engine's new memory with a
compare-and-set on ``Automation.version`` (two evaluators of the same tick — two beats, a sweep and a tick — cannot
both win), writes an audit entry per decision and an ``OrderIntent`` per action in the same transaction, and
enqueues the intents' execution only after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, transaction
from django.db.models import F, Model

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
M = TypeVar("M", bound=Model)


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
    wanted = set(account_ids)
    # Unfinished intents are few whatever the number of accounts: read them by state (indexed), not by account.
    rows = (
        OrderIntent.objects.filter(state__in=_UNFINISHED, trade_id__gt="")
        .order_by()
        .values_list("account_id", "trade_id")
    )
    for account_id, trade_id in rows:
        if account_id in wanted:
            pending.setdefault(account_id, set()).add(trade_id)
    return pending


_UNFINISHED = tuple(sorted(set(OrderIntent.State.values) - set(OrderIntent.TERMINAL)))
# The engine's view of each trade, kept with the stored row it was built from: a tick re-reads thousands of unchanged
# rows, and building each view (Decimal checks) cost more than reading it. A changed row is built again.
_TRADE_STATES: dict[tuple[int, str, bool], tuple[tuple[Any, ...], TradeState]] = {}
_TRADE_STATES_MAX = 50_000


def _trade_state_cached(row: tuple[Any, ...], *, manage_external: bool) -> TradeState:
    key = (row[0], row[1], manage_external)
    cached = _TRADE_STATES.get(key)
    if cached is not None and cached[0] == row:
        return cached[1]
    if len(_TRADE_STATES) >= _TRADE_STATES_MAX:
        _TRADE_STATES.clear()
    state = _trade_state(row, manage_external=manage_external)
    _TRADE_STATES[key] = (row, state)
    return state


class AccountFacts(Protocol):
    """What ``account_states_of`` reads of an account (an ``ExchangeAccount``, or the tick path's row)."""

    @property
    def pk(self) -> Any: ...  # noqa: ANN401 - Django's pk
    @property
    def balance(self) -> int | None: ...
    @property
    def manage_external_trades(self) -> bool: ...
    @property
    def entries_halted(self) -> bool: ...
    @property
    def kill_switch(self) -> bool: ...


def account_states_of(accounts: Sequence[AccountFacts], *, global_kill: bool) -> dict[int, AccountState]:
    """The engine's view of several accounts, in two queries: running trades Axisor tracks (minus those with an
    order in flight), free balance, failure breaker and kill switches."""
    ids = [a.pk for a in accounts]
    pending = _pending_trade_ids(ids)
    trades: dict[int, list[tuple[Any, ...]]] = {}
    rows = (
        TrackedTrade.objects.filter(account_id__in=ids, state=TrackedTrade.State.RUNNING)
        .order_by()
        .values_list(*_TRADE_COLUMNS)
    )
    for row in rows:
        if row[1] not in pending.get(row[0], ()):
            trades.setdefault(row[0], []).append(row)
    return {
        a.pk: AccountState(
            balance=int(a.balance or 0),
            trades=tuple(
                _trade_state_cached(t, manage_external=a.manage_external_trades) for t in trades.get(a.pk, [])
            ),
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
    return _spec_for(
        automation.pk, automation.kind, automation.config, automation.memory, automation.max_price_age_seconds
    )


def _spec_for(pk: int, kind: str, config: Any, memory: Any, max_price_age_seconds: int) -> AutomationSpec:  # noqa: ANN401 - stored JSON
    cached = _SPEC_CACHE.get(pk)
    if cached is not None and cached[2] == max_price_age_seconds and cached[0] == config and cached[1] == memory:
        return cached[3]
    spec = AutomationSpec(
        id=pk,
        kind=kind,
        config=config_from_json(kind, config),
        memory=Memory.from_json(memory),
        max_price_age_seconds=max_price_age_seconds,
    )
    if len(_SPEC_CACHE) >= _SPEC_CACHE_MAX:
        _SPEC_CACHE.clear()
    _SPEC_CACHE[pk] = (config, memory, max_price_age_seconds, spec)
    return spec


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
    from automations.tasks import order_intents_enqueue

    order_intents_enqueue(list(intents))


# How many evaluations one transaction records: a crash tick that fires thousands of guards writes them in a few
# transactions instead of one each (the runner's time, not the workers', decided how soon the last order left).
RECORD_BATCH = 200


def _protective_first(item: tuple[Automation, Evaluation]) -> bool:
    """The sort key that puts evaluations with a protective decision first."""
    return not any(d.protective and d.kind in DECISION_PLANS for d in item[1].decisions)


def automations_record_evaluations(pending: Sequence[tuple[Automation, Evaluation]], now: datetime) -> list[int]:
    """Persist evaluations (each: memory CAS, intents, audit entries) in transactions of ``RECORD_BATCH``, the
    ones that protect a trade first; returns the ids of the intents created. A batch that fails in the database is
    rolled back whole and recorded again one evaluation per transaction, so one bad row costs only its own."""
    ordered = sorted(pending, key=_protective_first)  # stable: protective ones first, otherwise as evaluated
    created: list[int] = []
    for start in range(0, len(ordered), RECORD_BATCH):
        batch = ordered[start : start + RECORD_BATCH]
        if len(batch) == 1:
            created += _record_batch(batch, now)
            continue
        try:
            created += _record_batch(batch, now)
        except DatabaseError:
            logger.warning("recording %d evaluations together failed; recording them one by one", len(batch))
            for item in batch:
                created += _record_batch([item], now)
    return created


def automation_record_evaluation(automation: Automation, evaluation: Evaluation, now: datetime) -> list[int]:
    """Persist one evaluation (memory CAS, intents, audit) and enqueue its intents on commit.

    Returns the ids of the intents created; an empty list when another evaluator already stored this version.
    """
    return _record_batch([(automation, evaluation)], now)


def _store_memory(automation: Automation, evaluation: Evaluation, now: datetime) -> bool:
    """The compare-and-set on ``Automation.version``: False when another evaluator stored this version first (or
    the automation is no longer active)."""
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
    won = Automation.objects.filter(pk=automation.pk, version=automation.version, status=Automation.Status.ACTIVE)
    return won.update(**fields) == 1


def _record_batch(batch: Sequence[tuple[Automation, Evaluation]], now: datetime) -> list[int]:
    """One transaction: each evaluation's CAS, then the intents and audit entries of those that won, in bulk; the
    intents are queued after the commit, before the dashboards hear of the entries."""
    with transaction.atomic():
        won = [
            (automation, evaluation) for automation, evaluation in batch if _store_memory(automation, evaluation, now)
        ]
        planned = [
            (automation, decision, _intent_for(decision, automation))
            for automation, evaluation in won
            for decision in evaluation.decisions
        ]
        intents = OrderIntent.objects.bulk_create([intent for _, _, intent in planned if intent is not None])
        entries = AuditEntry.objects.bulk_create(
            [_audit_decision(automation, decision, intent) for automation, decision, intent in planned]
        )
        queued = [(i.pk, i.protective) for i in intents]
        if queued:
            transaction.on_commit(lambda: enqueue_intents(queued))
        for (automation, _, _), entry in zip(planned, entries, strict=True):
            publish_automation_log_on_commit(entry.pk, automation.account_id, automation.account.owner_id)
        for automation, evaluation in won:
            if evaluation.completed:
                publish_automations_changed_on_commit(automation.account_id)
    for automation, _ in won:
        automation.version += 1
    return [i.pk for i in intents]


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
    return automations_record_evaluations(_evaluations(automations, market, state, now), now)


def _evaluations(
    automations: Iterable[Automation | _AutomationRow],
    market: MarketSnapshot,
    state: AccountState,
    now: datetime,
) -> list[tuple[Automation, Evaluation]]:
    """The engine's evaluation of each automation that has something to record (decisions, new memory, done).
    An automation whose stored config is invalid, or that makes the engine fail, goes to ``error`` here. A row of
    the tick path becomes a model instance only then."""
    out: list[tuple[Automation, Evaluation]] = []
    for item in automations:
        try:
            spec = spec_of(item) if isinstance(item, Automation) else _spec_for(*item[:5])
        except SpecError as exc:
            _mark_error(_as_model(item), say("invalid_settings", error=str(exc)))
            continue
        try:
            evaluation = evaluate_safe(spec, market, state, now)
        except EngineError as exc:
            _mark_error(_as_model(item), say("evaluation_failed", error=str(exc)))
            continue
        if evaluation.decisions or evaluation.memory is not spec.memory or evaluation.completed:
            out.append((_as_model(item), evaluation))
    return out


# What the tick path reads of each active automation and its account, as plain tuples: building thousands of model
# instances per tick cost more than the query. The first five are ``_spec_for``'s arguments.
_AUTOMATION_ROW = ("id", "kind", "config", "memory", "max_price_age_seconds", "version", "account_id", "name")
_ACCOUNT_ROW = (
    "account__owner_id",
    "account__balance",
    "account__manage_external_trades",
    "account__entries_halted",
    "account__kill_switch",
)
_AutomationRow = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _AccountRow:
    """The account facts the engine needs (``account_states_of``) and the owner its events go to."""

    pk: int
    owner_id: int
    balance: int | None
    manage_external_trades: bool
    entries_halted: bool
    kill_switch: bool


def _loaded(model: type[M], values: dict[str, Any]) -> M:
    """An instance of ``model`` as the database loaded it with only these columns (the others deferred)."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(DEFAULT_DB_ALIAS, names, [values[name] for name in names])


def _as_model(item: Automation | _AutomationRow) -> Automation:
    """The model instance of an automation row (its account's owner attached, the rest of the account deferred)."""
    if isinstance(item, Automation):
        return item
    columns = dict(zip(_AUTOMATION_ROW, item, strict=False))
    automation = _loaded(Automation, {**columns, "status": Automation.Status.ACTIVE})
    owner_id = item[len(_AUTOMATION_ROW)]
    account = _loaded(ExchangeAccount, {"id": columns["account_id"], "owner_id": owner_id})
    Automation.account.field.set_cached_value(automation, account)
    return automation


def automations_evaluate_network(*, network: str, market: MarketSnapshot, now: datetime) -> list[int]:
    """Evaluate the active automations of every enabled account on ``network`` (one query for all of them)."""
    rows = (
        Automation.objects.filter(status=Automation.Status.ACTIVE, account__network=network, account__is_enabled=True)
        .order_by("account_id", "id")
        .values_list(*_AUTOMATION_ROW, *_ACCOUNT_ROW)
    )
    by_account: dict[int, list[_AutomationRow]] = {}
    accounts: dict[int, _AccountRow] = {}
    for row in rows:
        account_id = row[6]
        by_account.setdefault(account_id, []).append(row)
        if account_id not in accounts:
            accounts[account_id] = _AccountRow(account_id, *row[len(_AUTOMATION_ROW) :])
    states = account_states_of(list(accounts.values()), global_kill=GlobalSwitch.is_on())
    pending: list[tuple[Automation, Evaluation]] = []
    for account_id, automations in by_account.items():
        pending += _evaluations(automations, market, states[account_id], now)
    return automations_record_evaluations(pending, now)


def automation_preview(*, automation: Automation, market: MarketSnapshot, now: datetime) -> Evaluation:
    """What ``automation`` would decide right now (nothing is stored or sent). Raises ``SpecError``/``EngineError``."""
    spec = spec_of(automation)
    return evaluate_safe(spec, market, account_state_of(automation.account), now)
