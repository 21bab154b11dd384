"""The trader's cockpit in a real headless Chromium on `make run`'s own stack (``manage.py run_embedded``): the
candlestick chart loads the simulator's price history with the demo trades' lines on it and switches candle sizes;
a trade closed on the simulator outside Axisor (with another API key, as from a phone) shows up in the history with
its PnL; the performance page draws it. Desktop (1366 × 850) and phone (390 × 844) screenshots of the dashboard,
history and performance pages go to ``$AXISOR_TEST_ARTIFACTS/browser/cockpit-*.png``."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.simulator.client import ControlClient
from tests.embedded_server import EmbeddedServer, embedded_server
from tests.realtime.test_browser_embedded import CHROMIUM, _login, artifacts_dir

pytestmark = [pytest.mark.browser, pytest.mark.slow]

try:
    from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed", allow_module_level=True)

DESKTOP: ViewportSize = {"width": 1366, "height": 850}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with embedded_server(tmp_path_factory.mktemp("cockpit")) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Browser, stack: EmbeddedServer, viewport: ViewportSize, then: str) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    page.set_default_timeout(20_000)
    _login(page, stack, "demo", stack.demo_password, then=then)
    return page


def _close_outside_axisor(stack: EmbeddedServer) -> tuple[str, int]:
    """Close one of the demo's running trades with a second API key of its simulator account: Axisor never sent it."""
    control = ControlClient(stack.sim_url, stack.control_token)
    try:
        account = next(a for a in control.state()["accounts"] if any(t["running"] for t in a["trades"]))
        extra = control.add_key(account["id"], None)
    finally:
        control.close()
    creds = Credentials(key=extra.key, secret=extra.secret, passphrase=extra.passphrase)
    client = RestClient(f"{stack.sim_url}/v3", static_provider(creds), timeout=5)
    try:
        trade = client.isolated_trades_running_list()[0]
        closed = client.isolated_trade_close(trade.id)
    finally:
        client.close()
    net = closed.pl - closed.opening_fee - closed.closing_fee - closed.sum_funding_fees
    return closed.id, net


