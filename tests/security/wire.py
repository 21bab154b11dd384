"""The dashboard socket on the wire, shared by the real-server hardening tests (Daphne embedded, Uvicorn)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin


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
