"""A real headless Chromium against a real Daphne: live updates, polling fallback, seq-gap resync, staleness,
logout. Needs /usr/bin/chromium (scripts/install-browser.sh) and the ``playwright`` package (never
``playwright install``: the Debian browser is driven through ``executable_path``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: run scripts/install-browser.sh"),
]

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed (pip install playwright==1.65.2)", allow_module_level=True)

SEED = """
import django; django.setup()
from accounts import services
from accounts.models import User
from automations.models import Automation, TrackedTrade
from django.utils import timezone
alice = User.objects.create_user("alice", password="alice-password-123")
acct = services.exchange_account_create(owner=alice, label="paper", network="simulator", api_key="k-0001",
    api_secret="s-0001", passphrase="p-0001", verification=services.Verification(permissions=("account:read",)))
acct.balance = 500000; acct.save(update_fields=["balance"])
services.exchange_account_create(owner=alice, label="real", network="signet", api_key="k-0002",
    api_secret="s-0002", passphrase="p-0002", verification=services.Verification(permissions=("account:read",)))
TrackedTrade.objects.create(account=acct, trade_id="t-1", origin="axisor", managed=True, state="running",
    side="buy", quantity=100, entry_price="95000", margin=10000, leverage="10", liquidation="86500",
    maintenance_margin=200, last_seen_at=timezone.now())
Automation.objects.create(account=acct, name="guard", kind="margin_guard", config={"trade_ids": []})
"""


@dataclass
class Server:
    url: str
    flag: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("browser")
    flag = tmp / "ticking"
    flag.touch()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "SECRET_KEY": "browser-test-secret-key-0123456789abcdef0123456789",
        "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
        "SIMULATOR_CONTROL_TOKEN": "browser-test",
        "SECURE_COOKIES": "false",
        "AXISOR_VAR_DIR": str(tmp),
        "BROWSER_TEST_TICK_FLAG": str(flag),
        "LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    subprocess.run([python, "-c", SEED], cwd=ROOT, env=env, check=True, timeout=60)
    port = _free_port()
    daphne = Path(python).with_name("daphne")
    proc = subprocess.Popen(
        [str(daphne), "-b", "127.0.0.1", "-p", str(port), "tests.realtime.browser_app:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "daphne.log").open("w"),
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield Server(url=f"http://127.0.0.1:{port}", flag=flag)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # Daphne waits for open sockets to drain; the test is over
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def page(server: Server) -> Iterator[Page]:
    server.flag.touch()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
        page = context.new_page()
        page.set_default_timeout(20_000)
        yield page
        context.close()
        browser.close()


def _login(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/accounts/login/?next=/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/")


def _last_price(page: Page) -> str:
    return str(page.locator('#card-market [data-field="market.last"]').inner_text())


def test_live_dashboard_updates(page: Page, server: Server) -> None:
    _login(page, server)
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "connected")
    expect(page.locator("#paper-badge")).to_be_visible()
    first = _last_price(page)
    page.wait_for_function(
        "(first) => document.querySelector('#card-market [data-field=\"market.last\"]').textContent !== first",
        arg=first,
    )
    expect(page.locator("#positions-body tr")).to_have_count(1)
    # the candlestick chart drew (Lightweight Charts layers several canvases: panes, axes, crosshair)
    expect(page.locator("#price-chart canvas").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1  # usable on a phone
    state = page.evaluate("window.axisorDashboard.state()")
    assert state["polling"] is False
    assert state["lastSeq"] >= 2


def test_polling_fallback_while_socket_is_down_and_stop_when_back(page: Page, server: Server) -> None:
    blocked = {"on": True}
    api_calls: list[float] = []
    page.on("request", lambda r: api_calls.append(time.monotonic()) if "/realtime/api/snapshot/" in r.url else None)

    def route(ws: Any) -> None:
        if blocked["on"]:
            ws.close(code=1011)
        else:
            ws.connect_to_server()

    page.route_web_socket("**/ws/dashboard/", route)
    _login(page, server)
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "polling")
    expect(page.locator("#conn-badge")).to_have_text("polling fallback")
    page.wait_for_timeout(5500)
    assert len(api_calls) >= 2
    blocked["on"] = False
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "connected", timeout=40_000)
    calls_when_back = len(api_calls)
    page.wait_for_timeout(6000)
    assert len(api_calls) == calls_when_back
    assert page.evaluate("window.axisorDashboard.state()")["polling"] is False


def test_seq_gap_asks_for_a_snapshot(page: Page, server: Server) -> None:
    client_messages: list[str] = []
    state = {"server_messages": 0}

    def route(ws: Any) -> None:
        upstream = ws.connect_to_server()

        def from_server(message: str | bytes) -> None:
            state["server_messages"] += 1
            if state["server_messages"] == 3:
                return  # drop one message: the page must see the gap
            ws.send(message)

        def from_page(message: str | bytes) -> None:
            client_messages.append(str(message))
            upstream.send(message)

        upstream.on_message(from_server)
        ws.on_message(from_page)

    page.route_web_socket("**/ws/dashboard/", route)
    _login(page, server)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any('"refresh"' in m for m in client_messages):
        page.wait_for_timeout(200)
    assert any('"refresh"' in m for m in client_messages)


def test_stale_data_is_marked_stale(page: Page, server: Server) -> None:
    _login(page, server)
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "connected")
    server.flag.unlink()
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "stale", timeout=25_000)
    expect(page.locator("#live-root")).to_have_attribute("data-stale", "true")
    expect(page.locator("#market-freshness")).to_have_text("stale")
    server.flag.touch()
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "connected", timeout=10_000)


def test_logout_in_another_tab_ends_the_session(page: Page, server: Server) -> None:
    _login(page, server)
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "connected")
    other = page.context.new_page()
    other.goto(f"{server.url}/")
    other.click("form[action$='/accounts/logout/'] button")
    expect(page.locator("#session-ended")).to_be_visible(timeout=10_000)
    expect(page.locator("#conn-badge")).to_have_attribute("data-state", "ended")
