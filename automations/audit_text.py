"""Audit entries in the reader's language.

Every service that writes an audit entry stores, besides the English ``message`` column (admin, logs, old rows), a
message key and its parameters in ``inputs["i18n"]`` (``say()``); pages, toasts and notifications render them with
gettext in the reader's language (``audit_text()``). The engine's decisions and skips are rendered from their typed
fields (the decision's ``kind``, the skip's ``code`` and the ``inputs`` it was taken on), never by parsing its
English ``reason``, which stays in the entry's details.

A parameter is stored as written; the ones named in ``_LABELS`` hold a code (an automation kind, an order action) and
the ones named in ``_PHRASES`` hold a short English phrase from ``PHRASES``: both are translated when rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from automations.describe import num, sats
from automations.outcome_phrases import CANNOT_AFFORD, OPEN_REFUSED, ORDER_REFUSED

Param = str | int

MESSAGES: dict[str, str] = {
    # automations.services.management
    "automation_created": gettext_noop("Automation “%(name)s” created (%(kind)s), active."),
    "automation_edited": gettext_noop("Automation “%(name)s” edited: %(changes)s."),
    "automation_edited_reset": gettext_noop(
        "Automation “%(name)s” edited: %(changes)s. Its memory was reset: it may act again on trades it already "
        "handled."
    ),
    "automation_paused": gettext_noop("Automation “%(name)s” paused."),
    "automation_resumed": gettext_noop("Automation “%(name)s” resumed."),
    "automation_deleted": gettext_noop("Automation “%(name)s” (%(kind)s) deleted."),
    "kill_switch_on": gettext_noop(
        "Kill switch turned ON for “%(account)s”: no new entries; closes and protection still run."
    ),
    "kill_switch_off": gettext_noop(
        "Kill switch turned off for “%(account)s”: entries resume after the next reconciliation."
    ),
    "global_kill_switch_on": gettext_noop(
        "Global kill switch turned ON by %(who)s: no new entries for anyone; closes and protection still run."
    ),
    "global_kill_switch_on_reason": gettext_noop(
        "Global kill switch turned ON by %(who)s: no new entries for anyone; closes and protection still run. "
        "Reason: %(reason)s"
    ),
    "global_kill_switch_off": gettext_noop(
        "Global kill switch turned off by %(who)s: entries resume once each account is reconciled."
    ),
    "global_kill_switch_off_reason": gettext_noop(
        "Global kill switch turned off by %(who)s: entries resume once each account is reconciled. Reason: %(reason)s"
    ),
    "manage_external_on": gettext_noop("“%(account)s”: automations may now manage trades opened outside Axisor."),
    "manage_external_off": gettext_noop("“%(account)s”: trades opened outside Axisor are shown but no longer managed."),
    "trade_managed_on": gettext_noop("Trade %(trade)s is now managed by automations."),
    "trade_managed_off": gettext_noop("Trade %(trade)s is no longer managed by automations."),
    # automations.services.trades
    "trade_opened_outside": gettext_noop(
        "Trade %(trade)s (%(side)s %(quantity)s USD) was opened outside Axisor: shown, not managed."
    ),
    "trade_closed_stoploss": gettext_noop("Trade %(trade)s hit its stop-loss (exit %(exit)s, PnL %(pnl)s sats)."),
    "trade_closed_takeprofit": gettext_noop("Trade %(trade)s hit its take-profit (exit %(exit)s, PnL %(pnl)s sats)."),
    "trade_closed_liquidation": gettext_noop("Trade %(trade)s was liquidated (exit %(exit)s, PnL %(pnl)s sats)."),
    "trade_closed_outside": gettext_noop(
        "Trade %(trade)s was closed outside Axisor (exit %(exit)s, PnL %(pnl)s sats)."
    ),
    # automations.services.execution
    "intent_rejected": gettext_noop("%(action)s rejected: %(error)s"),
    "entries_halted": gettext_noop("%(failures)s consecutive order failures: new entries halted until reconciliation."),
    "intent_done": gettext_noop("%(action)s done (trade %(trade)s)"),
    "intent_done_note": gettext_noop("%(action)s done (trade %(trade)s): %(note)s"),
    "intent_note": gettext_noop("%(action)s: %(note)s"),
    "intent_not_sent": gettext_noop("%(action)s not sent: %(why)s"),
    "intent_not_processed": gettext_noop("%(action)s not processed (%(code)s); not sent"),
    "intent_accepted": gettext_noop("%(action)s accepted by the exchange (trade %(trade)s)"),
    "intent_unknown": gettext_noop("%(action)s outcome unknown (%(code)s)"),
    "credentials_undecryptable": gettext_noop("Stored credentials cannot be decrypted: automations paused."),
    "credentials_undecryptable_unknown": gettext_noop(
        "Stored credentials cannot be decrypted: automations paused. The earlier attempt's outcome is unknown: "
        "reconciliation adopts the trade if it exists."
    ),
    "credentials_rejected": gettext_noop("The exchange rejected the credentials (%(code)s): automations paused."),
    "credentials_rejected_unknown": gettext_noop(
        "The exchange rejected the credentials (%(code)s): automations paused. The earlier attempt's outcome is "
        "unknown: reconciliation adopts the trade if it exists."
    ),
    # automations.services.credentials_health
    "credentials_paused": gettext_noop(
        "Paused: the exchange rejected this account's credentials (%(reason)s). Enter working API keys on the "
        "account page; Axisor tries again at %(retry_at)s UTC and resumes these automations if they work. "
        "%(paused)s automation(s) paused."
    ),
    "credentials_accepted": gettext_noop(
        "The exchange accepts this account's credentials again: %(resumed)s automation(s) resumed."
    ),
    # automations.services.evaluation
    "invalid_settings": gettext_noop("Invalid settings: %(error)s"),
    "evaluation_failed": gettext_noop("Evaluation failed: %(error)s"),
    # automations.services.intents
    "intent_requested": gettext_noop("%(action)s requested (%(origin)s)."),
    "intent_requested_trade": gettext_noop("%(action)s of trade %(trade)s requested (%(origin)s)."),
    # notifications.bot (before it asked through automations.services.intents)
    "close_from_telegram": gettext_noop("Close of trade %(trade)s requested from Telegram."),
}

# Short English phrases the services pass as parameters; translated when rendered (anything else is shown as is).
PHRASES = (
    gettext_noop("settings changed"),
    gettext_noop("settings unchanged"),
    gettext_noop("done"),
    gettext_noop("confirmed by the order response"),
    gettext_noop("trade no longer running; no margin added"),
    gettext_noop("the kill switch is on"),
    gettext_noop("the global kill switch is on"),
    gettext_noop("entries are halted for this account"),
    gettext_noop("an administrator"),
    gettext_noop("the account's kill switch is on"),
    gettext_noop("trade no longer running"),
    gettext_noop("trade no longer running; nothing left to change"),
    gettext_noop("cockpit"),
    gettext_noop("telegram"),
    # automations' status messages (Automation.status_message)
    gettext_noop("Paused by the user."),
    gettext_noop("Completed: every entry it was asked for has fired."),
    OPEN_REFUSED,
    ORDER_REFUSED,
    CANNOT_AFFORD,
)
_PHRASES = frozenset({"changes", "note", "why", "who", "origin"})

_ACTIONS = {
    "open": gettext_noop("Open trade"),
    "close": gettext_noop("Close trade"),
    "add_margin": gettext_noop("Add margin"),
    "set_stoploss": gettext_noop("Set stop-loss"),
    "set_takeprofit": gettext_noop("Set take-profit"),
}
_KINDS = {
    "margin_guard": gettext_noop("Margin Guard"),
    "tpsl": gettext_noop("TP/SL management"),
    "auto_entry": gettext_noop("Auto Entry"),
}
_SIDES = {"buy": gettext_noop("long"), "sell": gettext_noop("short")}
_LABELS: dict[str, Mapping[str, str]] = {"action": _ACTIONS, "kind": _KINDS, "side": _SIDES}


@dataclass(frozen=True)
class Said:
    """What an audit entry says: its message key and parameters (``english`` is the ``message`` column)."""

    key: str
    params: dict[str, Param] = field(default_factory=dict)

    @property
    def english(self) -> str:
        with translation.override("en"):
            return render(self.key, self.params)[:500]

    def inputs(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The entry's ``inputs``: ``extra`` plus ``i18n`` (the key and parameters)."""
        return {**(extra or {}), "i18n": {"key": self.key, "params": dict(self.params)}}


