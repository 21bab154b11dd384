"""The dashboard's state, as plain JSON-ready dicts (selectors for the consumer and the HTTP fallback).

Contract: every function here is scoped to the owner it is given; nothing calls the exchange. Money is ``int`` sats,
prices are ``str`` USD, times are ISO-8601 UTC strings; payloads carry display fields and ids only (no secrets, no
model dumps). Market data comes from ``realtime.market.market_state`` (the cache the ``MarketPublisher`` fills), so
a web process without a feed still answers, and says ``stale`` when nothing fresh is known.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NotRequired, TypedDict

from accounts.models import ExchangeAccount, Network, User
from automations.audit_text import audit_text
from automations.kinds import KINDS
from automations.models import AuditEntry, Automation, TrackedTrade
from lnmarkets import maths
from realtime.market import MarketData, market_state

AUDIT_LIMIT = 20


class AccountData(TypedDict):
    id: int
    label: str
    network: str
    is_paper: bool
    kill_switch: bool
    entries_halted: bool


class BalanceData(TypedDict):
    account_id: int
    total: int | None
    free: int | None
    in_margin: int
    unrealized_pl: int
    updated_at: str | None


class GuardRef(TypedDict):
    """An automation guarding a position, named on its chip."""

    id: int
    name: str


class PositionRow(TypedDict):
    """A running trade's raw figures, kept by the consumer to re-mark PnL on each tick without a query."""

    id: int
    trade_id: str
    side: str
    quantity: int
    entry_price: str
    liquidation: str
    stoploss: NotRequired[str]  # "0" = none
    takeprofit: NotRequired[str]  # "0" = none
    margin: int
    maintenance_margin: int
    pl: int
    managed: bool
    origin: str
    guarded_by: list[int]
    guards: list[GuardRef]


class PositionData(PositionRow):
    """A position as shown: the raw figures marked at a price."""

    pl_percent: str | None
    margin_ratio: str
    distance_to_liquidation: str | None
    marked_at: str | None


class PositionsData(TypedDict):
    account_id: int
    count: int
    running: int
    items: list[PositionData]


class AutomationData(TypedDict):
    id: int
    name: str
    kind: str
    status: str
    status_message: str
    last_evaluated_at: str | None


class AutomationsData(TypedDict):
    account_id: int
    count: int
    active: int
    items: list[AutomationData]


class AuditData(TypedDict):
    id: int
    account_id: int
    automation_id: int | None
    automation_name: str
    kind: str
    event: str
    outcome: str
    message: str
    created_at: str


class Snapshot(TypedDict):
    account: AccountData | None
    accounts: list[AccountData]
    balance: BalanceData | None
    positions: PositionsData | None
    automations: AutomationsData | None
    audit: list[AuditData]
    market: MarketData


def _iso(value: Any) -> str | None:  # noqa: ANN401 - a datetime or None
    return None if value is None else value.isoformat()


def account_data(account: ExchangeAccount) -> AccountData:
    """Display fields of an account (no credentials, not even the key hint)."""
    return {
        "id": account.pk,
        "label": account.label,
        "network": account.network,
        "is_paper": account.network == Network.SIMULATOR,
        "kill_switch": account.kill_switch,
        "entries_halted": account.entries_halted,
    }


def account_for_user(*, user: User, account_id: int | None = None) -> ExchangeAccount | None:
    """``account_id`` if the user owns it (``None`` otherwise, with no hint that it exists), else the active one."""
    accounts = ExchangeAccount.objects.filter(owner=user)
    if account_id is not None:
        return accounts.filter(pk=account_id).first()
    return accounts.filter(is_active=True).first() or accounts.order_by("label", "id").first()


def _automations(account: ExchangeAccount) -> list[Automation]:
    """The account's automations, by name (what the dashboard lists, and what guards its positions)."""
    return list(Automation.objects.filter(account=account).order_by("name", "id"))


