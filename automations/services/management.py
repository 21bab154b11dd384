"""Manage automations and kill switches from the web UI and the admin; build the "what would it do now" preview.

Every mutation here writes an ``AuditEntry`` (event ``status``, outcome ``info``) that says what changed, in the same
transaction as the change. Status changes are compare-and-set ``UPDATE``s that also bump ``Automation.version``, so
an evaluation that loaded the automation before the change loses its own compare-and-set
(``services.evaluation.automation_record_evaluation``) and cannot record decisions taken on the old settings.

Nothing here talks to the exchange except :func:`preview_market`, which reads a ticker (never an account) and sends
nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import transaction
from django.db.models import F

from accounts.models import ExchangeAccount, User
from automations.actions import decision_label
from automations.audit_text import say
from automations.configs import config_to_json
from automations.engine import (
    EngineError,
    Evaluation,
    MarketSnapshot,
    Memory,
    SpecError,
)
from automations.exchange import public_client
from automations.kinds import kind_for, kind_of_config
from automations.models import AuditEntry, Automation, GlobalSwitch, TrackedTrade
from automations.services.evaluation import automation_preview, market_from_ticker
from automations.specs import PRICE_AGE_DEFAULT_SECONDS, AutomationConfig, AutomationKind, JSONValue, check_price_age
from lnmarkets.exceptions import LNMarketsError
from lnmarkets.feed import get_market_feed

logger = logging.getLogger(__name__)


class AutomationStateError(ValueError):
    """The automation is not in a state that allows the requested change (e.g. resuming an active one)."""


def _audit(
    *,
    account_id: int,
    message: str,
    automation: Automation | None = None,
    inputs: dict[str, JSONValue] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        account_id=account_id,
        automation=automation,
        kind=automation.kind if automation is not None else "",
        event=AuditEntry.Event.STATUS,
        outcome=AuditEntry.Outcome.INFO,
        message=message[:500],
        inputs=inputs or {},
    )


# --- automations ------------------------------------------------------------------------------------------------------


def automation_create(
    *,
    account: ExchangeAccount,
    name: str,
    kind: AutomationKind | str,
    config: AutomationConfig,
    max_price_age_seconds: int = PRICE_AGE_DEFAULT_SECONDS,
) -> Automation:
    """Create an ``active`` automation of ``account`` with an empty memory, storing ``config_to_json(config)``.

    ``config`` is an already validated engine config; ``kind`` must match its type. Raises ``SpecError`` (naming the
    field) on a kind/config mismatch or a price age outside 1..3600 s. Writes one audit entry. The automation is
    picked up by the next evaluation (tick or sweep); nothing is sent here.
    """
    if kind_of_config(config).key != kind:
        raise SpecError("kind", f"Kind {kind!r} does not match a {type(config).__name__}.")
    check_price_age(max_price_age_seconds)
    with transaction.atomic():
        automation = Automation.objects.create(
            account=account,
            name=name,
            kind=kind,
            config=config_to_json(config),
            memory={},
            max_price_age_seconds=max_price_age_seconds,
            status=Automation.Status.ACTIVE,
        )
        said = say("automation_created", name=name, kind=automation.kind)
        _audit(
            account_id=account.pk,
            automation=automation,
            message=said.english,
            inputs=said.inputs({"config": automation.config, "max_price_age_seconds": max_price_age_seconds}),
        )
    return automation


def _memory_after_edit(
    automation: Automation, old: dict[str, JSONValue], new: dict[str, JSONValue]
) -> tuple[Memory | None, bool]:
    """The memory to store after an edit (``None``: keep the stored one untouched) and whether it was reset.

    Memory records what the automation already did: cooldowns, margin added against the per-trade cap, TP/SL
    "fired" flags and trailing state, Auto Entry's fire count. Forgetting it could make the automation act twice
    (a second margin addition inside the cooldown, entries beyond the repeat count), so it is kept, with two
    exceptions: a TP/SL whose rule changed (direction, trigger, action, price, trailing distance) starts with an empty
    memory, because it is a new rule that should fire on trades the old rule already handled; and any config change
    clears the per-reason skip codes, so the first skip under the new settings is logged. An unreadable stored memory
    is reset.
    """
    if old == new:
        return None, False
    if any(old.get(f) != new.get(f) for f in kind_for(automation.kind).rule_fields):
        return Memory(), True
    try:
        memory = Memory.from_json(automation.memory)
    except SpecError:
        return Memory(), True
    trades = {tid: replace(tm, skip=None) for tid, tm in memory.trades.items()}
    return replace(memory, trades=trades, skip=None), False


def automation_update(
    *,
    automation: Automation,
    name: str,
    config: AutomationConfig,
    max_price_age_seconds: int,
) -> Automation:
    """Save new settings of ``automation`` (its kind and account never change) and bump its ``version``.

    Memory is kept unless the config changed in a way that makes it a new rule (see ``_memory_after_edit``). The
    status is not changed: a paused automation stays paused. Raises ``SpecError`` if ``config`` is of another kind.
    Writes one audit entry with the old and new config. Returns the refreshed automation.
    """
    if kind_of_config(config).key != automation.kind:
        raise SpecError("kind", "The kind of an automation cannot change; create a new one instead.")
    check_price_age(max_price_age_seconds)
    new_config = config_to_json(config)
    old_config: dict[str, JSONValue] = dict(automation.config) if isinstance(automation.config, dict) else {}
    memory, reset = _memory_after_edit(automation, old_config, new_config)
    fields: dict[str, object] = {
        "name": name,
        "config": new_config,
        "max_price_age_seconds": max_price_age_seconds,
        "version": F("version") + 1,
    }
    if memory is not None:
        fields["memory"] = memory.to_json()
    with transaction.atomic():
        Automation.objects.filter(pk=automation.pk).update(**fields)
        automation.refresh_from_db()
        changes = "settings changed" if old_config != new_config else "settings unchanged"
        said = say("automation_edited_reset" if reset else "automation_edited", name=name, changes=changes)
        _audit(
            account_id=automation.account_id,
            automation=automation,
            message=said.english,
            inputs=said.inputs(
                {"old_config": old_config, "new_config": new_config, "max_price_age_seconds": max_price_age_seconds}
            ),
        )
    return automation


def _set_status(
    automation: Automation, *, allowed: tuple[str, ...], status: str, message: str, audit: str
) -> Automation:
    with transaction.atomic():
        changed = Automation.objects.filter(pk=automation.pk, status__in=allowed).update(
            status=status, status_message=message, version=F("version") + 1
        )
        if changed != 1:
            automation.refresh_from_db()
            raise AutomationStateError(
                f"“{automation.name}” is {automation.get_status_display().lower()}; it cannot be {audit} now."
            )
        automation.refresh_from_db()
        said = say(f"automation_{audit}", name=automation.name)
        _audit(account_id=automation.account_id, automation=automation, message=said.english, inputs=said.inputs())
    return automation


def automation_pause(*, automation: Automation) -> Automation:
    """Pause an ``active`` or ``error`` automation (compare-and-set); it takes no decision until resumed.

    Intents already created keep executing (a close in flight is never abandoned). Raises
    ``AutomationStateError`` for a paused or completed automation. Writes one audit entry.
    """
    return _set_status(
        automation,
        allowed=(Automation.Status.ACTIVE, Automation.Status.ERROR),
        status=Automation.Status.PAUSED,
        message="Paused by the user.",
        audit="paused",
    )


def automation_resume(*, automation: Automation) -> Automation:
    """Make a ``paused`` or ``error`` automation ``active`` again and clear its status message (compare-and-set).

    Raises ``AutomationStateError`` for an active or completed automation. Writes one audit entry. If its stored
    settings are still invalid, the next evaluation puts it back in ``error`` with the reason.
    """
    return _set_status(
        automation,
        allowed=(Automation.Status.PAUSED, Automation.Status.ERROR),
        status=Automation.Status.ACTIVE,
        message="",
        audit="resumed",
    )


def automation_delete(*, automation: Automation) -> None:
    """Delete ``automation``. Its audit entries and order intents stay (their link becomes empty); intents already
    created still execute. Writes one audit entry naming the deleted automation."""
    with transaction.atomic():
        said = say("automation_deleted", name=automation.name, kind=automation.kind)
        _audit(
            account_id=automation.account_id,
            message=said.english,
            inputs=said.inputs({"automation_id": automation.pk, "config": automation.config}),
        )
        automation.delete()


# --- switches ---------------------------------------------------------------------------------------------------------


RESUME_HALT = "the kill switch was turned off: entries resume once the account is reconciled"


def _halt_until_reconciled(account_ids: list[int]) -> None:
    """Turning a kill switch off resumes entries only after a fresh reconciliation (docs/reliability.md T16): halt the
    accounts' entries now and queue their reconciliation, which lifts the halt when it succeeds."""
    from automations.tasks import account_reconcile_task

    ExchangeAccount.objects.filter(pk__in=account_ids).update(entries_halted=True, halt_reason=RESUME_HALT)

    def queue() -> None:
        for account_id in account_ids:
            account_reconcile_task.delay(account_id)

    transaction.on_commit(queue)


