"""The comparison report of a backtest: the baseline (no automation) and each configuration on the same history.

Pure: results in, JSON-safe dicts and CSV text out. Money in integer sats, prices as decimal strings, times as
milliseconds since the epoch (and ISO 8601 in CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from automations.configs import config_to_json
from automations.specs import JSONValue
from backtest.history import History, datetime_of, downsample
from backtest.replay import (
    MAX_ROWS_PER_KIND,
    Candidate,
    Portfolio,
    ReplayResult,
    Rules,
    replay,
)

MAX_LEVEL_POINTS = 600  # per trade lineage in the chart


@dataclass(frozen=True, slots=True)
class Comparison:
    baseline: ReplayResult
    results: tuple[ReplayResult, ...]


def run_comparison(
    history: History,
    portfolio: Portfolio,
    rules: Rules,
    candidates: Sequence[Candidate],
    *,
    progress: Callable[[float], None] | None = None,
) -> Comparison:
    """The baseline, then every candidate, on the same history; ``progress`` gets 0..1 over all of them."""
    total = len(candidates) + 1

    def part(index: int) -> Callable[[float], None] | None:
        if progress is None:
            return None
        report = progress
        return lambda fraction: report((index + fraction) / total)

    baseline = replay(history, portfolio, rules, None, progress=part(0))
    results = tuple(replay(history, portfolio, rules, c, progress=part(i + 1)) for i, c in enumerate(candidates))
    return Comparison(baseline, results)


def summary(result: ReplayResult, lost: set[str]) -> dict[str, JSONValue]:
    """The figures of one configuration; ``liquidations_avoided`` counts the trades the baseline lost to a
    liquidation (``lost``: their ids) and this configuration did not."""
    avoided = len(lost - result.liquidated_lineages())
    closed_by: dict[str, JSONValue] = {lineage: o.closed_by for lineage, o in sorted(result.outcomes.items())}
    return {
        "label": result.label,
        "kind": result.kind,
        "start_equity": result.start_equity,
        "end_equity": result.end_equity,
        "final_balance": result.final_balance,
        "pnl": result.pnl,
        "fees": result.fees,
        "funding": result.funding,
        "margin_added": result.margin_added,
        "liquidations": result.liquidations,
        "liquidations_avoided": avoided,
        "actions": sum(v for k, v in result.counts.items() if k not in ("funding", "skip")),
        "counts": dict(sorted(result.counts.items())),
        "closed_by": closed_by,
        "engine_calls": result.engine_calls,
    }


def actions_json(result: ReplayResult) -> list[JSONValue]:
    """The report's rows, at most ``MAX_ROWS_PER_KIND`` per kind (the counts in the summary stay exact)."""
    seen: dict[str, int] = {}
    rows: list[JSONValue] = []
    for action in result.actions:
        seen[action.kind] = seen.get(action.kind, 0) + 1
        if seen[action.kind] <= MAX_ROWS_PER_KIND:
            rows.append(action.as_json())
    return rows


def chart_json(result: ReplayResult) -> dict[str, JSONValue]:
    """Markers of the automation's actions and the exchange's events, and each trade's liquidation level."""
    markers: list[JSONValue] = [
        _marker(a.time_ms / 1000, float(a.price), a.kind, a.source, a.outcome)
        for a in result.actions
        if a.kind != "skip"
    ][:2000]
    levels: dict[str, JSONValue] = {}
    for lineage, series in result.liquidation_levels.items():
        step = max(1, -(-len(series) // MAX_LEVEL_POINTS))
        kept = series[::step]
        if series and kept[-1] != series[-1]:
            kept.append(series[-1])
        levels[lineage] = [[t / 1000, value] for t, value in kept]
    return {"markers": markers, "levels": levels}


def _marker(t: float, price: float, kind: str, source: str, outcome: str) -> JSONValue:
    return {"t": t, "price": price, "kind": kind, "source": source, "outcome": outcome}


def candidate_json(candidate: Candidate) -> dict[str, JSONValue]:
    return {"label": candidate.label, "kind": candidate.kind, "config": config_to_json(candidate.config)}


def comparison_json(history: History, comparison: Comparison) -> dict[str, JSONValue]:
    """The whole report as one JSON-safe dict (what ``manage.py backtest --format json`` prints)."""
    baseline = comparison.baseline
    lost = baseline.liquidated_lineages()
    return {
        "history": {
            "kind": history.kind,
            "rows": len(history),
            "start": datetime_of(history.start_ms).isoformat(),
            "end": datetime_of(history.end_ms).isoformat(),
        },
        "baseline": {**summary(baseline, lost), "actions_list": actions_json(baseline)},
        "results": [{**summary(r, lost), "actions_list": actions_json(r)} for r in comparison.results],
        "price": downsample(history),  # type: ignore[dict-item]
    }


SUMMARY_COLUMNS = (
    "label",
    "kind",
    "pnl",
    "end_equity",
    "final_balance",
    "fees",
    "funding",
    "margin_added",
    "liquidations",
    "liquidations_avoided",
    "actions",
)
ACTION_COLUMNS = ("label", "time", "price", "source", "kind", "trade_id", "value", "outcome", "fill", "reason")


def summary_csv(comparison: Comparison) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SUMMARY_COLUMNS)
    rows = [(comparison.baseline, "(no automation)"), *((r, r.label) for r in comparison.results)]
    for result, label in rows:
        data = summary(result, comparison.baseline.liquidated_lineages())
        data["label"] = label
        writer.writerow([data[c] for c in SUMMARY_COLUMNS])
    return out.getvalue()


def actions_csv(comparison: Comparison) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ACTION_COLUMNS)
    rows = [(comparison.baseline, "(no automation)"), *((r, r.label) for r in comparison.results)]
    for result, label in rows:
        for a in result.actions:
            time = datetime_of(a.time_ms).isoformat()
            fill = "" if a.fill is None else str(a.fill)
            writer.writerow([label, time, a.price, a.source, a.kind, a.trade_id, a.value, a.outcome, fill, a.reason])
    return out.getvalue()
