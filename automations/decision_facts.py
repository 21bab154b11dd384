"""The facts of a decision that its sentence is rendered from (``automations.audit_text.decision_text``).

No Django import: the backtest replay keeps them for each action it records, so that its report speaks the reader's
language, without carrying every input of every decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The decision's fields (``Decision.to_json()``) and the inputs (``Decision.inputs``) a sentence reads.
DECISION_FIELDS = (
    "kind",
    "code",
    "trade_id",
    "close_quantity",
    "reopen_quantity",
    "amount",
    "price",
    "side",
    "quantity",
    "margin",
    "leverage",
)
INPUTS = (
    "trigger",
    "distance",
    "margin_ratio",
    "threshold",
    "pnl_percent",
    "trigger_percent",
    "direction",
    "last_price",
    "trigger_price",
    "trail_best",
    "limited_by",
)


def decision_facts(decision: Mapping[str, Any], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """``{"decision": …, "inputs": …}``: the part of a decision's JSON and inputs its sentence needs, JSON-safe."""
    return {
        "decision": {k: decision[k] for k in DECISION_FIELDS if decision.get(k) is not None},
        "inputs": {k: str(inputs[k]) for k in INPUTS if k in inputs},
    }
