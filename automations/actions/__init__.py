"""The order actions: one module per action, registered here once (docs/adr/0002-registries.md).

For code outside the automations that wants an order (the cockpit's manual close / set SL or TP / add margin, the
Telegram bot): never create an ``OrderIntent`` by hand and never call the exchange. Call::

    from automations.services.intents import request

    intent = request(account, "close", {}, trade_id="…", origin="cockpit")            # close at market
    request(account, "set_stoploss", {"price": "95000"}, trade_id="…", origin="cockpit")
    request(account, "set_takeprofit", {"price": "120000"}, trade_id="…", origin="cockpit")
    request(account, "add_margin", {"amount": 5000}, trade_id="…", origin="cockpit")
    request(account, "open", {"side": "buy", "leverage": "10", "quantity": 100}, origin="cockpit")

``request`` validates the parameters with the action's pydantic model (``ActionParamsError`` naming the field: show
it to the user), writes the intent and an audit entry in one transaction, and queues the execution after the commit
(protective actions on the priority queue); the execution service then sends it exactly once. "Close all" is one
``request`` per running trade. Raise nothing else; no I/O happens in ``request``.

A new action: one module here with an ``OrderAction`` subclass (typed parameters, ``send``, ``reconcile``, optional
``before_send``/``bookkeeping``/``after_settle``/``followups``), one line in ``ACTIONS``, and its value in
``OrderIntent.Action`` (a stored value, so a migration).
"""

from __future__ import annotations

from typing import Any

from automations.actions.add_margin import ACTION as _ADD_MARGIN
from automations.actions.base import ActionParams, ActionParamsError, Found, OrderAction
from automations.actions.close import ACTION as _CLOSE
from automations.actions.move_tpsl import STOPLOSS as _STOPLOSS
from automations.actions.move_tpsl import TAKEPROFIT as _TAKEPROFIT
from automations.actions.open import ACTION as _OPEN
from automations.actions.plans import PLANS, DecisionPlan, Request

ACTIONS: dict[str, OrderAction[Any]] = {a.key: a for a in (_OPEN, _CLOSE, _ADD_MARGIN, _STOPLOSS, _TAKEPROFIT)}
DECISION_PLANS: dict[str, DecisionPlan] = {plan.kind: plan for plan in PLANS}


class UnknownActionError(ActionParamsError):
    """No order action has this key."""


def action_for(key: str) -> OrderAction[Any]:
    """The registered action ``key``; raises ``UnknownActionError``."""
    try:
        return ACTIONS[key]
    except KeyError:
        raise UnknownActionError(f"action: unknown order action {key!r}") from None


def decision_label(kind: str) -> str:
    """The preview title of a decision kind (untranslated; templates translate it)."""
    plan = DECISION_PLANS.get(kind)
    return plan.label if plan is not None else kind


__all__ = [
    "ACTIONS",
    "DECISION_PLANS",
    "ActionParams",
    "ActionParamsError",
    "DecisionPlan",
    "Found",
    "OrderAction",
    "Request",
    "UnknownActionError",
    "action_for",
    "decision_label",
]