def say(key: str, /, **params: Param) -> Said:
    if key not in MESSAGES:
        raise KeyError(f"unknown audit message key {key!r}")
    return Said(key, params)


def phrase(text: str) -> str:
    """``text`` in the active language when it is one of ``PHRASES`` (a status message, a note), else as is."""
    return gettext(text) if text in PHRASES else text


def label(name: str, code: str) -> str:
    """The label of a coded parameter (``kind``, ``action``, ``side``) in the active language; else the code."""
    labels = _LABELS.get(name, {})
    return gettext(labels[code]) if code in labels else code


def _param(name: str, value: Param) -> Param:
    if name in _LABELS and str(value) in _LABELS[name]:
        return label(name, str(value))
    if name in _PHRASES and isinstance(value, str) and value:
        return gettext(value)
    return value


def render(key: str, params: Mapping[str, Param]) -> str:
    """The message ``key`` with ``params`` in the active language."""
    values = {name: _param(name, value) for name, value in params.items()}
    return gettext(MESSAGES[key]) % values


def audit_text(entry: Any) -> str:  # noqa: ANN401 — an AuditEntry (not imported: models import nothing from here)
    """What ``entry`` says, in the active language (its English ``message`` when it holds no key we know)."""
    inputs = entry.inputs if isinstance(entry.inputs, dict) else {}
    said = inputs.get("i18n")
    if isinstance(said, dict) and said.get("key") in MESSAGES and isinstance(said.get("params"), dict):
        try:
            return render(str(said["key"]), said["params"])
        except (KeyError, TypeError, ValueError):
            return str(entry.message)
    decision = entry.decision if isinstance(entry.decision, dict) else {}
    if entry.event in ("decision", "skip") and decision.get("kind"):
        text = decision_text(decision, inputs)
        if text:
            return text
    return str(entry.message)