def account_kill_switch_set(*, account: ExchangeAccount, on: bool) -> ExchangeAccount:
    """Turn the account's kill switch on (no new entries, at once, even for queued tasks; closes and protective
    actions still run) or off. Turning it off halts entries until a fresh reconciliation of the account has
    succeeded (queued at once). Writes one audit entry."""
    with transaction.atomic():
        ExchangeAccount.objects.filter(pk=account.pk).update(kill_switch=on)
        account.kill_switch = on
        if not on:
            _halt_until_reconciled([account.pk])
            account.entries_halted, account.halt_reason = True, RESUME_HALT
        said = say("kill_switch_on" if on else "kill_switch_off", account=account.label)
        _audit(account_id=account.pk, message=said.english, inputs=said.inputs({"kill_switch": on}))
    return account


def global_kill_switch_set(*, on: bool, reason: str = "", actor: User | None = None) -> GlobalSwitch:
    """Turn the system-wide kill switch (row id 1) on or off, with an optional reason (≤ 300 characters).

    While on, no new entry is sent for anyone; closes and protective actions still run. Turned off, each enabled
    account's entries resume after its own fresh reconciliation (queued at once). Because every audit entry
    belongs to an account, one entry per exchange account is written so that every user sees it in their log.
    """
    reason = reason.strip()[:300]
    with transaction.atomic():
        switch, _ = GlobalSwitch.objects.select_for_update().get_or_create(pk=1)
        switch.kill_switch = on
        switch.reason = reason
        switch.save(update_fields=["kill_switch", "reason", "updated_at"])
        if not on:
            _halt_until_reconciled(list(ExchangeAccount.objects.filter(is_enabled=True).values_list("pk", flat=True)))
        who = actor.get_username() if actor is not None else "an administrator"
        key = ("global_kill_switch_on" if on else "global_kill_switch_off") + ("_reason" if reason else "")
        said = say(key, who=who, reason=reason)
        message = said.english
        AuditEntry.objects.bulk_create(
            (
                AuditEntry(
                    account_id=account_id,
                    event=AuditEntry.Event.STATUS,
                    outcome=AuditEntry.Outcome.INFO,
                    message=message[:500],
                    inputs=said.inputs({"global_kill_switch": on}),
                )
                for account_id in ExchangeAccount.objects.values_list("pk", flat=True).iterator()
            ),
            batch_size=500,
        )
    logger.warning("global kill switch set to %s by %s", "on" if on else "off", who)
    return switch


