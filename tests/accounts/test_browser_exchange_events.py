"""The exchange's own events on `make run`'s stack, in a real headless Chromium: the accounts page says the demo
account's private stream is live, and a liquidation at the exchange reaches the open dashboard's automation log
without a reload and without reconciliation (the beat's reconciliation runs every 30 s; the close arrives long
before). Screenshots under var/test-artifacts/browser/."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from lnmarkets.simulator.client import ControlClient
from tests.embedded_server import EmbeddedServer, embedded_server
from tests.realtime.test_browser_embedded import CHROMIUM, DESKTOP, PHONE, artifacts_dir

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with embedded_server(tmp_path_factory.mktemp("embedded-events")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page: Page, server: EmbeddedServer, then: str) -> None:
    page.goto(f"{server.url}/accounts/login/?next={then}")
    page.fill("#id_username", "demo")
    page.fill("#id_password", server.demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}{then}")


@pytest.mark.parametrize(("name", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_accounts_page_says_the_stream_is_live(stack: EmbeddedServer, browser: Browser, name, viewport) -> None:
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(30_000)
    _login(page, stack, "/accounts/exchange/")
    _reload_until_live(page)
    badge = page.locator('[data-stream="live"]')
    assert badge.inner_text() == "Exchange events live"
    assert badge.is_visible()
    page.screenshot(path=str(artifacts_dir() / f"accounts-stream-live-{name}.png"), full_page=True)
    page.close()


def test_a_liquidation_at_the_exchange_reaches_the_open_dashboard(stack: EmbeddedServer, browser: Browser) -> None:
    page = browser.new_page(viewport=DESKTOP)
    page.set_default_timeout(30_000)
    _login(page, stack, "/accounts/exchange/")
    _reload_until_live(page)
    page.goto(f"{stack.url}/")
    page.wait_for_function("() => document.querySelector('#audit-list') !== null")
    control = ControlClient(stack.sim_url, stack.control_token)
    try:
        control.freeze(True)
        control.set_price(80000)  # far below the demo's 10x and 25x longs' liquidation prices
        page.wait_for_function(
            "() => document.querySelector('#audit-list').textContent.includes('was liquidated')", timeout=15_000
        )
    finally:
        control.close()
    page.screenshot(path=str(artifacts_dir() / "dashboard-liquidation-event.png"), full_page=True)
    text = page.locator("#audit-list").inner_text()
    assert text.count("was liquidated") >= 2
    page.close()


def _reload_until_live(page: Page) -> None:
    """The feed process opens the socket right after start; the page shows the stored status: reload until live."""
    for _ in range(30):
        if page.locator('[data-stream="live"]').count():
            return
        page.wait_for_timeout(1000)
        page.reload()
    raise AssertionError("the demo account's stream never went live")
