"""The pages satisfy their Content-Security-Policy in a real browser (no violation, the live socket connects), and
the two-factor setup and lockout pages render. Desktop screenshots are saved under
``$AXISOR_TEST_ARTIFACTS/browser/`` (default ``var/test-artifacts/browser/``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.embedded_server import EmbeddedServer, embedded_server
from tests.realtime.test_browser_embedded import CHROMIUM, DESKTOP, artifacts_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: run scripts/install-browser.sh"),
]

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed", allow_module_level=True)

WATCH_CSP = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)
PAGES = [
    "/",
    "/realtime/positions/",
    "/accounts/exchange/",
    "/automations/",
    "/automations/log/",
    "/accounts/two-factor/",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with embedded_server(tmp_path_factory.mktemp("browser-security") / "var") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Browser) -> Page:
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(WATCH_CSP)
    return context.new_page()


def _login(page: Page, server: EmbeddedServer, username: str, password: str) -> None:
    page.goto(f"{server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")


def test_every_page_satisfies_the_csp_and_the_socket_connects(server: EmbeddedServer, browser: Browser) -> None:
    page = _page(browser)
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    _login(page, server, "demo", server.demo_password)
    page.wait_for_url(f"{server.url}/")
    # the dashboard goes live over the WebSocket (connect-src 'self'): the price arrives
    page.wait_for_function(
        "() => { const t = document.querySelector('#card-market [data-field=\"market.last\"]'); "
        "return t && t.textContent.trim() !== '' && t.textContent.trim() !== '—'; }",
        timeout=20_000,
    )
    folder = artifacts_dir()
    page.screenshot(path=str(folder / "security-dashboard-under-csp.png"), full_page=True)
    for path in PAGES:
        page.goto(f"{server.url}{path}")
        page.wait_for_load_state("load")
        assert page.evaluate("window.__csp") == [], path
    assert not [c for c in console if "Content Security Policy" in c], console


def test_two_factor_setup_page_shows_the_qr_code(server: EmbeddedServer, browser: Browser) -> None:
    page = _page(browser)
    _login(page, server, "demo", server.demo_password)
    page.wait_for_url(f"{server.url}/")
    page.goto(f"{server.url}/accounts/two-factor/")
    page.click("text=Set up two-factor authentication")
    page.wait_for_selector(".qr svg")
    assert page.locator("code.secret").inner_text().strip()
    assert page.evaluate("window.__csp") == []
    page.screenshot(path=str(artifacts_dir() / "security-two-factor-setup.png"), full_page=True)


def test_the_lockout_page_after_too_many_wrong_passwords(server: EmbeddedServer, browser: Browser) -> None:
    page = _page(browser)
    for _ in range(5):
        _login(page, server, "mallory", "wrong-password")
        page.wait_for_load_state("load")
    _login(page, server, "mallory", "wrong-password")
    page.wait_for_selector("text=Too many failed logins")
    page.screenshot(path=str(artifacts_dir() / "security-lockout.png"), full_page=True)
