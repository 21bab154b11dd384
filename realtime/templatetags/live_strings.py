"""``{% live_strings %}``: the dashboard script's texts in the active language, as a JSON data block (no inline
script runs: the strict CSP allows it, and dashboard.js reads it with JSON.parse)."""

from __future__ import annotations

from django import template
from django.utils.html import json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

register = template.Library()


def _strings() -> dict[str, str]:
    return {
        "No running trades.": _("No running trades."),
        "Side": _("Side"),
        "Long": _("Long"),
        "Short": _("Short"),
        "external": _("external"),
        "Quantity (USD)": _("Quantity (USD)"),
        "Entry": _("Entry"),
        "Liquidation": _("Liquidation"),
        "Stop-loss": _("Stop-loss"),
        "Take-profit": _("Take-profit"),
        "Close": _("Close"),
        "SL": _("SL"),
        "TP": _("TP"),
        "+ margin": _("+ margin"),
        "Dismiss": _("Dismiss"),
        "Margin (sats)": _("Margin (sats)"),
        "PnL (sats)": _("PnL (sats)"),
        "PnL %": _("PnL %"),
        "Margin ratio": _("Margin ratio"),
        "To liquidation": _("To liquidation"),
        "Guarded by": _("Guarded by"),
        "none": _("none"),
        "since": _("since"),
        "No decisions yet.": _("No decisions yet."),
        "connecting": _("connecting"),
        "connected": pgettext("connection", "connected"),
        "reconnecting": pgettext("connection", "reconnecting"),
        "polling fallback": pgettext("connection", "polling fallback"),
        "stale": _("stale"),
        "session ended": pgettext("connection", "session ended"),
        "live": pgettext("price", "live"),
        "HTTP fallback": pgettext("price", "HTTP fallback"),
        "decision": _("Decision"),
        "skip": _("Skipped"),
        "order": _("Order outcome"),
        "reconcile": _("Reconciliation"),
        "status": _("Status change"),
        "error": _("Error"),
        "pending": _("Pending"),
        "ok": _("OK"),
        "skipped": _("Skipped"),
        "rejected": _("Rejected"),
        "unknown": _("Unknown"),
        "info": _("Info"),
    }


@register.simple_tag
def live_strings() -> SafeString:
    return json_script(_strings(), "live-strings")


@register.simple_tag
def market_state_label(state: str) -> str:
    """The server-rendered label of the market freshness badge (the script keeps it current)."""
    labels = {"live": pgettext("price", "live"), "fallback": pgettext("price", "HTTP fallback")}
    return labels.get(state, _("stale"))
