"""The pure decision engine of the three automations (the semantics below; docs/architecture.md, flow 1).

``evaluate(spec, market, account, now) -> Evaluation`` looks at one automation, the latest market snapshot and the
exchange account, and returns the decisions to take plus the automation's updated memory. It has no ORM, no network,
no clock (``now`` is passed in) and no Django import; ``evaluate_safe`` wraps it for the service layer (house
rule 2, docs/architecture.md). Each kind's evaluator lives in its module (``automations.kinds.<kind>``, registered in
``automations.kinds``); what they share is in ``automations.engine_common``. The input and output types
(``automations.specs``, ``automations.decisions``, the kinds' configs) are re-exported here, so
``from automations.engine import ...`` is the one import the rest of the project needs.

Semantics that the service layer relies on (each one is tested in ``tests/automations``):

Prices
  * TP/SL marks a trade at the bid of its size bucket for a long and the ask for a short (``market.quote_for``).
  * Margin Guard marks at the worse of the last price and that quote: long ``min(last, bid)``, short
    ``max(last, ask)``, so a guard never waits for the better of two prices (docs/protocol.md §9.4).
  * Distance to liquidation is *signed*: long ``(mark − liq) / mark``, short ``(liq − mark) / mark``, in percent; a
    trade already past its liquidation price has a negative distance and is always triggered.
  * SL/TP rules are checked against the stricter of the bucket quote and the top-level quote.
  * Staleness: a snapshot is stale when ``now − market.time > max_price_age_seconds`` (exactly at the limit is
    fresh). Entries are never made on a stale price (``Skip``); protective kinds act anyway and record the age in
    ``inputs["price_age_s"]`` / ``inputs["stale"]``.

Margin Guard
  * Triggered when margin ratio ≥ X or distance ≤ Y, both inclusive.
  * Once per crossing, with a cooldown: after an action on a trade the guard proposes nothing more for that trade
    until ``cooldown_seconds`` have passed since the action AND time has actually moved on (``now`` strictly later:
    a zero cooldown still never decides twice at the same ``now``). After that, if the trade is still triggered, it
    acts again (a failed close is retried, a too-small addition is topped up within the cap).
  * reduce by P %: ``close_quantity = ceil(quantity × P / 100)`` (round toward safety: at least P % goes),
    ``reopen_quantity = quantity − close_quantity``; if that is < 1 USD the decision is a full ``ClosePosition``.
    The reopen keeps side and current leverage (clamped to 1..100); an SL/TP that the reopened trade would be refused
    (estimated fill and initial liquidation from the bucket quote) is dropped and reported in ``inputs``.
  * add_margin: fixed sats, or the least sats that bring the distance back to ``target_distance`` (the liquidation
    after the addition, with LN Markets' rounding, is at or beyond ``mark × (1 ∓ target)``; rounded up to whole
    sats). The amount is then limited by the free balance (shared across the trades of one evaluation), by
    ``max_added_per_trade − already added`` and by leverage ≥ 1 (``margin ≤ quantity × SATS / entry``). A partial
    amount is still proposed (``inputs["limited_by"]``); nothing left → ``Skip``. Memory counts the proposed amount
    at once (conservative: a failed addition still uses the cap), and holds the last addition of each trade back
    from the free balance while that trade is in its cooldown (the account state may not show it yet).

TP/SL
  * PnL % = pnl(sats, at the mark) / margin × 100; profit fires at ≥ +X, loss at ≤ −X (signed, never ``abs``).
  * Fires once per trade: when an action is proposed (or the trade already has exactly the requested value), the
    trade is marked ``fired``. When the action is refused by the rules (wrong side, crosses liquidation…), a ``Skip``
    is emitted and the trigger stays pending: it is tried again on the next evaluations while the trigger holds.
  * set_stoploss / set_takeprofit propose the configured price as is, after checking the rules; break-even and
    trailing only ever tighten a stop-loss.
  * Break-even (see :func:`breakeven_stoploss`): the stop where closing covers the opening fee plus a Tier-1 closing
    fee, rounded to the tick away from the entry (up for a long, down for a short).
  * Trailing: from the trigger on, track the best mark (highest bid for a long, lowest ask for a short); the stop is
    ``best − distance`` rounded down (long) / ``best + distance`` rounded up (short) and is proposed only when it
    tightens both the exchange's current stop and the last one proposed by at least one tick.

Auto Entry
  * ``immediate``, ``price_below`` (last ≤ P) or ``price_above`` (last ≥ P), on the ticker's last price.
  * Blocked, with a ``Skip``, by the kill switch, the account's failure breaker, a stale price, a size outside
    1..500 000 USD, a free balance below margin + Tier-1 opening and closing fee reserves, or an SL/TP the order would
    be refused for (checked against the estimated fill and initial liquidation).
  * After a fire: ``completed`` once ``1 + repeat_count`` fires are used. Otherwise it re-arms when
    ``repeat_cooldown_seconds`` have passed since the last fire (and ``now`` moved on) AND, for price triggers, a
    fresh price has been seen outside the trigger zone since that fire (the price left and came back). Stale prices
    never re-arm.

Skips and memory
  * A ``Skip`` is emitted once per reason per crossing (``TradeMemory.skip`` / ``Memory.skip`` hold its code), so a
    lasting condition writes one audit entry, not one per tick; the code is cleared when the trigger clears or an
    action is proposed.
  * The returned memory already includes the decisions; evaluating again with it at the same ``now`` decides
    nothing new. When nothing changed it is the very same object (``evaluation.memory is spec.memory``).
  * Memory of a trade no longer running is dropped once it holds no action or its last action is older than
    ``MEMORY_RETENTION`` (one day), so a momentarily incomplete trade list cannot reset caps or fired flags at once.
"""

