"""The per-socket dashboard state (``realtime.socket_state``), without a socket: frames, seq, re-marking, resync."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lnmarkets import maths
from realtime import snapshot as snap
from realtime.socket_state import SocketState
from tests.realtime.conftest import market

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _row(**kwargs: Any) -> snap.PositionRow:
    row: snap.PositionRow = {
        "id": 1,
        "trade_id": "t-1",
        "side": "buy",
        "quantity": 100,
        "entry_price": "95000",
        "liquidation": "86500",
        "margin": 10_000,
        "maintenance_margin": 200,
        "pl": 0,
        "managed": True,
        "origin": "axisor",
        "guarded_by": [],
        "guards": [],
    }
    row.update(kwargs)  # type: ignore[typeddict-item]
    return row


def _snapshot(network: str = "simulator", state: str = "live") -> snap.Snapshot:
    account: snap.AccountData = {
        "id": 7,
        "label": "main",
        "network": network,
        "is_paper": True,
        "kill_switch": False,
        "entries_halted": False,
    }
    balance: snap.BalanceData = {
        "account_id": 7,
        "total": 260_000,
        "free": 250_000,
        "in_margin": 10_000,
        "unrealized_pl": 0,
        "updated_at": None,
    }
    return {
        "account": account,
        "accounts": [account],
        "balance": balance,
        "positions": None,
        "automations": None,
        "audit": [],
        "market": market(network=network, state=state),
    }


def _shown(rows: list[snap.PositionRow] | None = None) -> SocketState:
    state = SocketState(clock=lambda: NOW)
    state.on_snapshot(_snapshot(), [_row()] if rows is None else rows, event_seq=4)
    return state


def test_frames_are_numbered_without_gaps_and_carry_the_clock() -> None:
    state = SocketState(clock=lambda: NOW)
    frames = [
        json.loads(state.frame("pong", {})),
        json.loads(state.error("bad_json", "no")),
        json.loads(state.frame("x", [1])),
    ]
    assert [f["seq"] for f in frames] == [1, 2, 3]
    assert frames[0] == {"type": "pong", "seq": 1, "ts": NOW.isoformat(), "data": {}}
    assert frames[1]["data"] == {"code": "bad_json", "message": "no"}


def test_a_snapshot_sets_what_the_socket_shows() -> None:
    state = SocketState(clock=lambda: NOW)
    [frame] = state.on_snapshot(_snapshot(), [_row()], event_seq=4)
    assert json.loads(frame)["type"] == "snapshot"
    assert (state.account_id, state.network, state.event_seq, state.last_state) == (7, "simulator", 4, "live")


def test_a_tick_re_marks_positions_and_balance_at_its_price() -> None:
    state = _shown()
    tick = market(last="100000")
    frames = [json.loads(f) for f in state.on_tick(tick, json.dumps(tick))]
    assert [f["type"] for f in frames] == ["tick"]  # one frame (one socket write) per tick
    data = frames[0]["data"]
    assert data["ticker"] == tick
    expected_pl = maths.pnl("buy", 100, Decimal("95000"), Decimal("100000"))
    assert expected_pl > 0
    assert data["positions"]["items"][0]["pl"] == expected_pl
    assert data["balance"]["unrealized_pl"] == expected_pl
    assert data["balance"]["total"] == 250_000 + 10_000 + expected_pl
    assert frames[0]["seq"] == 2
    assert state.balance == data["balance"]  # the next tick re-marks from this one


def test_a_tick_of_another_network_or_without_an_account_sends_nothing() -> None:
    state = _shown()
    other = market(network="mainnet")
    assert state.on_tick(other, json.dumps(other)) == []
    empty = SocketState(clock=lambda: NOW)
    assert empty.on_tick(market(), "{}") == []
    assert state.seq == 1
    assert empty.seq == 0


def test_without_positions_a_tick_is_the_ticker_only() -> None:
    state = _shown(rows=[])
    tick = market()
    [frame] = [json.loads(f) for f in state.on_tick(tick, json.dumps(tick))]
    assert frame["type"] == "tick"
    assert frame["data"] == {"ticker": tick}


def test_status_is_sent_once_per_change_of_state() -> None:
    state = _shown()
    assert state.on_status(market(state="live")) == []
    [frame] = state.on_status(market(state="stale"))
    assert json.loads(frame)["data"]["state"] == "stale"
    assert state.on_status(market(state="stale")) == []
    tick = market(state="live")
    assert [json.loads(f)["type"] for f in state.on_tick(tick, json.dumps(tick))][-1] == "status"


def test_an_event_seq_jump_asks_for_a_resync_and_old_or_missing_numbers_do_not() -> None:
    state = _shown()  # event_seq 4
    assert state.needs_resync({"event_seq": 5}) is False
    assert state.needs_resync({"event_seq": 5}) is False  # a repeat
    assert state.needs_resync({"event_seq": 3}) is False  # older than the snapshot
    assert state.needs_resync({}) is False
    assert state.needs_resync({"event_seq": True}) is False
    assert state.needs_resync({"event_seq": 7}) is True  # 6 was dropped
    assert state.event_seq == 7


def test_events_of_another_account_are_not_shown_and_fresh_parts_replace_the_rows() -> None:
    state = _shown()
    assert state.shows({"account_id": 7})
    assert not state.shows({"account_id": 8})
    rows = [_row(id=2, trade_id="t-2", margin=5_000)]
    positions = snap.mark_positions(7, rows, "100000")
    balance = snap.remark_balance(_snapshot()["balance"], positions)  # type: ignore[arg-type]
    frames = [json.loads(f) for f in state.on_account((rows, positions, balance))]
    assert [f["type"] for f in frames] == ["balance", "positions"]
    assert state.rows == rows
    assert state.balance == balance
    assert state.on_account(None) == []
