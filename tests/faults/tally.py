"""What the battery counts, per scenario and in all: trials, duplicate orders, lost intents, misattributed closes
and the slowest time to a terminal state. ``make faults`` prints the total as its last line."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automations.models import AuditEntry, OrderIntent, TrackedTrade
from tests.faults.report import artifacts_dir


@dataclass
class Result:
    scenario: str
    trials: int = 0
    duplicates: int = 0
    lost: int = 0
    misattributed: int = 0
    max_terminal_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def ok(self) -> bool:
        return self.duplicates == 0 and self.lost == 0 and self.misattributed == 0 and self.max_terminal_s <= 120


@dataclass
class Tally:
    results: list[Result] = field(default_factory=list)

    def add(self, result: Result) -> None:
        self.results.append(result)

    def total(self) -> dict[str, Any]:
        return {
            "trials": sum(r.trials for r in self.results),
            "duplicates": sum(r.duplicates for r in self.results),
            "lost": sum(r.lost for r in self.results),
            "misattributed": sum(r.misattributed for r in self.results),
            "max_terminal_s": round(max((r.max_terminal_s for r in self.results), default=0.0), 1),
        }

    def result_line(self) -> str:
        return "RESULT " + " ".join(f"{k}={v}" for k, v in self.total().items())

    def write(self) -> Path:
        path = artifacts_dir() / "result.json"
        data = {"total": self.total(), "scenarios": [asdict(r) for r in self.results]}
        path.write_text(json.dumps(data, indent=2))
        return path


def exchange_trades(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [trade for account in state["accounts"] for trade in account["trades"]]


def judge(scenario: str, intents: list[OrderIntent], state: dict[str, Any], **expected: Any) -> Result:  # noqa: ANN401
    """Count the outcome of ``intents`` against the exchange's own state (``control.state()``).

    * duplicate: more than one exchange trade carries an open intent's ``clientId``; a margin addition applied more
      than once (the trade's margin grew by more than the intent's amount);
    * lost: an intent not terminal, or one that claims success the exchange does not show (an open reconciled
      without its trade, a close reconciled while the trade still runs), or a failure the exchange contradicts;
    * misattributed: a trade an intent of ours closed, recorded as closed outside Axisor.
    """
    result = Result(scenario=scenario, trials=len(intents))
    by_client = Counter(t.get("clientId") for t in exchange_trades(state) if t.get("clientId"))
    trades = {t["id"]: t for t in exchange_trades(state)}
    for intent in intents:
        intent.refresh_from_db()
        if not intent.is_terminal:
            result.lost += 1
            result.notes.append(f"intent {intent.pk} {intent.action} left {intent.state}: {intent.error}")
            continue
        assert intent.finished_at is not None
        result.max_terminal_s = max(result.max_terminal_s, (intent.finished_at - intent.created_at).total_seconds())
        _judge_one(result, intent, by_client, trades)
    result.max_terminal_s = round(result.max_terminal_s, 1)
    return result


def _judge_one(result: Result, intent: OrderIntent, by_client: Counter[Any], trades: dict[str, Any]) -> None:
    done = intent.state == OrderIntent.State.RECONCILED
    if intent.action == OrderIntent.Action.OPEN:
        count = by_client[intent.client_id]
        result.duplicates += max(0, count - 1)
        if done != (count >= 1):
            result.lost += 1
            result.notes.append(f"open {intent.pk} is {intent.state} but the exchange has {count} trade(s)")
        return
    trade = trades.get(intent.trade_id)
    if intent.action == OrderIntent.Action.CLOSE:
        running = trade is not None and trade.get("running")
        if done == bool(running):
            result.lost += 1
            result.notes.append(f"close {intent.pk} is {intent.state}; trade running={running}")
        if done and _outside(intent):
            result.misattributed += 1
            result.notes.append(f"close {intent.pk}: trade {intent.trade_id} recorded as closed outside Axisor")
            result.notes.extend(_story(intent))
        return
    if intent.action == OrderIntent.Action.ADD_MARGIN and trade is not None and "margin_before" in intent.params:
        added = int(trade["margin"]) - int(intent.params["margin_before"])
        amount = int(intent.params["amount"])
        if added > amount:
            result.duplicates += 1
            result.notes.append(f"add-margin {intent.pk}: {added} sats added for {amount}")
        if done != (added >= amount):
            result.lost += 1
            result.notes.append(f"add-margin {intent.pk} is {intent.state}; {added} of {amount} sats added")


def _outside(intent: OrderIntent) -> bool:
    outside = AuditEntry.objects.filter(account_id=intent.account_id, message__contains=f"Trade {intent.trade_id} was")
    row = TrackedTrade.objects.filter(account_id=intent.account_id, trade_id=intent.trade_id).first()
    plain = row is not None and row.closed_reason in ("", "closed")
    return outside.filter(message__contains="outside Axisor").exists() or (
        plain and intent.result.get("note", "").startswith("confirmed") and not row.closed_by_axisor  # type: ignore[union-attr]
    )


def _story(intent: OrderIntent) -> list[str]:
    """What the database says about a misattributed trade: every intent and audit entry that names it."""
    lines = []
    for other in OrderIntent.objects.filter(account_id=intent.account_id, trade_id=intent.trade_id).order_by("pk"):
        finished = other.finished_at.strftime("%H:%M:%S.%f") if other.finished_at else "-"
        lines.append(
            f"  intent {other.pk} {other.action} {other.state} attempts={other.attempts} sends={other.sends} "
            f"created={other.created_at:%H:%M:%S.%f} finished={finished} "
            f"error={other.error!r} note={other.result.get('note', '')!r}"
        )
    for entry in AuditEntry.objects.filter(account_id=intent.account_id, message__contains=intent.trade_id).order_by(
        "pk"
    ):
        lines.append(f"  audit {entry.created_at:%H:%M:%S.%f} {entry.message}")
    row = TrackedTrade.objects.filter(account_id=intent.account_id, trade_id=intent.trade_id).first()
    if row is not None:
        lines.append(f"  tracked {row.state} reason={row.closed_reason!r} by_axisor={row.closed_by_axisor}")
    return lines