# --- the engine's decisions, from their typed fields ----------------------------------------------------------------


def _number(value: object, most_places: int = 4) -> str:
    """A stored number (a string) for the active locale, without trailing zeros, at most ``most_places`` decimals."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    exponent = number.normalize().as_tuple().exponent
    places = min(max(0, -exponent) if isinstance(exponent, int) else 0, most_places)
    return num(number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP).normalize(), places)


def _percent(value: object) -> str:
    """A computed percentage (the engine records 4 decimals), to 2."""
    return _number(value, 2)


def _why(inputs: Mapping[str, Any]) -> str:
    """The trigger that was met, from the inputs the engine recorded ("" when they do not say)."""
    trigger = inputs.get("trigger")
    if trigger == "margin_ratio" and "margin_ratio" in inputs:
        return gettext("Margin ratio %(value)s %% ≥ %(threshold)s %%") % {
            "value": _percent(inputs["margin_ratio"]),
            "threshold": _number(inputs.get("threshold", "")),
        }
    if trigger == "liquidation_distance" and "distance" in inputs:
        return gettext("Distance to liquidation %(value)s %% ≤ %(threshold)s %%") % {
            "value": _percent(inputs["distance"]),
            "threshold": _number(inputs.get("threshold", "")),
        }
    if "pnl_percent" in inputs and "trigger_percent" in inputs:
        template = (
            gettext("PnL %(value)s %% ≥ +%(threshold)s %%")
            if inputs.get("direction") == "profit"
            else gettext("PnL %(value)s %% ≤ −%(threshold)s %%")
        )
        return template % {"value": _percent(inputs["pnl_percent"]), "threshold": _number(inputs["trigger_percent"])}
    if trigger == "immediate":
        return gettext("Immediate entry")
    if trigger in ("price_below", "price_above") and "last_price" in inputs:
        template = (
            gettext("Last price %(last)s ≤ %(price)s")
            if trigger == "price_below"
            else gettext("Last price %(last)s ≥ %(price)s")
        )
        return template % {"last": _number(inputs["last_price"]), "price": _number(inputs.get("trigger_price", ""))}
    return ""


_LIMITS = {
    "free balance": gettext_noop("(limited by the free balance)"),
    "leverage ≥ 1": gettext_noop("(limited by leverage ≥ 1)"),
    "per-trade cap": gettext_noop("(limited by the per-trade cap)"),
}


def _action_sentence(decision: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    kind = decision.get("kind")
    trade = str(decision.get("trade_id") or "—")
    if kind == "close":
        return gettext("closing trade %(trade)s.") % {"trade": trade}
    if kind == "reduce":
        return gettext(
            "reducing trade %(trade)s: close %(close)s USD, reopen %(reopen)s USD at market with the same side, "
            "leverage, SL and TP."
        ) % {
            "trade": trade,
            "close": _number(decision.get("close_quantity", "")),
            "reopen": _number(decision.get("reopen_quantity", "")),
        }
    if kind == "add_margin":
        text = gettext("adding %(amount)s of margin to trade %(trade)s") % {
            "amount": sats(int(decision.get("amount") or 0)),
            "trade": trade,
        }
        limit = _LIMITS.get(str(inputs.get("limited_by", "")))
        if limit is not None:
            text += " " + gettext(limit)
        return text + "."
    if kind == "set_stoploss" and "trail_best" in inputs:
        return gettext("trailing stop-loss of trade %(trade)s to %(price)s (best mark %(best)s).") % {
            "trade": trade,
            "price": _number(decision.get("price", "")),
            "best": _number(inputs["trail_best"]),
        }
    if kind in ("set_stoploss", "set_takeprofit"):
        template = (
            gettext("stop-loss of trade %(trade)s to %(price)s.")
            if kind == "set_stoploss"
            else gettext("take-profit of trade %(trade)s to %(price)s.")
        )
        return template % {"trade": trade, "price": _number(decision.get("price", ""))}
    if kind == "open":
        size = (
            gettext("%(quantity)s USD") % {"quantity": _number(decision["quantity"])}
            if decision.get("quantity")
            else gettext("%(margin)s of margin") % {"margin": sats(int(decision.get("margin") or 0))}
        )
        template = (
            gettext("opening a long of %(size)s at %(leverage)sx.")
            if decision.get("side") == "buy"
            else gettext("opening a short of %(size)s at %(leverage)sx.")
        )
        return template % {"size": size, "leverage": _number(decision.get("leverage", ""))}
    return ""


_SKIPS = {
    "at_target": gettext_noop("the distance is already at the target"),
    "cap_reached": gettext_noop("the per-trade cap of added margin is reached"),
    "leverage_floor": gettext_noop("more margin would take the leverage below 1"),
    "insufficient_balance": gettext_noop("the free balance is not enough"),
    "no_breakeven": gettext_noop("no break-even price exists"),
    "already_better": gettext_noop("the stop-loss is already at or past break-even"),
    "unchanged": gettext_noop("the trade already has this price"),
    "off_tick": gettext_noop("the price is not on the 0.5 USD tick"),
    "crosses_liquidation": gettext_noop("the stop-loss would cross the liquidation price"),
    "wrong_side": gettext_noop("the price is on the wrong side of the market"),
    "crosses_takeprofit": gettext_noop("the stop-loss would cross the take-profit"),
    "crosses_stoploss": gettext_noop("the take-profit would cross the stop-loss"),
    "already_tighter": gettext_noop("the stop-loss is already tighter"),
    "kill_switch": gettext_noop("the kill switch is on: no new entries"),
    "entries_halted": gettext_noop("entries are halted for this account (failure breaker)"),
    "stale_price": gettext_noop("the price is too old"),
    "too_small": gettext_noop("the margin buys less than 1 USD"),
    "too_large": gettext_noop("the size exceeds 500,000 USD"),
    "invalid_stoploss": gettext_noop("the stop-loss would be refused"),
    "invalid_takeprofit": gettext_noop("the take-profit would be refused"),
}


def decision_text(decision: Mapping[str, Any], inputs: Mapping[str, Any]) -> str:
    """A decision or skip in the active language, from its kind/code and inputs ("" when they do not say enough)."""
    why = _why(inputs)
    if decision.get("kind") == "skip":
        problem = _SKIPS.get(str(decision.get("code", "")))
        if problem is None:
            return ""
        trade = decision.get("trade_id")
        text = gettext("Not done: %(problem)s.") % {"problem": gettext(problem)}
        if trade:
            text = gettext("Trade %(trade)s: %(text)s") % {"trade": trade, "text": text}
        return f"{why}. {text}" if why else text
    action = _action_sentence(decision, inputs)
    if not action:
        return ""
    return f"{why}: {action}" if why else action[:1].upper() + action[1:]


__all__: list[str] = [
    "MESSAGES",
    "PHRASES",
    "Said",
    "audit_text",
    "decision_text",
    "label",
    "phrase",
    "render",
    "say",
]
