"""The dashboard socket on the wire, shared by the real-server hardening tests (Daphne embedded, Uvicorn)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from realtime.consumers import CLOSE_TOO_LARGE


@contextmanager
def dashboard_socket(base_url: str, session: requests.Session) -> Iterator[ClientConnection]:
    """A logged-in dashboard socket of the server at ``base_url``, its first snapshot already read."""
    with connect(
        base_url.replace("http://", "ws://") + "/ws/dashboard/",
        origin=Origin(base_url),
        additional_headers={"Cookie": f"sessionid={session.cookies['sessionid']}"},
        max_size=None,
        open_timeout=10,
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "snapshot"
        yield ws


def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent (``None`` without a close frame)."""
    try:
        while True:
            ws.recv(timeout=10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


def log_after_a_too_large_frame(base_url: str, session: requests.Session, log: Path, first: Sequence[str] = ()) -> str:
    """Send ``first`` (each answered), then a 20 KiB frame, which must close with the application's 4009; the
    server's log once it has had time to write."""
    with dashboard_socket(base_url, session) as ws:
        for frame in first:
            ws.send(frame)
            ws.recv(timeout=10)
        ws.send("x" * (20 * 1024))
        ws.recv(timeout=10)
        assert close_code(ws) == CLOSE_TOO_LARGE
    time.sleep(0.5)
    return log.read_text()