def test_chart_history_and_performance(stack: EmbeddedServer, browser: Browser) -> None:
    folder = artifacts_dir()
    page = _page(browser, stack, DESKTOP, "/")
    chart = page.locator("#card-chart")
    # 1. candles from the exchange's history (7 days of minutes: a full page of 1,000), the trades' lines on it
    expect(chart).to_have_attribute("data-candles", "1000")
    assert int(chart.get_attribute("data-levels") or 0) >= 6  # 3 running trades: entry + liquidation each, + guard
    assert page.locator("#price-chart canvas").count() > 0
    expect(page.locator("#market-window")).to_contain_text("since")
    # The 24 h figures come from a true 24 h window (the exchange's minute candles), not "since the server started".
    window_age_ms = page.evaluate(
        "fetch('/realtime/api/snapshot/').then(r => r.json())"
        ".then(b => Date.now() - Date.parse(b.data.market.window_start))"
    )
    assert window_age_ms > 23.5 * 3600 * 1000
    high = Decimal(page.locator('[data-field="market.high_24h"]').inner_text().replace(",", ""))
    low = Decimal(page.locator('[data-field="market.low_24h"]').inner_text().replace(",", ""))
    assert high > low
    for size in ("5m", "1h", "1d"):
        page.click(f'.chart-ranges button[data-range="{size}"]')
        expect(chart).to_have_attribute("data-range", size)
    expect(chart).to_have_attribute("data-candles", "8")  # 7 days and today
    page.click('.chart-ranges button[data-range="1m"]')
    expect(chart).to_have_attribute("data-range", "1m")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(folder / "cockpit-dashboard-desktop.png"), full_page=True)

    # 2. a trade closed outside Axisor appears in the history with its PnL
    trade_id, net = _close_outside_axisor(stack)
    page.goto(f"{stack.url}/history/")
    page.click("#sync-now")
    row = page.locator(f'tr[data-trade="{trade_id}"]')
    expect(row).to_be_visible()
    expect(row.locator(".closed-by")).to_have_text("Outside Axisor")
    assert int(row.locator(".net-pl").inner_text().replace(",", "")) == net
    page.screenshot(path=str(folder / "cockpit-history-desktop.png"), full_page=True)
    with page.expect_download() as download:
        page.click("#export-csv")
    assert trade_id in download.value.path().read_text()

    # 3. a trade closed by hand in Axisor: confirmed on its page, one order, one toast in words, dismissable
    page.goto(f"{stack.url}/realtime/positions/")
    rows = page.locator("#positions-body tr")
    expect(rows).to_have_count(2)  # the one closed outside Axisor is gone (stream event or reconciliation)
    page.locator("#positions-body tr").first.locator('a.act[href$="/close/"]').click()
    expect(page.locator("#trade-action")).to_have_attribute("data-action", "close")
    page.screenshot(path=str(folder / "cockpit-confirm-close-desktop.png"), full_page=True)
    page.click("#confirm")
    expect(page.locator(".msg.success")).to_contain_text("Asked for your")
    expect(rows).to_have_count(1, timeout=20_000)
    toast = page.locator("#toasts .toast")
    # The order's acceptance is published before its settlement: once "done" is shown, both have arrived.
    expect(toast.first).to_contain_text("done", timeout=10_000)
    expect(toast).to_have_count(1)
    page.screenshot(path=str(folder / "cockpit-positions-toast-desktop.png"), full_page=True)
    toast.locator(".toast-close").click()
    expect(toast).to_have_count(0)
    page.goto(f"{stack.url}/history/")
    page.click("#sync-now")
    expect(page.locator(".closed-by", has_text="By hand in Axisor")).to_have_count(1)

    # 4. the performance page counts them
    page.goto(f"{stack.url}/history/performance/")
    expect(page.locator("#pnl-per-day rect")).to_have_count(30)
    assert page.locator("#win-rate").inner_text() in ("0.0 %", "50.0 %", "100.0 %")
    page.screenshot(path=str(folder / "cockpit-performance-desktop.png"), full_page=True)

    # 5. the phone: the price and the positions first, the chart above the fold, nothing overlapping
    phone = _page(browser, stack, PHONE, "/")
    expect(phone.locator("#card-chart")).to_have_attribute("data-candles", "1000")
    market = phone.locator("#card-market").bounding_box()
    chart_box = phone.locator("#card-chart").bounding_box()
    badge = phone.locator("#conn-badge").bounding_box()
    assert market is not None
    assert chart_box is not None
    assert badge is not None
    assert market["y"] < chart_box["y"]
    assert badge["y"] + badge["height"] <= market["y"]
    phone.wait_for_timeout(1000)
    phone.screenshot(path=str(folder / "cockpit-dashboard-phone.png"), full_page=True)
    for path, name in (("/history/", "history"), ("/history/performance/", "performance")):
        phone.goto(f"{stack.url}{path}")
        phone.screenshot(path=str(folder / f"cockpit-{name}-phone.png"), full_page=True)


def test_an_auto_entry_whose_open_the_exchange_refuses_says_error(stack: EmbeddedServer, browser: Browser) -> None:
    """The simulator refuses the open of an Auto Entry created in the browser: its row says error, in words, and
    what happens next; never "completed"."""
    folder = artifacts_dir()
    control = ControlClient(stack.sim_url, stack.control_token)
    try:
        control.inject_fault("status", method="POST", path="/v3/futures/isolated/trade", status=400, count=1)
    finally:
        control.close()
    page = _page(browser, stack, DESKTOP, "/automations/")
    page.goto(f"{stack.url}/automations/new/auto_entry/")
    page.fill("[name=name]", "Refused entry")
    page.select_option("[name=side]", "buy")
    page.fill("[name=leverage]", "10")
    page.fill("[name=quantity]", "100")
    page.select_option("[name=trigger]", "immediate")
    page.locator("form button[type=submit].primary").last.click()
    row = page.locator("tr", has_text="Refused entry")
    for _ in range(30):  # the list is not live: look again until the order's outcome is recorded
        page.goto(f"{stack.url}/automations/")
        if "refused" in row.inner_text():
            break
        page.wait_for_timeout(1000)
    expect(row).to_contain_text("the exchange refused to open the trade")
    expect(row).to_contain_text("Error")
    expect(row).not_to_contain_text("Completed")
    page.screenshot(path=str(folder / "cockpit-auto-entry-refused-desktop.png"), full_page=True)
