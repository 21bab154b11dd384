"""`make run`'s stack answers: the embedded command serves the login page and the demo paper account with trades."""

from __future__ import annotations

import pytest
import requests

from tests.embedded_server import CONTROL_TOKEN, embedded_server


@pytest.fixture
def embedded(tmp_path):
    """Migrate a fresh SQLite file and start `manage.py run_embedded` as `make run` does.

    Yields (url, demo password, simulator url)."""
    with embedded_server(tmp_path) as server:
        yield server.url, server.demo_password, server.sim_url


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