def _guards(automations: list[Automation]) -> list[tuple[int, str, tuple[str, ...]]]:
    """(automation id, name, trade ids) of the active trade-watching ones among ``automations``."""
    guards: list[tuple[int, str, tuple[str, ...]]] = []
    kinds = {key for key, kind in KINDS.items() if kind.on_trades}
    for automation in automations:
        if automation.kind not in kinds or automation.status != Automation.Status.ACTIVE:
            continue
        raw = automation.config.get("trade_ids") if isinstance(automation.config, dict) else None
        trade_ids = tuple(str(t) for t in raw) if isinstance(raw, list | tuple) else ()
        guards.append((automation.pk, automation.name, trade_ids))
    return guards


def position_rows(account: ExchangeAccount, automations: list[Automation] | None = None) -> list[PositionRow]:
    """The account's running trades with the automations that guard each (the engine's scope rule: managed trades,
    all of them or the listed ``trade_ids``); ``automations``: the account's, when already read."""
    guards = _guards(_automations(account) if automations is None else automations)
    rows: list[PositionRow] = []
    trades = TrackedTrade.objects.filter(account=account, state=TrackedTrade.State.RUNNING).order_by("-first_seen_at")
    for trade in trades:
        guarding = [(aid, name) for aid, name, ids in guards if trade.managed and (not ids or trade.trade_id in ids)]
        rows.append(
            {
                "id": trade.pk,
                "trade_id": trade.trade_id,
                "side": trade.side,
                "quantity": trade.quantity,
                "entry_price": str(trade.entry_price),
                "liquidation": str(trade.liquidation),
                "stoploss": str(trade.stoploss),
                "takeprofit": str(trade.takeprofit),
                "margin": trade.margin,
                "maintenance_margin": trade.maintenance_margin,
                "pl": trade.pl,
                "managed": trade.managed,
                "origin": trade.origin,
                "guarded_by": [aid for aid, _ in guarding],
                "guards": [{"id": aid, "name": name} for aid, name in guarding],
            }
        )
    return rows


def mark_positions(account_id: int, rows: list[PositionRow], last_price: str | None) -> PositionsData:
    """Positions marked at ``last_price`` (PnL in sats and %, margin ratio, distance to liquidation).

    Pure: no query. Without a price the stored ``pl`` of each trade is used and the distance is ``None``.
    """
    mark = Decimal(last_price) if last_price else None
    items: list[PositionData] = []
    for row in rows:
        entry, liquidation = Decimal(row["entry_price"]), Decimal(row["liquidation"])
        side: maths.Side = "buy" if row["side"] == "buy" else "sell"
        pl = maths.pnl(side, row["quantity"], entry, mark) if mark and entry > 0 else row["pl"]
        margin = row["margin"]
        items.append(
            {
                **row,
                "pl": pl,
                "pl_percent": f"{maths.pnl_percent(pl, margin):.2f}" if margin > 0 else None,
                "margin_ratio": f"{maths.margin_ratio(row['maintenance_margin'], margin, pl):.2f}",
                "distance_to_liquidation": (
                    f"{maths.distance_to_liquidation(mark, liquidation):.2f}" if mark and mark > 0 else None
                ),
                "marked_at": last_price,
            }
        )
    return {"account_id": account_id, "count": len(items), "running": len(items), "items": items}


def balance_data(account: ExchangeAccount, positions: PositionsData) -> BalanceData:
    """Free balance (stored), margin in running trades, unrealised PnL and total = free + margin + PnL."""
    in_margin = sum(p["margin"] for p in positions["items"])
    unrealized = sum(p["pl"] for p in positions["items"])
    free = account.balance
    return {
        "account_id": account.pk,
        "free": free,
        "in_margin": in_margin,
        "unrealized_pl": unrealized,
        "total": None if free is None else free + in_margin + unrealized,
        "updated_at": _iso(account.balance_updated_at),
    }


def remark_balance(balance: BalanceData, positions: PositionsData) -> BalanceData:
    """``balance`` with margin, unrealised PnL and total recomputed from freshly marked ``positions`` (pure)."""
    in_margin = sum(p["margin"] for p in positions["items"])
    unrealized = sum(p["pl"] for p in positions["items"])
    free = balance["free"]
    return {
        **balance,
        "in_margin": in_margin,
        "unrealized_pl": unrealized,
        "total": None if free is None else free + in_margin + unrealized,
    }


class StatusData(TypedDict):
    state: str
    source: str | None
    age_ms: int | None
    stale_after_ms: int


