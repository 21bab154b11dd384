"""Queries over the history: the filtered trade list, the performance figures and the per-automation summary."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.models import Automation, OrderIntent
from history.models import BalancePoint, ClosedTrade

_BY = {c.value for c in ClosedTrade.ClosedBy}
# Net realised PnL (after opening, closing and funding fees): what makes a trade a win or a loss.
NET = F("pl") - F("opening_fee") - F("closing_fee") - F("funding_fees")


def closed_trades(user: User, filters: dict[str, Any]) -> QuerySet[ClosedTrade]:
    """The user's closed trades matching the cleaned filter values (account, start, end, automation, outcome)."""
    rows = ClosedTrade.objects.filter(account__owner=user).select_related("account", "automation")
    if filters.get("account") is not None:
        rows = rows.filter(account=filters["account"])
    tz = timezone.get_current_timezone()
    if filters.get("start"):
        rows = rows.filter(closed_at__gte=dt.datetime.combine(filters["start"], dt.time.min, tzinfo=tz))
    if filters.get("end"):
        after_end = filters["end"] + dt.timedelta(days=1)
        rows = rows.filter(closed_at__lt=dt.datetime.combine(after_end, dt.time.min, tzinfo=tz))
    if filters.get("automation") is not None:
        rows = rows.filter(automation=filters["automation"])
    outcome = filters.get("outcome") or ""
    if outcome == "win":
        rows = rows.filter(canceled=False).alias(net=NET).filter(net__gt=0)
    elif outcome == "loss":
        rows = rows.filter(canceled=False).alias(net=NET).filter(net__lte=0)
    elif outcome in _BY:
        rows = rows.filter(closed_by=outcome)
    return rows


@dataclass
class Totals:
    trades: int = 0
    wins: int = 0
    pl: int = 0
    opening_fees: int = 0
    closing_fees: int = 0
    funding: int = 0

    @property
    def fees(self) -> int:
        return self.opening_fees + self.closing_fees

    @property
    def net(self) -> int:
        return self.pl - self.fees - self.funding

    @property
    def win_rate(self) -> Decimal | None:
        if not self.trades:
            return None
        return (Decimal(self.wins) * 100 / Decimal(self.trades)).quantize(Decimal("0.1"))


def totals(rows: QuerySet[ClosedTrade]) -> Totals:
    """Counts and sums over filled trades (canceled orders never traded); a win made money after fees."""
    filled = rows.filter(canceled=False).alias(net=NET)
    agg = filled.aggregate(
        n=Count("id"),
        wins=Count("id", filter=Q(net__gt=0)),
        pl=Sum("pl"),
        of=Sum("opening_fee"),
        cf=Sum("closing_fee"),
        ff=Sum("funding_fees"),
    )
    return Totals(
        trades=agg["n"] or 0,
        wins=agg["wins"] or 0,
        pl=agg["pl"] or 0,
        opening_fees=agg["of"] or 0,
        closing_fees=agg["cf"] or 0,
        funding=agg["ff"] or 0,
    )


def pnl_per_day(rows: QuerySet[ClosedTrade], days: int = 30) -> list[tuple[dt.date, int]]:
    """Net realised PnL per calendar day (the user's time zone) for the last ``days`` days, zero days included."""
    today = timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(first, dt.time.min, tzinfo=tz)
    per_day: OrderedDict[dt.date, int] = OrderedDict((first + dt.timedelta(days=i), 0) for i in range(days))
    for row in (
        rows.select_related(None)
        .filter(canceled=False, closed_at__gte=since)
        .only("closed_at", "pl", "opening_fee", "closing_fee", "funding_fees")
    ):
        day = timezone.localtime(row.closed_at).date()
        if day in per_day:
            per_day[day] += row.net_pl
    return list(per_day.items())


def balance_series(user: User, account: ExchangeAccount | None, limit: int = 500) -> list[tuple[dt.datetime, int]]:
    """The total balance (free + in margin) over time; for all accounts, the sum of each account's latest point
    at every moment one of them changed."""
    points = BalancePoint.objects.filter(account__owner=user).order_by("at", "id")
    if account is not None:
        points = points.filter(account=account)
    latest: dict[int, int] = {}
    series: list[tuple[dt.datetime, int]] = []
    for point in points.only("account_id", "at", "free", "in_margin"):
        latest[point.account_id] = point.total
        series.append((point.at, sum(latest.values())))
    return series[-limit:]


@dataclass
class AutomationSummary:
    automation: Automation
    actions: int = 0
    rejected: int = 0
    margin_added: int = 0
    opened: int = 0
    opened_pl: int = 0
    closed: int = 0
    closed_pl: int = 0
    by_action: dict[str, int] = field(default_factory=dict)


def automation_summaries(user: User, account: ExchangeAccount | None) -> list[AutomationSummary]:
    """What each automation did: orders sent (done, refused), margin added, trades it opened and closed with
    their net realised PnL."""
    automations = Automation.objects.filter(account__owner=user).select_related("account")
    if account is not None:
        automations = automations.filter(account=account)
    summaries = {a.pk: AutomationSummary(automation=a) for a in automations}
    intents = OrderIntent.objects.filter(automation_id__in=summaries).only(
        "automation_id", "action", "state", "params", "trade_id", "account_id"
    )
    opened: dict[tuple[int, str], int] = {}
    for intent in intents:
        assert intent.automation_id is not None
        summary = summaries[intent.automation_id]
        if intent.state == OrderIntent.State.REJECTED:
            summary.rejected += 1
            continue
        summary.actions += 1
        summary.by_action[intent.action] = summary.by_action.get(intent.action, 0) + 1
        if intent.action == OrderIntent.Action.ADD_MARGIN and intent.state == OrderIntent.State.RECONCILED:
            summary.margin_added += int(intent.params.get("amount", 0))
        if intent.action == OrderIntent.Action.OPEN and intent.trade_id:
            summary.opened += 1
            opened[(intent.account_id, intent.trade_id)] = intent.automation_id
    for row in ClosedTrade.objects.filter(account__owner=user, canceled=False).only(
        "account_id", "trade_id", "automation_id", "pl", "opening_fee", "closing_fee", "funding_fees"
    ):
        if row.automation_id in summaries:
            summaries[row.automation_id].closed += 1
            summaries[row.automation_id].closed_pl += row.net_pl
        opener = opened.get((row.account_id, row.trade_id))
        if opener is not None:
            summaries[opener].opened_pl += row.net_pl
    return list(summaries.values())