from __future__ import annotations

from datetime import datetime

from automations.decisions import (
    AddMargin,
    ClosePosition,
    Decision,
    Evaluation,
    OpenPosition,
    ReducePosition,
    SetStopLoss,
    SetTakeProfit,
    Skip,
)
from automations.engine_common import (
    MEMORY_RETENTION,
    Context,
    EngineError,
    breakeven_stoploss,
    check_stoploss,
    check_takeprofit,
    stoploss_from_percent,
    takeprofit_from_percent,
)
from automations.kinds import kind_of_config
from automations.kinds.auto_entry import AutoEntryConfig
from automations.kinds.margin_guard import MarginGuardConfig, margin_to_restore_distance
from automations.kinds.tpsl import TpSlConfig
from automations.specs import (
    AccountState,
    AutomationSpec,
    Bucket,
    MarketSnapshot,
    Memory,
    SpecError,
    TradeMemory,
    TradeState,
)

# --- entry points ----------------------------------------------------------------------------------------------------


def evaluate(spec: AutomationSpec, market: MarketSnapshot, account: AccountState, now: datetime) -> Evaluation:
    """Decide what ``spec`` should do now, given the latest ``market`` snapshot and the exchange ``account``.

    Pure and deterministic: no I/O, no clock. ``now`` must be timezone-aware. Returns the decisions (protective ones
    and Skips included, for the audit log), the updated memory (persist it before executing the decisions), and
    ``completed`` (Auto Entry only). Idempotent: calling again with the returned memory at the same ``now`` decides
    nothing new. Raises ``SpecError`` for a naive ``now``; any other exception is a bug (use :func:`evaluate_safe`).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise SpecError("now", "now must be a timezone-aware datetime.")
    config = spec.config
    return kind_of_config(config).evaluate(Context(spec, market, now), config, account, spec.memory)


def evaluate_safe(spec: AutomationSpec, market: MarketSnapshot, account: AccountState, now: datetime) -> Evaluation:
    """:func:`evaluate`, with any exception turned into :class:`EngineError` (chained) for the service to record."""
    try:
        return evaluate(spec, market, account, now)
    except Exception as exc:
        raise EngineError(spec.id, f"{type(exc).__name__}: {exc}") from exc


__all__ = [
    "MEMORY_RETENTION",
    "AccountState",
    "AddMargin",
    "AutoEntryConfig",
    "AutomationSpec",
    "Bucket",
    "ClosePosition",
    "Decision",
    "EngineError",
    "Evaluation",
    "MarginGuardConfig",
    "MarketSnapshot",
    "Memory",
    "OpenPosition",
    "ReducePosition",
    "SetStopLoss",
    "SetTakeProfit",
    "Skip",
    "SpecError",
    "TpSlConfig",
    "TradeMemory",
    "TradeState",
    "breakeven_stoploss",
    "check_stoploss",
    "check_takeprofit",
    "evaluate",
    "evaluate_safe",
    "margin_to_restore_distance",
    "stoploss_from_percent",
    "takeprofit_from_percent",
]
