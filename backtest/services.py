"""Backtest services: create a run, load its history, replay it a configuration at a time, store the results.

A run is worked through in steps, each its own Celery task on the default queue at low priority: step 0 loads the
history (exchange candles, a scenario, or the stored CSV upload) and replays the baseline; step k replays the k-th
configuration. Between steps the worker is free for other work (the embedded default has one worker thread, which
also executes protective orders). Progress is written on the run row, throttled; the page polls it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.configs import config_from_json, config_to_json
from automations.engine import EngineError
from automations.models import Automation, TrackedTrade
from automations.specs import JSONValue, SpecError
from backtest.history import (
    History,
    HistoryError,
    build,
    downsample,
    from_candles,
    ms_of,
    pack,
    price_of,
    to_half_ticks,
    unpack,
)
from backtest.models import BacktestResult, BacktestRun
from backtest.replay import Candidate, Portfolio, ReplayError, ReplayResult, Rules, TradeSpec, replay
from backtest.report import actions_json, chart_json, summary
from backtest.scenarios import scenario_history
from lnmarkets.exceptions import LNMarketsError
from lnmarkets.maths import TIER_FEE_RATES, round_to_tick

logger = logging.getLogger(__name__)

MAX_CONFIGS = 10
MAX_EXCHANGE_CANDLES = 600_000
EXCHANGE_PAGE = 1000
FETCH_PAGES_PER_STEP = 20  # one task fetches at most this many pages (the public limit is 1 request a second)
FETCH_STEP = -1  # the step number of "go on fetching the exchange's candles"
RESOLUTION_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400}
PROGRESS_EVERY_S = 0.5
STALLED_AFTER_S = 15 * 60


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The portfolio and the rules of a run, as stored in ``BacktestRun.settings``."""

    balance: int
    trades: tuple[TradeSpec, ...]
    rebase: bool
    funding_rate: Decimal
    fee_tier: int
    latency_ms: int

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "balance": self.balance,
            "rebase": self.rebase,
            "funding_rate": str(self.funding_rate),
            "fee_tier": self.fee_tier,
            "latency_ms": self.latency_ms,
            "trades": [_trade_json(t) for t in self.trades],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunSettings:
        return cls(
            balance=int(data["balance"]),
            trades=tuple(_trade_from_json(t) for t in data.get("trades", [])),
            rebase=bool(data.get("rebase", True)),
            funding_rate=Decimal(str(data.get("funding_rate", "0.0001"))),
            fee_tier=int(data.get("fee_tier", 1)),
            latency_ms=int(data.get("latency_ms", 1000)),
        )

    def rules(self) -> Rules:
        return Rules(
            funding_rate=self.funding_rate,
            fee_rate=TIER_FEE_RATES[self.fee_tier - 1],
            latency_ms=self.latency_ms,
        )

    def portfolio(self, history: History) -> Portfolio:
        """The trades as the replay takes them; rebased ones open at the history's first price (same side,
        quantity and leverage; SL/TP kept at the same distance in percent from the entry)."""
        if not self.rebase:
            return Portfolio(self.balance, self.trades)
        first = price_of(history.first_price())
        trades = []
        for trade in self.trades:
            entry = trade.entry_price
            stoploss, takeprofit = trade.stoploss, trade.takeprofit
            if entry is not None and entry > 0:
                stoploss = _scaled(stoploss, first / entry, trade.side == "buy", is_stoploss=True)
                takeprofit = _scaled(takeprofit, first / entry, trade.side == "buy", is_stoploss=False)
            trades.append(TradeSpec(trade.id, trade.side, trade.quantity, trade.leverage, None, stoploss, takeprofit))
        return Portfolio(self.balance, tuple(trades))


def _scaled(price: Decimal, factor: Decimal, long: bool, *, is_stoploss: bool) -> Decimal:
    if not price:
        return price
    # round away from the entry for a stop-loss of a long (down) and a take-profit of a short (down)
    down = long == is_stoploss
    return round_to_tick(price * factor, ROUND_FLOOR if down else ROUND_CEILING)


