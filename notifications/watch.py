"""Periodic watches that have no audit entry to derive from: the exchange feed (stale, recovered) and margin
warnings (a running trade closer to liquidation than the user's level, before the guard's own threshold).

Both read the market state the publisher shares through the cache (``realtime.market.market_state``), as /readyz
does. The feed is stale when no tick arrived for ``NOTIFY_FEED_STALE_SECONDS``; only transitions notify, never the
first observation (a process that just started has no tick yet). A margin warning is sent at most once per trade and
UTC day (the date is in its idempotency key).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import ExchangeAccount
from automations.models import TrackedTrade
from notifications.derive import notifications_create, owner_language
from notifications.models import Channel, Event, FeedStatus, Preference
from realtime.market import market_state

DEFAULT_WARNING_PERCENT = Decimal(10)


def _networks_in_use() -> list[str]:
    return sorted(set(ExchangeAccount.objects.filter(is_enabled=True).values_list("network", flat=True)))


def _is_stale(network: str) -> bool:
    age_ms = market_state(network)["age_ms"]
    return age_ms is None or age_ms > settings.NOTIFY_FEED_STALE_SECONDS * 1000


def _feed_text(network: str, *, stale: bool) -> tuple[str, str]:
    """Title and body of a feed transition, in the active language."""
    if stale:
        title = _("Exchange feed stale (%(network)s)") % {"network": network}
        body = _(
            "%(title)s: no market data for more than %(seconds)s s; automations that need a fresh price wait, new "
            "entries are blocked."
        ) % {"title": title, "seconds": settings.NOTIFY_FEED_STALE_SECONDS}
    else:
        title = _("Exchange feed recovered (%(network)s)") % {"network": network}
        body = _("%(title)s: market data flows again; automations act on fresh prices.") % {"title": title}
    return title, body


def feed_watch(*, now: datetime) -> int:
    """Record each network's feed state; on a change, notify the owners of enabled accounts on it."""
    created = 0
    for network in _networks_in_use():
        stale = _is_stale(network)
        with transaction.atomic():
            status, new = FeedStatus.objects.select_for_update().get_or_create(
                network=network, defaults={"stale": stale, "changed_at": now}
            )
            if new or status.stale == stale:
                continue
            status.stale, status.changed_at = stale, now
            if stale:
                status.episode += 1
            status.save()
            owners = ExchangeAccount.objects.filter(network=network, is_enabled=True).values_list("owner_id", flat=True)
            for owner_id in sorted(set(owners)):
                with owner_language(owner_id):
                    title, body = _feed_text(network, stale=stale)
                created += len(
                    notifications_create(
                        owner_id=owner_id,
                        event=Event.FEED,
                        title=title,
                        body=body,
                        source=f"{network}:{status.episode}:{'stale' if stale else 'recovered'}",
                    )
                )
    return created


def _distance_percent(trade: TrackedTrade, mark: Decimal) -> Decimal:
    """Signed distance to liquidation in percent of the mark (the engine's definition)."""
    if trade.side == "buy":
        return (mark - trade.liquidation) / mark * 100
    return (trade.liquidation - mark) / mark * 100


def _margin_text(trade: TrackedTrade, mark: Decimal, distance: Decimal, level: Decimal) -> tuple[str, str]:
    """Title and body of a margin warning, in the active language."""
    title = _("Margin warning: trade %(trade)s is %(distance)s %% from liquidation") % {
        "trade": trade.trade_id,
        "distance": f"{distance:.2f}",
    }
    details = _(
        "%(side)s %(quantity)s USD @ %(entry)s, liquidation %(liquidation)s, price %(price)s. Your warning level: "
        "%(level)s %%."
    ) % {
        "side": _("long") if trade.side == "buy" else _("short"),
        "quantity": trade.quantity,
        "entry": trade.entry_price,
        "liquidation": trade.liquidation,
        "price": mark,
        "level": level,
    }
    account = _("Account: %(account)s") % {"account": trade.account.label}
    return title, f"{title}\n{account}\n{details}"


def margin_watch(*, now: datetime) -> int:
    """Warn each user whose running trade is within their warning level of its liquidation price."""
    owners = Channel.objects.filter(is_enabled=True).exclude(address="").values_list("owner_id", "events")
    wanting = {owner for owner, events in owners if Event.MARGIN_WARNING in (events or [])}
    if not wanting:
        return 0
    levels = dict(Preference.objects.filter(user_id__in=wanting).values_list("user_id", "margin_warning_percent"))
    created = 0
    for network in _networks_in_use():
        state = market_state(network)
        if state["state"] == "stale" or not state["last"]:
            continue
        try:
            mark = Decimal(state["last"])
        except InvalidOperation:
            continue
        if mark <= 0:
            continue
        trades = TrackedTrade.objects.filter(
            state=TrackedTrade.State.RUNNING, account__network=network, account__owner_id__in=wanting
        ).select_related("account")
        for trade in trades:
            owner_id = trade.account.owner_id
            level = levels.get(owner_id, DEFAULT_WARNING_PERCENT)
            distance = _distance_percent(trade, mark)
            if distance > level:
                continue
            with owner_language(owner_id):
                title, body = _margin_text(trade, mark, distance, level)
            created += len(
                notifications_create(
                    owner_id=owner_id,
                    event=Event.MARGIN_WARNING,
                    title=title,
                    body=body,
                    source=f"{trade.pk}:{now:%Y-%m-%d}",
                    protective=True,
                )
            )
    return created
