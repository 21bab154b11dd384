"""A real headless Chromium against `make run`'s stack (``manage.py run_embedded``: Daphne, the simulator ticking
every second, the market publisher): live price over the socket, a staff user pauses live sockets server side
(``/realtime/ops/``), the page falls back to polling and still moves, then reconnects when resumed.

Screenshots of every step are saved as test artifacts under ``$AXISOR_TEST_ARTIFACTS/browser/`` (default
``var/test-artifacts/browser/``, git-ignored). Needs /usr/bin/chromium (scripts/install-browser.sh) and the
``playwright`` package (never ``playwright install``: the Debian browser is driven through ``executable_path``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

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

STAFF_USERNAME = "ops"
STAFF_PASSWORD = "ops-password-2f9c71"
CREATE_STAFF = (
    "from accounts.models import User; "
    f"User.objects.create_user({STAFF_USERNAME!r}, password={STAFF_PASSWORD!r}, is_staff=True)"
)
PRICE = '#card-market [data-field="market.last"]'
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


def artifacts_dir() -> Path:
    root = Path(os.environ.get("AXISOR_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    path = root / "browser"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """`make run`'s stack with a staff user created in the same SQLite database before start."""
    var_dir = tmp_path_factory.mktemp("embedded-browser")
    with embedded_server(var_dir, prepare=[("shell", "-c", CREATE_STAFF)]) as server:
        try:
            yield server
        finally:  # the server log as an artifact, without the demo password it prints
            log = server.log.read_text().replace(server.demo_password, "<demo password>")
            (artifacts_dir() / "embedded-server.log").write_text(log)


