"""The WebSocket and HTTP hardening of issue #12 through the production server, Uvicorn with ``config.servers``'s
flags (docs/adr/0006-uvicorn.md), on the wire: what the Channels test communicator cannot show.

* frames of 16-64 KiB are the application's: ``too_large`` and close 4009, never 1011; over 64 KiB the server
  itself refuses the frame (1009); deeply nested JSON is ``bad_json`` and the socket lives on;
* a client cannot choose its address with ``X-Forwarded-For`` (``--no-proxy-headers``; the application trusts
  ``TRUSTED_PROXY_COUNT`` proxies, 0 here): five failed logins lock it out whatever the header says;
* pages carry the security headers, and the server's log has no traceback.

The server runs on a fresh SQLite file with the in-memory channel layer (one process, as the embedded default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from websockets.sync.client import ClientConnection

from config.servers import APPLICATION, UVICORN_ARGS
from realtime.consumers import CLOSE_TOO_LARGE
from tests.embedded_server import ROOT, free_port, manage, stop_process, wait_healthy
from tests.security.wire import close_code, dashboard_socket, log_after_a_too_large_frame

pytestmark = pytest.mark.slow
PASSWORD = "uvicorn-hardening-pw-1"  # noqa: S105 - a throwaway test login
_DROPPED = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS"}


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    var_dir = tmp_path_factory.mktemp("uvicorn") / "var"
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "AXISOR_VAR_DIR": str(var_dir)})
    manage(env, "migrate", "--noinput")
    for username in ("demo", "spoofer"):  # the second one is locked out by the X-Forwarded-For test
        manage(
            {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
            "createsuperuser", "--noinput", "--username", username, "--email", f"{username}@example.com",
        )  # fmt: skip
    port = free_port()
    log_path = var_dir / "uvicorn.log"
    with log_path.open("w+") as log:
        argv = [sys.executable, "-m", "uvicorn", APPLICATION, "--host", "127.0.0.1", "--port", str(port), *UVICORN_ARGS]
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(proc, url, log_path)
            yield Server(url=url, log=log_path)
        finally:
            stop_process(proc)


def _login(
    server: Server, password: str, forwarded_for: str | None = None, username: str = "demo"
) -> requests.Response:
    s = requests.Session()
    s.get(f"{server.url}/accounts/login/", timeout=5)
    headers = {"Referer": f"{server.url}/accounts/login/"}
    if forwarded_for is not None:
        headers["X-Forwarded-For"] = forwarded_for
    response = s.post(
        f"{server.url}/accounts/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": s.cookies["csrftoken"]},
        headers=headers,
        timeout=5,
    )
    response.session = s  # type: ignore[attr-defined]
    return response


@pytest.fixture(scope="module")
def session(server: Server) -> requests.Session:
    response = _login(server, PASSWORD)
    assert response.status_code == 200
    assert "sessionid" in response.session.cookies  # type: ignore[attr-defined]
    return response.session  # type: ignore[attr-defined, no-any-return]


def _socket(server: Server, session: requests.Session) -> AbstractContextManager[ClientConnection]:
    return dashboard_socket(server.url, session)


@pytest.mark.parametrize("size", [16 * 1024 + 1, 64 * 1024 - 64])
def test_frames_of_16_to_64_kib_close_with_the_applications_4009(server: Server, session, size: int) -> None:
    with _socket(server, session) as ws:
        ws.send('"' + "x" * (size - 2) + '"')
        assert json.loads(ws.recv(timeout=10))["data"]["code"] == "too_large"
        assert close_code(ws) == CLOSE_TOO_LARGE


def test_a_frame_over_64_kib_is_refused_by_the_server_with_1009(server: Server, session) -> None:
    with _socket(server, session) as ws:
        ws.send("x" * (64 * 1024 + 1))
        assert close_code(ws) == 1009


def test_nested_frames_are_bad_json_and_the_socket_lives_on(server: Server, session) -> None:
    with _socket(server, session) as ws:
        ws.send("[" * 1000)
        assert json.loads(ws.recv(timeout=10))["data"]["code"] == "bad_json"
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"


def test_a_client_cannot_choose_its_address_with_x_forwarded_for(server: Server) -> None:
    codes = [
        _login(server, "wrong-password", forwarded_for=f"203.0.113.{attempt}", username="spoofer").status_code
        for attempt in range(5)
    ]
    # had the header been believed, each attempt would have come from another address and none would lock
    assert codes == [200, 200, 200, 200, 429]
    locked = _login(server, PASSWORD, forwarded_for="198.51.100.7", username="spoofer")
    assert locked.status_code == 429  # the same peer address: still locked, whatever the header said


def test_pages_carry_the_security_headers(server: Server, session) -> None:
    page = session.get(f"{server.url}/", timeout=10)
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "no-store" in page.headers["Cache-Control"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"


def test_no_traceback_and_no_1011_in_the_server_log(server: Server, session) -> None:
    log = log_after_a_too_large_frame(server.url, session, server.log)
    assert "Traceback" not in log
    assert "1011" not in log