def account_manage_external_set(*, account: ExchangeAccount, on: bool) -> ExchangeAccount:
    """Let automations manage trades opened outside Axisor on ``account`` (``on``), or stop (``off``: such trades are
    shown but never touched; trades Axisor opened are unaffected). Writes one audit entry."""
    with transaction.atomic():
        ExchangeAccount.objects.filter(pk=account.pk).update(manage_external_trades=on)
        account.manage_external_trades = on
        said = say("manage_external_on" if on else "manage_external_off", account=account.label)
        _audit(account_id=account.pk, message=said.english, inputs=said.inputs({"manage_external_trades": on}))
    return account


def tracked_trade_managed_set(*, trade: TrackedTrade, on: bool) -> TrackedTrade:
    """Opt one tracked trade in to (or out of) management by automations. Writes one audit entry."""
    with transaction.atomic():
        TrackedTrade.objects.filter(pk=trade.pk).update(managed=on)
        trade.managed = on
        said = say("trade_managed_on" if on else "trade_managed_off", trade=trade.trade_id)
        _audit(
            account_id=trade.account_id,
            message=said.english,
            inputs=said.inputs({"trade_id": trade.trade_id, "managed": on}),
        )
    return trade


# --- preview ----------------------------------------------------------------------------------------------------------


def preview_market(network: str) -> MarketSnapshot | None:
    """The freshest LN Markets ticker of ``network`` for a preview, or ``None`` when no price is available.

    The process-wide market feed's latest ticker when the feed is live or on its HTTP fallback; otherwise one REST
    ``GET /v3/futures/ticker`` (with the client's timeout). Tests replace this function.
    """
    feed = get_market_feed(network)
    latest = feed.latest()
    if latest is not None and feed.state != "stale":
        market = market_from_ticker(latest)
        if market is not None:
            return market
    try:
        ticker = public_client(network).futures_ticker_get()
    except LNMarketsError as exc:
        logger.info("preview: no ticker for %s: %s", network, exc)
        return None
    return market_from_ticker(ticker)