def _trade_json(trade: TradeSpec) -> dict[str, JSONValue]:
    def dec(value: Decimal | None) -> str | None:
        return None if value is None else str(value)

    return {
        "id": trade.id,
        "side": trade.side,
        "quantity": trade.quantity,
        "leverage": str(trade.leverage),
        "entry_price": dec(trade.entry_price),
        "stoploss": str(trade.stoploss),
        "takeprofit": str(trade.takeprofit),
        "margin": trade.margin,
        "liquidation": dec(trade.liquidation),
        "maintenance_margin": trade.maintenance_margin,
        "opening_fee": trade.opening_fee,
    }


def _trade_from_json(data: Mapping[str, Any]) -> TradeSpec:
    def dec(value: object) -> Decimal | None:
        return None if value is None else Decimal(str(value))

    return TradeSpec(
        id=str(data["id"]),
        side="buy" if data["side"] == "buy" else "sell",
        quantity=int(data["quantity"]),
        leverage=Decimal(str(data["leverage"])),
        entry_price=dec(data.get("entry_price")),
        stoploss=Decimal(str(data.get("stoploss", "0"))),
        takeprofit=Decimal(str(data.get("takeprofit", "0"))),
        margin=None if data.get("margin") is None else int(data["margin"]),
        liquidation=dec(data.get("liquidation")),
        maintenance_margin=None if data.get("maintenance_margin") is None else int(data["maintenance_margin"]),
        opening_fee=int(data.get("opening_fee", 0)),
    )


def account_trades(*, account: ExchangeAccount, rebase: bool) -> tuple[TradeSpec, ...]:
    """The account's running trades as Axisor last saw them (``TrackedTrade``), ready to replay."""
    rows = TrackedTrade.objects.filter(account=account, state=TrackedTrade.State.RUNNING).order_by("first_seen_at")
    trades = []
    seen: set[str] = set()
    for row in rows:
        side = "buy" if row.side == "buy" else "sell"
        short_id = row.trade_id[:8] if row.trade_id[:8] not in seen else row.trade_id[:40]
        seen.add(short_id)
        common = {
            "id": short_id,
            "side": side,
            "quantity": row.quantity,
            "leverage": min(max(Decimal(row.leverage), Decimal(1)), Decimal(100)).quantize(Decimal("0.01")),
            "entry_price": Decimal(row.entry_price),
            "stoploss": Decimal(row.stoploss),
            "takeprofit": Decimal(row.takeprofit),
        }
        if rebase:
            trades.append(TradeSpec(**common))  # type: ignore[arg-type]
        else:
            trades.append(
                TradeSpec(
                    **common,  # type: ignore[arg-type]
                    margin=max(int(row.margin), 1),
                    liquidation=Decimal(row.liquidation),
                    maintenance_margin=int(row.maintenance_margin),
                    opening_fee=int(row.opening_fee),
                )
            )
    return tuple(trades)


def candidates_of(configs: Sequence[Mapping[str, Any]]) -> list[Candidate]:
    """The stored configurations as replay candidates (raises ``SpecError`` naming the bad setting)."""
    return [Candidate(str(c["label"]), c["kind"], config_from_json(c["kind"], c["config"])) for c in configs]


def candidate_json(label: str, automation_kind: str, config: Mapping[str, Any]) -> dict[str, JSONValue]:
    parsed = config_from_json(automation_kind, config)
    return {"label": label[:120], "kind": automation_kind, "config": config_to_json(parsed)}


# --- create ----------------------------------------------------------------------------------------------------------


