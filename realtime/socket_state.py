"""One dashboard socket's state, as a plain synchronous class that returns the frames to send (no I/O, no await).

The consumer (``realtime.consumers``) keeps authentication, groups, the database reads and the forwarding; what a
socket shows and how each event changes it lives here, so it is tested without a socket:

* ``seq``: every frame this socket sends is numbered from 1 with no gaps (``frame``);
* ``event_seq``: the last per-user event applied; an event whose number jumps past it means the channel layer
  dropped one, and the consumer sends a fresh snapshot instead (``needs_resync``);
* the shown account, its network, the raw position rows and balance, re-marked on every tick of that network
  (``on_tick``: one ``tick`` frame ``{"ticker", "positions"?, "balance"?}``, the last two when there are
  positions, then ``status`` when the market's state changed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from realtime import snapshot as snap
from realtime.market import MarketData

Clock = Callable[[], datetime]


class SocketState:
    """See the module docstring."""

    def __init__(self, clock: Clock = timezone.now) -> None:
        self.clock = clock
        self.seq = 0
        self.event_seq = 0
        self.account_id: int | None = None
        self.network: str | None = None
        self.rows: list[snap.PositionRow] = []
        self.balance: snap.BalanceData | None = None
        self.last_state: str | None = None

    # --- frames ---------------------------------------------------------------------------------------------------

    def frame(self, kind: str, data: Any) -> str:  # noqa: ANN401 - JSON-ready payloads
        """One ``{"type", "seq", "ts", "data"}`` frame; ``seq`` grows by exactly one per frame."""
        return self.encoded_frame(kind, json.dumps(data))

    def encoded_frame(self, kind: str, data_json: str) -> str:
        """``frame`` for a payload already encoded (a market event is encoded once per process, not per socket)."""
        self.seq += 1
        return f'{{"type":"{kind}","seq":{self.seq},"ts":"{self.clock().isoformat()}","data":{data_json}}}'

    def error(self, code: str, message: str) -> str:
        return self.frame("error", {"code": code, "message": message})

    # --- state changes --------------------------------------------------------------------------------------------

    def on_snapshot(self, data: snap.Snapshot, rows: list[snap.PositionRow], event_seq: int) -> list[str]:
        """Show ``data`` (read after ``event_seq`` was: an event issued meanwhile is applied again, never lost)."""
        account = data["account"]
        self.event_seq = event_seq
        self.account_id = account["id"] if account else None
        self.network = account["network"] if account else None
        self.rows, self.balance = rows, data["balance"]
        self.last_state = data["market"]["state"]
        return [self.frame("snapshot", data)]

    def needs_resync(self, event: dict[str, Any]) -> bool:
        """Track the per-user ``event_seq`` of ``event``; ``True`` on a jump (an event was dropped on the way)."""
        seq = event.get("event_seq")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return False
        gap = seq > self.event_seq + 1
        self.event_seq = max(self.event_seq, seq)
        return gap

    def shows(self, event: dict[str, Any]) -> bool:
        """Is ``event`` about the account this socket shows?"""
        return self.account_id is not None and event.get("account_id") == self.account_id

    def on_account(
        self, parts: tuple[list[snap.PositionRow], snap.PositionsData, snap.BalanceData] | None
    ) -> list[str]:
        """Freshly read rows, positions and balance of the shown account."""
        if parts is None:
            return []
        self.rows, positions, self.balance = parts
        return [self.frame("balance", self.balance), self.frame("positions", positions)]

    def on_tick(self, market: MarketData, encoded: str) -> list[str]:
        """A tick (``encoded`` is ``market`` as JSON): one ``tick`` frame with the ticker and, when there are
        positions, the positions and balance re-marked at its price; then the status if it changed.

        One frame, not three: each frame is one write to the socket (a system call) and one pass through the ASGI
        send stack, so at 2,000 sockets three frames a tick were most of a process's fan-out cost
        (docs/capacity.md)."""
        if market.get("network") != self.network or self.account_id is None:
            return []
        parts = [f'"ticker":{encoded}']
        if self.rows:
            positions = snap.mark_positions(self.account_id, self.rows, market["last"])
            parts.append(f'"positions":{json.dumps(positions)}')
            if self.balance is not None:
                self.balance = snap.remark_balance(self.balance, positions)
                parts.append(f'"balance":{json.dumps(self.balance)}')
        return [self.encoded_frame("tick", "{" + ",".join(parts) + "}"), *self.on_status(market)]

    def on_status(self, market: MarketData) -> list[str]:
        """A ``status`` frame when the shown network's market state changed (live / fallback / stale)."""
        if market.get("network") != self.network or market["state"] == self.last_state:
            return []
        self.last_state = market["state"]
        return [self.frame("status", snap.status_data(market))]