_NOT_DETAILS = frozenset({"kind", "protective", "inputs", "reason"})


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One decision of a preview, flattened for display: what, why, its parameters and the inputs it was taken on."""

    kind: str
    label: str
    reason: str
    protective: bool
    details: list[tuple[str, str]]
    inputs: list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Preview:
    """What an automation would decide now: the market used (``None`` = no live price), the evaluation, or an error
    message when its stored settings are invalid or the engine failed."""

    market: MarketSnapshot | None
    evaluation: Evaluation | None
    error: str
    now: datetime

    @property
    def price_age_seconds(self) -> float | None:
        return None if self.market is None else (self.now - self.market.time).total_seconds()

    @property
    def decision_rows(self) -> list[DecisionRow]:
        rows: list[DecisionRow] = []
        for decision in self.evaluation.decisions if self.evaluation is not None else ():
            data = decision.to_json()
            rows.append(
                DecisionRow(
                    kind=decision.kind,
                    label=decision_label(decision.kind),
                    reason=str(data.get("reason") or ""),
                    protective=decision.protective,
                    details=[(k, str(v)) for k, v in data.items() if k not in _NOT_DETAILS and v is not None],
                    inputs=sorted(decision.inputs.items()),
                )
            )
        return rows


def automation_preview_now(*, automation: Automation, now: datetime) -> Preview:
    """Evaluate ``automation`` on the current price without storing or sending anything (see ``preview_market``)."""
    market = preview_market(automation.account.network)
    if market is None:
        return Preview(market=None, evaluation=None, error="", now=now)
    try:
        evaluation = automation_preview(automation=automation, market=market, now=now)
    except SpecError as exc:
        return Preview(market=market, evaluation=None, error=f"Its stored settings are invalid: {exc}", now=now)
    except EngineError as exc:
        return Preview(market=market, evaluation=None, error=f"The engine could not evaluate it: {exc}", now=now)
    return Preview(market=market, evaluation=evaluation, error="", now=now)


__all__ = [
    "AutomationStateError",
    "DecisionRow",
    "Preview",
    "account_kill_switch_set",
    "account_manage_external_set",
    "automation_create",
    "automation_delete",
    "automation_pause",
    "automation_preview_now",
    "automation_resume",
    "automation_update",
    "global_kill_switch_set",
    "preview_market",
    "tracked_trade_managed_set",
]
