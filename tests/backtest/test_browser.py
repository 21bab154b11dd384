"""A real headless Chromium against `make run`'s stack: backtest the demo Margin Guard from its page ("Backtest this"),
watch the progress bar, read the report and the chart, then compare two configurations side by side.

The first backtest takes the simulator's own candles while the simulator answers the candle request 4 s late (an
injected fault): the progress bar is on screen meanwhile, whatever the machine's speed. Screenshots (desktop
1366×850 and phone 390×844) go to ``$AXISOR_TEST_ARTIFACTS/browser/`` (default ``var/test-artifacts/browser/``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lnmarkets.simulator.client import ControlClient
from tests.embedded_server import ROOT, EmbeddedServer, embedded_server

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: run scripts/install-browser.sh"),
]

try:
    from playwright.sync_api import Browser, Page, ViewportSize, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed (pip install playwright==1.65.2)", allow_module_level=True)

DESKTOP: ViewportSize = {"width": 1366, "height": 850}
PHONE: ViewportSize = {"width": 390, "height": 844}
ADD_MARGIN = {
    "trigger": "liquidation_distance",
    "threshold": "8",
    "action": "add_margin",
    "add_margin_mode": "restore_distance",
    "target_distance": "15",
    "cooldown_seconds": 60,
}


def artifacts_dir() -> Path:
    root = Path(os.environ.get("AXISOR_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    path = root / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with embedded_server(tmp_path_factory.mktemp("embedded-backtest")) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page: Page, server: EmbeddedServer) -> None:
    page.goto(f"{server.url}/accounts/login/?next=/automations/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", server.demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/automations/")


def _backtest_this(page: Page) -> None:
    """From the automations page, the demo guard's "Backtest this": the form comes prefilled."""
    row = page.locator("tr", has_text="Demo Margin Guard")
    row.get_by_role("link", name="Backtest this").click()
    expect(page.locator("h1")).to_contain_text("Backtest “Demo Margin Guard”")
    expect(page.locator('input[name="automations"]:checked')).to_have_count(1)
    expect(page.locator('input[name="trades_source"][value="account"]')).to_be_checked()
    variants = json.loads(page.locator("#id_variants").input_value())
    assert variants[0]["label"] == "Demo Margin Guard (variant)"


def test_backtest_from_the_automation_page_progress_report_chart_and_comparison(
    stack: EmbeddedServer, browser: Browser
) -> None:
    folder = artifacts_dir()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    # a CSP violation or a script error shows in the console; the browser's own favicon request may 404
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and "Failed to load resource" not in m.text else None,
    )
    try:
        _login(page, stack)

        # 1. "Backtest this" on the simulator's own candles of the last two hours; the exchange answers 4 s late
        _backtest_this(page)
        page.screenshot(path=str(folder / "backtest-1-form-desktop.png"), full_page=True)
        page.check('input[name="source"][value="exchange"]')
        expect(page.locator("#id_date_from")).to_be_visible()
        expect(page.locator("#id_scenario")).to_be_hidden()
        now = datetime.now(UTC)
        page.fill("#id_date_from", (now - timedelta(hours=2)).strftime("%Y-%m-%d %H:%M"))
        page.fill("#id_date_to", now.strftime("%Y-%m-%d %H:%M"))
        control = ControlClient(stack.sim_url, stack.control_token)
        # every candles read answers 4 s late until the report is shown (the feed's own 24 h window reads candles
        # too, at its own times: a one-shot fault could be spent there and the progress never seen)
        control.inject_fault("delay", method="GET", path="/v3/futures/candles", seconds=4, count=None)
        page.click("#start-backtest")
        progress = page.locator("#bt-progress")
        expect(progress).to_be_visible()
        expect(page.locator("#bt-message")).to_contain_text("Fetching candles", timeout=10_000)
        page.screenshot(path=str(folder / "backtest-2-progress-desktop.png"), full_page=True)
        expect(page.locator("#bt-report")).to_be_visible(timeout=60_000)  # the page reloads when done
        control.clear_faults()
        expect(page.locator("#bt-chart canvas").first).to_be_visible()
        page.screenshot(path=str(folder / "backtest-3-report-simulator-candles-desktop.png"), full_page=True)

        # 2. the same automation against an add-margin variant, on the flash crash scenario
        page.goto(f"{stack.url}/automations/")
        _backtest_this(page)
        variant = [{"label": "Add margin at 8 %", "kind": "margin_guard", "config": ADD_MARGIN}]
        page.fill("#id_variants", json.dumps(variant, indent=2))
        page.fill("#id_name", "Close at 3 % or add margin at 8 %?")
        page.check('input[name="source"][value="scenario"]')
        page.select_option("#id_scenario", "flash_crash")
        page.click("#start-backtest")
        expect(page.locator("#bt-report")).to_be_visible(timeout=60_000)
        headers = page.locator("table.compare thead th")
        expect(headers).to_have_count(4)  # the row titles, then: no automation, the guard, the variant
        expect(headers.nth(1)).to_contain_text("No automation")
        expect(headers.nth(2)).to_contain_text("Demo Margin Guard")
        expect(headers.nth(3)).to_contain_text("Add margin at 8 %")
        expect(page.locator("#bt-chart canvas").first).to_be_visible()
        chart_box = page.locator("#bt-chart").bounding_box()
        assert chart_box is not None
        assert chart_box["width"] > 1000
        assert chart_box["height"] >= 300
        page.screenshot(path=str(folder / "backtest-4-compare-desktop.png"), full_page=True)
        page.select_option("#bt-config", index=2)
        page.locator("#bt-chart").screenshot(path=str(folder / "backtest-5-chart-variant-desktop.png"))
        page.set_viewport_size(PHONE)
        page.reload()
        expect(page.locator("#bt-report")).to_be_visible()
        page.screenshot(path=str(folder / "backtest-6-compare-phone.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1, "no sideways scroll"
        page.goto(f"{stack.url}/backtests/")
        expect(page.locator("table")).to_contain_text("Close at 3 % or add margin at 8 %?")
        page.screenshot(path=str(folder / "backtest-7-list-phone.png"), full_page=True)
    except BaseException:
        page.screenshot(path=str(folder / "backtest-failure.png"), full_page=True)
        raise
    finally:
        context.close()
    assert errors == [], errors