def status_data(market: MarketData) -> StatusData:
    """The ``status`` message: whether exchange data is live (stream), from the HTTP fallback, or stale."""
    return {
        "state": market["state"],
        "source": market["source"],
        "age_ms": market["age_ms"],
        "stale_after_ms": market["stale_after_ms"],
    }


def automations_data(account: ExchangeAccount, automations: list[Automation] | None = None) -> AutomationsData:
    """The account's automations with their status (``automations``: the account's, when already read)."""
    items: list[AutomationData] = [
        {
            "id": a.pk,
            "name": a.name,
            "kind": a.kind,
            "status": a.status,
            "status_message": a.status_message,
            "last_evaluated_at": _iso(a.last_evaluated_at),
        }
        for a in (_automations(account) if automations is None else automations)
    ]
    active = sum(1 for a in items if a["status"] == Automation.Status.ACTIVE)
    return {"account_id": account.pk, "count": len(items), "active": active, "items": items}


def audit_data(entry: AuditEntry) -> AuditData:
    """Display fields of one audit entry (its message in the active language, not the inputs/decision JSON)."""
    return {
        "id": entry.pk,
        "account_id": entry.account_id,
        "automation_id": entry.automation_id,
        "automation_name": entry.automation.name if entry.automation_id is not None and entry.automation else "",
        "kind": entry.kind,
        "event": entry.event,
        "outcome": entry.outcome,
        "message": audit_text(entry),
        "created_at": entry.created_at.isoformat(),
    }


def audit_entry_for_account(*, account_id: int, entry_id: int) -> AuditData | None:
    """One audit entry of ``account_id``, or ``None``."""
    entry = AuditEntry.objects.filter(pk=entry_id, account_id=account_id).select_related("automation").first()
    return None if entry is None else audit_data(entry)


def account_parts(
    account: ExchangeAccount, automations: list[Automation] | None = None, market: MarketData | None = None
) -> tuple[list[PositionRow], PositionsData, BalanceData]:
    """Rows, marked positions and balance of ``account`` at the cached market price (``automations``, ``market``:
    when already read)."""
    rows = position_rows(account, automations)
    positions = mark_positions(account.pk, rows, (market or market_state(account.network))["last"])
    return rows, positions, balance_data(account, positions)


# What ``account_data``, ``balance_data`` and the market read of an account (not its credentials).
_ACCOUNT_FIELDS = (
    "owner_id",
    "label",
    "network",
    "is_active",
    "kill_switch",
    "entries_halted",
    "balance",
    "balance_updated_at",
)


def build_snapshot(*, user: User, account_id: int | None = None) -> tuple[Snapshot, list[PositionRow]]:
    """The full dashboard state of ``user`` for ``account_id`` (owned) or the active account.

    Returns the snapshot and the raw position rows (for re-marking on ticks). An account id the user does not own
    gives the same answer as having no account: ``account`` is ``None``. Four queries: the user's accounts, the shown
    account's automations, running trades and latest audit entries (a cold snapshot of every socket of a storm).
    """
    # The active account sorts first (at most one per user); without one, the first by label is shown, as
    # ``account_for_user`` chooses.
    owned = list(
        ExchangeAccount.objects.filter(owner=user).only(*_ACCOUNT_FIELDS).order_by("-is_active", "label", "id")
    )
    if account_id is not None:
        account = next((a for a in owned if a.pk == account_id), None)
    else:
        account = owned[0] if owned else None
    accounts = [account_data(a) for a in owned]
    if account is None:
        snap: Snapshot = {
            "account": None,
            "accounts": accounts,
            "balance": None,
            "positions": None,
            "automations": None,
            "audit": [],
            "market": market_state(Network.SIMULATOR),
        }
        return snap, []
    market = market_state(account.network)
    automations = _automations(account)
    rows, positions, balance = account_parts(account, automations, market)
    entries = (AuditEntry.objects.filter(account=account).select_related("automation").order_by("-created_at", "-id"))[
        :AUDIT_LIMIT
    ]
    audit = [audit_data(e) for e in entries]
    snap = {
        "account": account_data(account),
        "accounts": accounts,
        "balance": balance,
        "positions": positions,
        "automations": automations_data(account, automations),
        "audit": audit,
        "market": market,
    }
    return snap, rows
