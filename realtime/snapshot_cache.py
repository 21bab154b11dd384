"""Snapshots served from shared parts: the market part once per tick per process, each user's part once per change.

A snapshot is two parts (issue #14):

* the **market part** (the state the publisher stores once per tick) is the same for every user of a network:
  ``realtime.market.shared_market_state`` reads it from the cache at most once per ``SHARED_REFRESH_S`` per
  process and network, and every request in between reuses it; only its age is measured per request.
* the **user part** (accounts, positions' raw rows, balance, automations, audit) changes only when one of the
  user's per-user events is published, and every such event advances the user's ``event_seq`` (after the commit;
  ``axisor_bus.publish``). ``cached_snapshot`` keeps the user part in the cache under the user's *current*
  ``event_seq``, read before the database: whatever is stored under number N was read after every change announced
  up to N, so a later event always means a new key and a fresh read. This is exactly the freshness of a live
  socket, which also changes only on those events; ``USER_PART_TTL_S`` bounds how long a change that announces
  no event (a renamed account) can stay unseen.

Positions and the balance are then re-marked at the market part's price (pure, no query), as the socket does on
each tick. The dashboard page itself still reads the database directly.
"""

from __future__ import annotations

from typing import TypedDict

from django.core.cache import cache
from django.utils import translation

from accounts.models import User
from axisor_bus.publish import current_user_seq
from realtime import snapshot as snap
from realtime.market import shared_market_state

USER_PART_TTL_S = 120


class _UserPart(TypedDict):
    snapshot: snap.Snapshot
    rows: list[snap.PositionRow]


def _key(user_id: int, account_id: int | None, event_seq: int) -> str:
    # The language too: audit messages are rendered in the active one.
    shown = account_id if account_id is not None else "active"
    return f"realtime:snapshot:{int(user_id)}:{shown}:{translation.get_language() or '-'}:{event_seq}"


def cached_snapshot(*, user: User, account_id: int | None = None) -> tuple[snap.Snapshot, list[snap.PositionRow], int]:
    """``build_snapshot`` from the shared parts; also returns the ``event_seq`` it is current to (see the module
    docstring: a consumer applies events after that number)."""
    event_seq = current_user_seq(user.pk)
    key = _key(user.pk, account_id, event_seq)
    part: _UserPart | None = cache.get(key)
    if part is None:
        data, rows = snap.build_snapshot(user=user, account_id=account_id)
        part = {"snapshot": data, "rows": rows}
        cache.set(key, part, USER_PART_TTL_S)
    data, rows = part["snapshot"], part["rows"]
    account = data["account"]
    market = shared_market_state(account["network"] if account else data["market"]["network"])
    out: snap.Snapshot = {**data, "market": market}
    if account is not None and data["balance"] is not None:
        positions = snap.mark_positions(account["id"], rows, market["last"])
        out["positions"] = positions
        out["balance"] = snap.remark_balance(data["balance"], positions)
    return out, rows, event_seq
