"""`make run`'s stack answers: the embedded command serves the login page and the demo paper account with trades."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CONTROL_TOKEN = "embedded-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def embedded(tmp_path):
    """Migrate a fresh SQLite file and start `manage.py run_embedded` as `make run` does; yield (url, password)."""
    port, sim_port = _free_port(), _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "SIMULATOR_CONTROL_TOKEN"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "AXISOR_VAR_DIR": str(tmp_path),
            "SIMULATOR_PORT": str(sim_port),
            "SIMULATOR_CONTROL_TOKEN": CONTROL_TOKEN,
        }
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "run_embedded", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        else:
            pytest.fail("the embedded server did not answer within 60 s")
        match = re.search(r"password '([^']+)'", (tmp_path / "server.log").read_text())
        assert match, "the demo login is printed on start"
        yield url, match.group(1), f"http://127.0.0.1:{sim_port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_make_run_stack_serves_the_demo(embedded):
    url, password, sim_url = embedded
    session = requests.Session()
    login_page = session.get(f"{url}/accounts/login/", timeout=5)
    assert login_page.status_code == 200
    token = session.cookies["csrftoken"]
    response = session.post(
        f"{url}/accounts/login/",
        data={"username": "demo", "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{url}/accounts/login/"},
        timeout=5,
    )
    assert response.status_code == 200
    page = session.get(f"{url}/accounts/exchange/", timeout=5).text
    assert "Demo (paper)" in page
    assert "PAPER" in page
    assert session.get(f"{url}/static/css/app.css", timeout=5).status_code == 200
    # the simulator runs beside it, with the demo account's running trades
    state = requests.get(
        f"{sim_url}/_sim/state", headers={"Authorization": f"Bearer {CONTROL_TOKEN}"}, timeout=5
    ).json()
    demo = next(a for a in state["accounts"] if a["username"] == "axisor-demo")
    running = [t for t in demo["trades"] if t["running"]]
    assert len(running) == 3
    # Axisor tracks them as its own and guards them
    assert "Demo Margin Guard" in session.get(f"{url}/automations/", timeout=5).text
    snapshot = session.get(f"{url}/realtime/api/snapshot/", timeout=5).json()["data"]
    assert snapshot["account"]["label"] == "Demo (paper)"
    assert snapshot["positions"]["running"] == 3
