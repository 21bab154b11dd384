"""`make run`'s real stack (Daphne, the worker, beat, the feed): what the Channels test communicator cannot show.

* items 3 and 4: frames of 16-64 KiB and deeply nested JSON through real Daphne close with the application's code
  (or keep the socket open), never 1011, and log no traceback;
* item 8: var/ is 0700 and every file in it 0600 (SQLite with its WAL files, secrets, simulator state);
* /readyz reports ready (database, broker, feed, worker heartbeat) and /metrics serves the metrics.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager

import pytest
import requests
from websockets.sync.client import ClientConnection

from lnmarkets.simulator.server import SAVE_EVERY
from realtime.consumers import CLOSE_TOO_LARGE
from tests.embedded_server import EmbeddedServer, embedded_server
from tests.security.wire import close_code, dashboard_socket, log_after_a_too_large_frame


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with embedded_server(tmp_path_factory.mktemp("hardening") / "var") as running:
        yield running


@pytest.fixture(scope="module")
def session(server: EmbeddedServer) -> requests.Session:
    s = requests.Session()
    s.get(f"{server.url}/accounts/login/", timeout=5)
    response = s.post(
        f"{server.url}/accounts/login/",
        data={"username": "demo", "password": server.demo_password, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
        headers={"Referer": f"{server.url}/accounts/login/"},
        timeout=5,
    )
    assert response.status_code == 200
    return s


def _socket(server: EmbeddedServer, session: requests.Session) -> AbstractContextManager[ClientConnection]:
    return dashboard_socket(server.url, session)


@pytest.mark.parametrize("size", [16 * 1024 + 1, 40 * 1024, 64 * 1024 - 64])
def test_item3_frames_of_16_to_64_kib_close_with_4009_through_daphne(server, session, size) -> None:
    with _socket(server, session) as ws:
        ws.send('"' + "x" * (size - 2) + '"')
        reply = json.loads(ws.recv(timeout=10))
        assert reply["data"]["code"] == "too_large"
        assert close_code(ws) == CLOSE_TOO_LARGE


def test_item4_nested_frames_are_bad_json_and_the_socket_lives_on(server, session) -> None:
    with _socket(server, session) as ws:
        for _ in range(3):
            ws.send("[" * 1000)
            assert json.loads(ws.recv(timeout=10))["data"]["code"] == "bad_json"
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"


def test_no_traceback_and_no_1011_in_the_server_log(server, session) -> None:
    log = log_after_a_too_large_frame(server.url, session, server.log, first=["[" * 1000])
    assert "Traceback" not in log
    assert "invalid close code" not in log.lower()
    assert "RecursionError" not in log


def test_item8_var_dir_is_private(server, session) -> None:
    var_dir = server.log.parent
    assert stat.S_IMODE(var_dir.stat().st_mode) == 0o700
    deadline = time.monotonic() + SAVE_EVERY + 10  # the simulator saves its state every SAVE_EVERY seconds
    while not (var_dir / "simulator_state.json").exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    names = {p.name for p in var_dir.iterdir()}
    assert {"db.sqlite3", "simulator_state.json", "local_secrets.json", "demo_login.json"} <= names
    for path in var_dir.iterdir():
        if path.is_file() and path.name != "server.log":  # the test's own capture of the server's output
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_readyz_is_ready_and_metrics_are_served_on_the_embedded_default(server, session) -> None:
    # ready soon after start: the in-process worker beats when it starts, not only at the first 30 s beat
    deadline = time.monotonic() + 15
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        response = requests.get(f"{server.url}/readyz", timeout=10)
        body = response.json()
        if response.status_code == 200:
            break
        time.sleep(1)
    assert body.get("status") == "ready", body
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert set(checks) == {"database", "broker", "feed", "workers"}
    assert "simulator" in checks["feed"]["tick_age_s"]
    metrics = requests.get(f"{server.url}/metrics", timeout=10)
    assert metrics.status_code == 200
    text = metrics.text
    for name in (
        "axisor_market_ticks_total",
        "axisor_market_tick_age_seconds",
        "axisor_order_intents",
        "axisor_order_latency_seconds",
        "axisor_websockets_open",
        "axisor_task_queue_depth",
        "axisor_notification_queue_depth",
    ):
        assert name in text, name
    ticks = [line for line in text.splitlines() if line.startswith('axisor_market_ticks_total{network="simulator"}')]
    assert float(ticks[0].split()[-1]) > 0


def test_security_headers_on_the_embedded_pages(server, session) -> None:
    page = session.get(f"{server.url}/", timeout=10)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "no-store" in page.headers["Cache-Control"]


def test_the_server_log_has_no_secret(server) -> None:
    secrets = json.loads((server.log.parent / "local_secrets.json").read_text())
    log = server.log.read_text()
    for value in secrets.values():
        assert value not in log
