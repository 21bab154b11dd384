"""Snapshots served from shared parts: the market part once per tick per process, each user's part once per change.

A snapshot is two parts (issue #14):

* the **market part** (the state the publisher stores once per tick) is the same for every user of a network:
  ``realtime.market.shared_market_state`` reads it from the cache at most once per ``SHARED_REFRESH_S`` per
  process and network, and every request in between reuses it; only its age is measured per request.
* the **user part** (accounts, positions' raw rows, balance, automations, audit) changes only when one of the
  user's per-user events is published, and every such event advances the user's ``event_seq`` (after the commit;
  ``axisor_bus.publish``). ``cached_snapshot`` stores the user part with the user's ``event_seq`` read before the
  database, and uses a stored part only while that number is still the current one (both read in one round trip):
  whatever is stored with number N was read after every change announced up to N, so a later event always means a
  fresh read. This is exactly the freshness of a live socket, which also changes only on those events;
  ``USER_PART_TTL_S`` bounds how long a change that announces no event (a renamed account) can stay unseen.

Positions and the balance are then re-marked at the market part's price (pure, no query), as the socket does on
each tick. The dashboard page itself still reads the database directly.
"""

from __future__ import annotations

from typing import TypedDict

from django.core.cache import cache
from django.utils import translation

from accounts.models import User
from axisor_bus.publish import user_seq_key, user_seq_value
from realtime import ops
from realtime import snapshot as snap
from realtime.market import shared_market_state

USER_PART_TTL_S = 120


class _UserPart(TypedDict):
    event_seq: int
    snapshot: snap.Snapshot
    rows: list[snap.PositionRow]


def _key(user_id: int, account_id: int | None) -> str:
    # The language too: audit messages are rendered in the active one.
    shown = account_id if account_id is not None else "active"
    return f"realtime:snapshot:{int(user_id)}:{shown}:{translation.get_language() or '-'}"


def _snapshot(
    user: User, account_id: int | None, *also: str
) -> tuple[snap.Snapshot, list[snap.PositionRow], int, dict[str, object]]:
    """The snapshot, its rows and ``event_seq``, and the cached values of the keys ``also``: the counter, the stored
    user part and ``also`` in one round trip. The stored part is used only when it was built at the current
    ``event_seq`` (the number it holds was read before its database reads)."""
    seq_key, part_key = user_seq_key(user.pk), _key(user.pk, account_id)
    found = cache.get_many([seq_key, part_key, *also])
    event_seq = user_seq_value(found.get(seq_key))
    part: _UserPart | None = found.get(part_key)
    if part is None or part.get("event_seq") != event_seq:
        data, rows = snap.build_snapshot(user=user, account_id=account_id)
        part = {"event_seq": event_seq, "snapshot": data, "rows": rows}
        cache.set(part_key, part, USER_PART_TTL_S)
    data, rows = part["snapshot"], part["rows"]
    account = data["account"]
    market = shared_market_state(account["network"] if account else data["market"]["network"])
    out: snap.Snapshot = {**data, "market": market}
    if account is not None and data["balance"] is not None:
        positions = snap.mark_positions(account["id"], rows, market["last"])
        out["positions"] = positions
        out["balance"] = snap.remark_balance(data["balance"], positions)
    return out, rows, event_seq, found


def cached_snapshot(*, user: User, account_id: int | None = None) -> tuple[snap.Snapshot, list[snap.PositionRow], int]:
    """``build_snapshot`` from the shared parts; also returns the ``event_seq`` it is current to (see the module
    docstring: a consumer applies events after that number)."""
    data, rows, event_seq, _found = _snapshot(user, account_id)
    return data, rows, event_seq


def fallback_snapshot(*, user: User, account_id: int | None = None) -> tuple[snap.Snapshot, ops.SocketsMode]:
    """``cached_snapshot`` for the HTTP fallback, with whether live sockets are paused (``realtime.ops``), read in
    the same round trip."""
    data, _rows, _seq, found = _snapshot(user, account_id, ops.PAUSED_KEY)
    return data, ops.mode_of(found.get(ops.PAUSED_KEY))