@pytest.fixture(autouse=True)
def _sockets_open_after_each_test(stack: EmbeddedServer) -> Iterator[None]:
    """A failed test must not leave the next one paused: resume over plain HTTP as the staff user."""
    yield
    with requests.Session() as session:
        login = f"{stack.url}/accounts/login/"
        session.get(login, timeout=5)
        credentials = {"username": STAFF_USERNAME, "password": STAFF_PASSWORD}
        session.post(login, data={**credentials, "csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=5)
        response = session.post(
            f"{stack.url}/realtime/ops/",
            data={"action": "resume", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": f"{stack.url}/realtime/ops/"},
            timeout=5,
        )
        assert 'id="sockets-state" data-state="open"' in response.text  # followed the redirect back to the page


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page: Page, server: EmbeddedServer, username: str, password: str, then: str) -> None:
    page.goto(f"{server.url}/accounts/login/?next={then}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}{then}")


def _price(page: Page) -> str:
    return str(page.locator(PRICE).inner_text())


def _wait_for_price_change(page: Page, timeout_ms: float) -> tuple[str, str]:
    before = _price(page)
    page.wait_for_function(
        "([sel, before]) => { const t = document.querySelector(sel).textContent; return t !== before && t !== '—'; }",
        arg=[PRICE, before],
        timeout=timeout_ms,
    )
    return before, _price(page)


@contextmanager
def _screenshot_on_failure(pages: dict[str, Page], folder: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        for name, page in pages.items():
            page.screenshot(path=str(folder / f"embedded-failure-{name}.png"), full_page=True)
        raise


def test_pause_sockets_server_side_then_polling_then_reconnect(stack: EmbeddedServer, browser: Browser) -> None:
    folder = artifacts_dir()
    demo_context = browser.new_context(viewport=DESKTOP)
    demo = demo_context.new_page()
    demo.set_default_timeout(20_000)
    sockets_opened: list[float] = []
    polls: list[float] = []
    demo.on("websocket", lambda ws: sockets_opened.append(time.monotonic()))
    demo.on("request", lambda r: polls.append(time.monotonic()) if "/realtime/api/snapshot/" in r.url else None)
    ops_context = browser.new_context(viewport=PHONE)
    ops = ops_context.new_page()
    ops.set_default_timeout(20_000)
    badge = demo.locator("#conn-badge")

    with _screenshot_on_failure({"demo": demo, "ops": ops}, folder):
        # 1. the demo user sees the simulator's price move over the live socket
        _login(demo, stack, "demo", stack.demo_password, then="/")
        expect(badge).to_have_attribute("data-state", "connected")
        expect(demo.locator("#paper-badge")).to_be_visible()
        expect(demo.locator("#positions-body tr")).to_have_count(3)
        expect(demo.locator('a[href="/realtime/ops/"]')).to_have_count(0)  # not staff: no Operations link
        _wait_for_price_change(demo, timeout_ms=10_000)
        assert polls == []  # live over the socket, no polling
        demo.screenshot(path=str(folder / "embedded-1-connected.png"), full_page=True)

        # 2. a staff user pauses live sockets on the operations page (a phone)
        _login(ops, stack, STAFF_USERNAME, STAFF_PASSWORD, then="/realtime/ops/")
        expect(ops.locator("#sockets-state")).to_have_attribute("data-state", "open")
        opened_before_pause = len(sockets_opened)
        ops.get_by_role("button", name="Pause live sockets").click()
        expect(ops.locator("#sockets-state")).to_have_attribute("data-state", "paused")
        ops.screenshot(path=str(folder / "embedded-2-ops-paused.png"), full_page=True)

        # 3. the dashboard says "polling fallback" and the price still moves, through polling only
        expect(badge).to_have_text("polling fallback", timeout=10_000)
        expect(badge).to_have_attribute("data-state", "polling")
        polls_at_pause = len(polls)
        _wait_for_price_change(demo, timeout_ms=20_000)
        assert len(polls) > polls_at_pause
        expect(badge).to_have_text("polling fallback")
        assert len(sockets_opened) == opened_before_pause, "no socket attempt while paused"
        assert demo.evaluate("window.axisorDashboard.state()")["polling"] is True
        demo.screenshot(path=str(folder / "embedded-3-polling-fallback.png"), full_page=True)

        # 4. resume: the next poll sees "open" and the page reconnects at once (not after a 30 s backoff)
        resumed = time.monotonic()
        ops.get_by_role("button", name="Resume live sockets").click()
        expect(ops.locator("#sockets-state")).to_have_attribute("data-state", "open")
        expect(badge).to_have_attribute("data-state", "connected", timeout=15_000)
        assert time.monotonic() - resumed < 15
        expect(badge).to_have_text("connected")
        assert demo.evaluate("window.axisorDashboard.state()")["polling"] is False
        polls_when_back = len(polls)
        _wait_for_price_change(demo, timeout_ms=10_000)
        assert len(polls) == polls_when_back  # live again: polling stopped
        demo.screenshot(path=str(folder / "embedded-4-reconnected.png"), full_page=True)

    ops_context.close()
    demo_context.close()


def test_a_page_opened_while_paused_polls_without_socket_retries_and_connects_on_resume(
    stack: EmbeddedServer, browser: Browser
) -> None:
    folder = artifacts_dir()
    ops_context = browser.new_context(viewport=PHONE)
    ops = ops_context.new_page()
    ops.set_default_timeout(20_000)
    demo_context = browser.new_context(viewport=DESKTOP)
    demo = demo_context.new_page()
    demo.set_default_timeout(20_000)
    sockets_opened: list[float] = []
    demo.on("websocket", lambda ws: sockets_opened.append(time.monotonic()))
    badge = demo.locator("#conn-badge")

    with _screenshot_on_failure({"demo": demo, "ops": ops}, folder):
        _login(ops, stack, STAFF_USERNAME, STAFF_PASSWORD, then="/realtime/ops/")
        ops.get_by_role("button", name="Pause live sockets").click()
        expect(ops.locator("#sockets-state")).to_have_attribute("data-state", "paused")

        _login(demo, stack, "demo", stack.demo_password, then="/")  # the handshake is refused (4503 before accept)
        expect(badge).to_have_text("polling fallback", timeout=10_000)
        _wait_for_price_change(demo, timeout_ms=20_000)
        assert len(sockets_opened) == 1, "one refused attempt, then polls decide (no backoff retries while paused)"
        demo.screenshot(path=str(folder / "embedded-5-opened-while-paused.png"), full_page=True)

        ops.get_by_role("button", name="Resume live sockets").click()
        expect(badge).to_have_attribute("data-state", "connected", timeout=15_000)
        assert len(sockets_opened) == 2
    ops_context.close()
    demo_context.close()
