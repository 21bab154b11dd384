"""What each engine decision asks for: the order action, the trade, the typed parameters, and its preview title.

One :class:`DecisionPlan` per ``Decision.kind``; ``automations.services.evaluation`` turns a decision into an
``OrderIntent`` through :func:`request_for`, the preview titles its rows with ``DecisionPlan.label``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_noop

from automations import decisions as d
from automations.actions.add_margin import ACTION as ADD_MARGIN
from automations.actions.add_margin import AddMarginParams
from automations.actions.base import ActionParams, OrderAction
from automations.actions.close import ACTION as CLOSE
from automations.actions.close import CloseParams
from automations.actions.move_tpsl import STOPLOSS, TAKEPROFIT, PriceParams
from automations.actions.open import ACTION as OPEN
from automations.actions.open import OpenParams


@dataclass(frozen=True, slots=True)
class Request:
    """One order to make: which action, on which trade ("" for an open), with which parameters."""

    action: OrderAction[Any]
    params: ActionParams
    trade_id: str = ""
    protective: bool = True


@dataclass(frozen=True, slots=True)
class DecisionPlan:
    kind: str
    label: str
    request: Callable[[Any], Request | None]


def _close(decision: d.ClosePosition) -> Request:
    return Request(CLOSE, CloseParams(), decision.trade_id, decision.protective)


def _reduce(decision: d.ReducePosition) -> Request:
    reopen = OpenParams(
        side=decision.side,
        quantity=decision.reopen_quantity,
        leverage=decision.leverage,
        stoploss=decision.stoploss,
        takeprofit=decision.takeprofit,
    )
    return Request(CLOSE, CloseParams(reopen=reopen), decision.trade_id, decision.protective)


def _add_margin(decision: d.AddMargin) -> Request:
    return Request(ADD_MARGIN, AddMarginParams(amount=decision.amount), decision.trade_id, decision.protective)


def _stoploss(decision: d.SetStopLoss) -> Request:
    return Request(STOPLOSS, PriceParams(price=decision.price), decision.trade_id, decision.protective)


def _takeprofit(decision: d.SetTakeProfit) -> Request:
    return Request(TAKEPROFIT, PriceParams(price=decision.price), decision.trade_id, decision.protective)


def _open(decision: d.OpenPosition) -> Request:
    params = OpenParams(
        side=decision.side,
        leverage=decision.leverage,
        quantity=decision.quantity,
        margin=decision.margin,
        stoploss=decision.stoploss,
        takeprofit=decision.takeprofit,
        stoploss_percent=decision.stoploss_percent,
        takeprofit_percent=decision.takeprofit_percent,
    )
    return Request(OPEN, params, "", decision.protective)


def _nothing(decision: d.Decision) -> None:
    return None


PLANS: tuple[DecisionPlan, ...] = (
    DecisionPlan(d.ClosePosition.kind, gettext_noop("Close the trade at market"), _close),
    DecisionPlan(
        d.ReducePosition.kind,
        gettext_noop("Reduce: close the trade, then reopen the remaining quantity (LN Markets has no partial close)"),
        _reduce,
    ),
    DecisionPlan(d.AddMargin.kind, gettext_noop("Add margin"), _add_margin),
    DecisionPlan(d.SetStopLoss.kind, gettext_noop("Set the stop-loss"), _stoploss),
    DecisionPlan(d.SetTakeProfit.kind, gettext_noop("Set the take-profit"), _takeprofit),
    DecisionPlan(d.OpenPosition.kind, gettext_noop("Open a trade"), _open),
    DecisionPlan(d.Skip.kind, gettext_noop("No action (skipped)"), _nothing),
)