def backtest_create(
    *,
    owner: User,
    name: str,
    source: str,
    source_params: dict[str, JSONValue],
    configs: list[dict[str, JSONValue]],
    run_settings: RunSettings,
    account: ExchangeAccount | None = None,
    automation: Automation | None = None,
    history: History | None = None,
) -> BacktestRun:
    """Store a new run and queue its first step once the transaction commits."""
    if not 1 <= len(configs) <= MAX_CONFIGS:
        raise ReplayError(f"Compare between 1 and {MAX_CONFIGS} configurations.")
    with transaction.atomic():
        run = BacktestRun.objects.create(
            owner=owner,
            name=name,
            source=source,
            source_params=source_params,
            configs=configs,
            settings=run_settings.to_json(),
            account=account,
            automation=automation,
            history=pack(history) if history is not None else None,
            rows=len(history) if history is not None else 0,
            message="Waiting for a worker…",
        )
        transaction.on_commit(lambda: backtest_enqueue(run.pk, 0))
    return run


def backtest_enqueue(run_id: int, step: int) -> None:
    from backtest.tasks import backtest_run_step_task, enqueue

    enqueue(backtest_run_step_task, run_id, step)


# --- run -------------------------------------------------------------------------------------------------------------


class _Progress:
    """Writes the run's progress (percent of the whole run) at most every ``PROGRESS_EVERY_S``."""

    def __init__(self, run_id: int, start: float, end: float, message: str) -> None:
        self.run_id, self.start, self.end, self.message = run_id, start, end, message
        self.last = 0.0

    def __call__(self, fraction: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self.last and now - self.last < PROGRESS_EVERY_S:
            return
        self.last = now
        percent = int(self.start + (self.end - self.start) * min(max(fraction, 0.0), 1.0))
        BacktestRun.objects.filter(pk=self.run_id, status=BacktestRun.Status.RUNNING).update(
            progress=min(percent, 99), message=self.message, updated_at=timezone.now()
        )


def backtest_run_step(*, run_id: int, step: int) -> int | None:
    """Do one step of a run; returns the next step to queue, or None when the run is finished (or not ours)."""
    try:
        return _step(run_id, step)
    except (HistoryError, ReplayError, SpecError) as exc:
        _fail(run_id, str(exc))
    except EngineError as exc:
        logger.warning("backtest %s step %s: %s", run_id, step, exc)
        _fail(run_id, f"The automation engine failed on this configuration: {exc}")
    except LNMarketsError as exc:
        _fail(run_id, f"The exchange did not give the candles: {exc}")
    except SoftTimeLimitExceeded:
        _fail(run_id, "The backtest took too long and was stopped: try a shorter range or a coarser resolution.")
    except Exception:
        logger.exception("backtest %s step %s failed", run_id, step)
        _fail(run_id, "The backtest failed unexpectedly; the error is in the server log.")
        raise
    return None


def _step(run_id: int, step: int) -> int | None:
    if step == 0:
        claimed = BacktestRun.objects.filter(pk=run_id, status=BacktestRun.Status.QUEUED).update(
            status=BacktestRun.Status.RUNNING, started_at=timezone.now(), progress=1, message="Loading the prices…"
        )
        if claimed != 1:
            return None  # already taken (a second delivery) or deleted
    run = BacktestRun.objects.filter(pk=run_id, status=BacktestRun.Status.RUNNING).first()
    if run is None:
        return None
    count = len(run.configs)
    share = 95 / (count + 1)
    if step <= 0 and run.source == BacktestRun.Source.EXCHANGE and not _fetch_some(run):
        return FETCH_STEP  # more pages to fetch: in another task, so the worker is free in between
    if step <= 0:
        step = 0
        history = _load_history(run)
        BacktestRun.objects.filter(pk=run.pk).update(
            history=pack(history),
            rows=len(history),
            chart={"price": downsample(history)},
        )
        candidate = None
    else:
        history = unpack(_blob(run))
        candidate = candidates_of(run.configs)[step - 1]
    run_settings = RunSettings.from_json(run.settings)
    label = "the portfolio without automation" if candidate is None else f"“{candidate.label}”"
    progress = _Progress(run.pk, 5 + share * step, 5 + share * (step + 1), f"Replaying {label}…")
    progress(0.0, force=True)
    result = replay(history, run_settings.portfolio(history), run_settings.rules(), candidate, progress=progress)
    _store(run, step, candidate, result)
    if step < count:
        return step + 1
    BacktestRun.objects.filter(pk=run.pk, status=BacktestRun.Status.RUNNING).update(
        status=BacktestRun.Status.DONE, progress=100, message="", finished_at=timezone.now()
    )
    return None


def _store(run: BacktestRun, step: int, candidate: Candidate | None, result: ReplayResult) -> None:
    if step == 0:
        lost = result.liquidated_lineages()
    else:
        baseline = BacktestResult.objects.get(run=run, position=0)
        stored = baseline.summary.get("liquidated", [])
        lost = {str(lineage) for lineage in stored} if isinstance(stored, list) else set()
    figures = summary(result, lost)
    figures["liquidated"] = list[JSONValue](sorted(result.liquidated_lineages()))
    BacktestResult.objects.update_or_create(
        run=run,
        position=step,
        defaults={
            "label": candidate.label if candidate else "No automation",
            "kind": candidate.kind if candidate else "",
            "config": config_to_json(candidate.config) if candidate else {},
            "summary": figures,
            "actions": actions_json(result),
            "chart": chart_json(result),
        },
    )


def _blob(run: BacktestRun) -> bytes:
    if run.history is None:
        raise HistoryError("The prices of this backtest are missing.")
    return bytes(run.history)


def _fail(run_id: int, message: str) -> None:
    BacktestRun.objects.filter(pk=run_id).exclude(status=BacktestRun.Status.DONE).update(
        status=BacktestRun.Status.FAILED, message=message[:300], finished_at=timezone.now()
    )


def _load_history(run: BacktestRun) -> History:
    params = run.source_params
    if run.source == BacktestRun.Source.CSV:
        if not run.history:
            raise HistoryError("The uploaded file is missing.")
        return unpack(_blob(run))
    if run.source == BacktestRun.Source.SCENARIO:
        return scenario_history(
            str(params["scenario"]), int(params["seed"]), start_price=Decimal(str(params.get("start_price", "100000")))
        )
    return unpack(_blob(run))  # the exchange's candles, fetched by _fetch_some


def _fetch_some(run: BacktestRun) -> bool:
    """Fetch up to ``FETCH_PAGES_PER_STEP`` pages of the run's exchange candles, keeping what was fetched (packed)
    and where to go on (``source_params["fetch"]``) on the run; True once every page is in."""
    params = dict(run.source_params)
    state = params.get("fetch") or {}
    if state.get("done"):
        return True
    account = run.account
    if account is None:
        raise HistoryError("The exchange account of this backtest was deleted.")
    start = datetime.fromisoformat(str(params["from"]))
    end = datetime.fromisoformat(str(params["to"]))
    resolution = str(params["resolution"])
    expected = expected_candles(start, end, resolution)
    partial = unpack(_blob(run)) if run.history else None
    have = len(partial) if partial is not None else 0
    progress = _Progress(run.pk, 1, 5, "Fetching candles from the exchange…")
    progress(have / max(expected, 1), force=True)
    rows, cursor = exchange_pages(
        network=account.network,
        start=start,
        end=end,
        resolution=resolution,
        cursor=state.get("cursor"),
        max_pages=FETCH_PAGES_PER_STEP,
        progress=lambda fetched: progress((have + fetched) / max(expected, 1)),
    )
    history = merge_candles(partial, rows, RESOLUTION_SECONDS[resolution] * 1000) if rows or partial else None
    if cursor is not None and history is not None and len(history) > MAX_EXCHANGE_CANDLES:
        raise HistoryError(f"The exchange returned more than {MAX_EXCHANGE_CANDLES:,} candles.")
    if cursor is None and history is None:
        raise HistoryError("The exchange has no candles for this range.")
    params["fetch"] = {"cursor": cursor, "done": cursor is None, "rows": 0 if history is None else len(history)}
    BacktestRun.objects.filter(pk=run.pk).update(
        source_params=params,
        history=pack(history) if history is not None else None,
        rows=0 if history is None else len(history),
        updated_at=timezone.now(),
    )
    run.source_params = params
    run.history = pack(history) if history is not None else None
    return cursor is None


Candle = tuple[datetime, Decimal, Decimal, Decimal, Decimal]


def merge_candles(partial: History | None, rows: Sequence[Candle], span_ms: int) -> History:
    """``partial`` plus newly fetched candles (a later copy of the same minute wins), in time order."""
    merged: dict[int, tuple[int, int, int, int]] = {}
    if partial is not None:
        for i in range(len(partial)):
            merged[partial.times[i]] = (partial.opens[i], partial.highs[i], partial.lows[i], partial.closes[i])
    for t, o, h, low, c in rows:
        merged[ms_of(t)] = (to_half_ticks(o), to_half_ticks(h), to_half_ticks(low), to_half_ticks(c))
    return build("candles", span_ms, ((t, *merged[t]) for t in sorted(merged)))


def expected_candles(start: datetime, end: datetime, resolution: str) -> int:
    return int((end - start).total_seconds()) // RESOLUTION_SECONDS[resolution] + 1


def exchange_history(
    *, network: str, start: datetime, end: datetime, resolution: str, progress: Callable[[float], None] | None = None
) -> History:
    """The exchange's OHLC candles of ``[start, end]`` at ``resolution`` (public ``GET /v3/futures/candles``,
    newest first, paginated), as a history."""

    if resolution not in RESOLUTION_SECONDS:
        raise HistoryError(f"Unknown resolution {resolution!r}.")
    expected = expected_candles(start, end, resolution)
    if expected > MAX_EXCHANGE_CANDLES:
        raise HistoryError(f"That is {expected:,} candles: at most {MAX_EXCHANGE_CANDLES:,} per backtest.")
    rows, _ = exchange_pages(
        network=network,
        start=start,
        end=end,
        resolution=resolution,
        cursor=None,
        max_pages=MAX_EXCHANGE_CANDLES // EXCHANGE_PAGE + 1,
        progress=None if progress is None else (lambda fetched: progress(fetched / max(expected, 1))),
    )
    if not rows:
        raise HistoryError("The exchange has no candles for this range.")
    return from_candles(rows, RESOLUTION_SECONDS[resolution] * 1000)


def exchange_pages(
    *,
    network: str,
    start: datetime,
    end: datetime,
    resolution: str,
    cursor: str | None,
    max_pages: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[Candle], str | None]:
    """Up to ``max_pages`` pages of candles from ``cursor`` on; the cursor to go on from, None when there is no more.
    ``progress`` gets the number of candles fetched so far (here)."""
    from automations.exchange import public_client

    client = public_client(network)
    if progress is not None:
        progress(0)
    rows: list[Candle] = []
    for _ in range(max_pages):
        page = client.futures_candles_list(from_=start, to=end, limit=EXCHANGE_PAGE, range=resolution, cursor=cursor)
        rows.extend((c.time, c.open, c.high, c.low, c.close) for c in page.data)
        if progress is not None:
            progress(len(rows))
        if not page.next_cursor or not page.data:
            return rows, None
        cursor = page.next_cursor
    return rows, cursor


def backtest_is_stalled(run: BacktestRun) -> bool:
    """Queued or running but silent for a long time: its worker is gone (the user can start it again)."""
    if run.finished:
        return False
    return (timezone.now() - run.updated_at).total_seconds() > STALLED_AFTER_S


def backtest_restart(*, run: BacktestRun) -> BacktestRun:
    """A fresh copy of ``run`` (same configurations, history source and settings), queued."""
    history = unpack(_blob(run)) if run.source == BacktestRun.Source.CSV and run.history else None
    return backtest_create(
        owner=run.owner,
        name=run.name,
        source=run.source,
        source_params={k: v for k, v in run.source_params.items() if k != "fetch"},
        configs=list(run.configs),
        run_settings=RunSettings.from_json(run.settings),
        account=run.account,
        automation=run.automation,
        history=history,
    )
