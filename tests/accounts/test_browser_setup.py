"""Setting up without a manual, in a real headless Chromium against `make run`'s stack (``manage.py run_embedded``):
a new user logs in, adds a paper account in one click, creates each kind of automation seeing only the fields of
the chosen trigger and action, sees every error of a bad submit at once, and reads the settings and help pages; in
English and in Brazilian Portuguese (the browser's language), on a desktop and on a phone.

Screenshots go to ``$AXISOR_TEST_ARTIFACTS/browser/setup-*.png`` (default ``var/test-artifacts/browser/``). Needs
/usr/bin/chromium (scripts/install-browser.sh) and the ``playwright`` package (no ``playwright install``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.embedded_server import EmbeddedServer, embedded_server
from tests.realtime.test_browser_embedded import CHROMIUM, DESKTOP, PHONE, artifacts_dir

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} missing: run scripts/install-browser.sh"),
]

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    pytest.skip("playwright is not installed (pip install playwright==1.65.2)", allow_module_level=True)

USERS = {"en": ("newbie", "newbie-password-81d2"), "pt-BR": ("novata", "novata-senha-81d2")}
CREATE_USERS = "from accounts.models import User; " + "; ".join(
    f"User.objects.create_user({u!r}, password={p!r})" for u, p in USERS.values()
)
TEXT = {
    "en": {
        "add_paper": "Add paper account",
        "paper_label": "Paper",
        "fix": "Please fix",
        "required": "Required with this choice.",
        "range": "Must be above 0 and below 100.",
        "summary": "Closes the trade at market when the distance to liquidation falls to 5 %",
        "settings": "Settings",
        "help": "Help",
        "created": "Automation “Guard” created (Margin Guard), active.",
        "notifications": "Notifications",
    },
    "pt-BR": {
        "add_paper": "Adicionar conta simulada",
        "paper_label": "Simulada",
        "fix": "Corrija",
        "required": "Obrigatório com esta escolha.",
        "range": "Deve estar acima de 0 e abaixo de 100.",
        "summary": "Fecha a operação a mercado quando a distância até a liquidação cai para 5 %",
        "settings": "Configurações",
        "help": "Ajuda",
        "created": "Automação “Guard” criada (Margin Guard), ativa.",
        "notifications": "Notificações",
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    with embedded_server(tmp_path_factory.mktemp("embedded-setup"), prepare=[("shell", "-c", CREATE_USERS)]) as s:
        yield s


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(artifacts_dir() / f"setup-{name}.png"), full_page=True)


def _visible(page: Page, selector: str) -> bool:
    return bool(page.locator(selector).first.is_visible())


@pytest.mark.parametrize("lang", ["en", "pt-BR"])
def test_new_user_sets_up_paper_trading_and_each_automation(stack: EmbeddedServer, browser: Browser, lang: str):
    text = TEXT[lang]
    username, password = USERS[lang]
    context = browser.new_context(viewport=DESKTOP, locale=lang)
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    page.goto(f"{stack.url}/accounts/login/?next=/accounts/exchange/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url}/accounts/exchange/")

    # One click for a paper account: the control token never reaches the page.
    page.get_by_role("link", name=text["add_paper"]).first.click()
    expect(page.locator("#id_label")).to_have_value(text["paper_label"])
    assert stack.control_token not in page.content()
    page.fill("#id_balance", "2500000")
    _shot(page, f"{lang}-paper-form")
    page.locator("main form button.primary").click()
    page.wait_for_url(f"{stack.url}/accounts/exchange/")
    expect(page.locator("table")).to_contain_text(text["paper_label"])
    expect(page.locator("table")).to_contain_text("PAPER")
    _shot(page, f"{lang}-accounts")

    # Margin Guard: only the chosen action's fields; every error of a bad submit at once.
    page.goto(f"{stack.url}/automations/new/margin_guard/")
    assert not _visible(page, "#id_reduce_percent")
    assert not _visible(page, "#id_add_margin_amount")
    assert not _visible(page, "button[name=_refresh]")  # the script shows fields live
    page.select_option("#id_action", "add_margin")
    assert _visible(page, "#id_add_margin_mode")
    assert not _visible(page, "#id_add_margin_amount")
    page.select_option("#id_add_margin_mode", "fixed")
    assert _visible(page, "#id_add_margin_amount")
    assert not _visible(page, "#id_target_distance")
    page.select_option("#id_action", "reduce")
    assert _visible(page, "#id_reduce_percent")
    assert not _visible(page, "#id_add_margin_mode")
    page.fill("#id_name", "")
    page.fill("#id_threshold", "150")
    page.fill("#id_trade_ids", "<bad>")
    page.locator("form.automation-form button.primary").click()
    errors_box = page.locator(".errors[role=alert]")
    expect(errors_box).to_contain_text(text["fix"])
    expect(errors_box).to_contain_text(text["required"])
    expect(errors_box).to_contain_text(text["range"])
    assert errors_box.locator("li").count() >= 4
    _shot(page, f"{lang}-guard-errors")
    page.fill("#id_name", "Guard")
    page.fill("#id_trade_ids", "")
    page.select_option("#id_action", "close")
    page.fill("#id_threshold", "5")
    expect(page.locator("#automation-summary")).to_contain_text(text["summary"])
    _shot(page, f"{lang}-guard-form")
    page.locator("form.automation-form button.primary").click()
    page.wait_for_url("**/automations/account/**")

    # TP/SL: the price field only for a take-profit or stop-loss.
    page.goto(f"{stack.url}/automations/new/tpsl/")
    assert _visible(page, "#id_price")
    page.select_option("#id_action", "close")
    assert not _visible(page, "#id_price")
    assert not _visible(page, "#id_trailing_distance")
    page.select_option("#id_action", "trailing_stoploss")
    assert _visible(page, "#id_trailing_distance")
    page.fill("#id_name", "Trail")
    page.fill("#id_trigger_percent", "20")
    page.fill("#id_trailing_distance", "500")
    page.locator("form.automation-form button.primary").click()
    page.wait_for_url("**/automations/account/**")

    # Auto Entry: the trigger price only for a price trigger.
    page.goto(f"{stack.url}/automations/new/auto_entry/")
    page.select_option("#id_trigger", "immediate")
    assert not _visible(page, "#id_trigger_price")
    page.select_option("#id_trigger", "price_below")
    assert _visible(page, "#id_trigger_price")
    page.fill("#id_name", "Dip")
    page.fill("#id_quantity", "100")
    page.fill("#id_trigger_price", "50000")
    page.fill("#id_stoploss_percent", "2")
    _shot(page, f"{lang}-entry-form")
    page.locator("form.automation-form button.primary").click()
    page.wait_for_url("**/automations/account/**")

    page.goto(f"{stack.url}/automations/")
    expect(page.locator("body")).to_contain_text(text["summary"])
    _shot(page, f"{lang}-list")
    # The audit log says what happened in the reader's language (stored as a message key and its parameters).
    page.goto(f"{stack.url}/automations/log/")
    expect(page.locator("table")).to_contain_text(text["created"])
    _shot(page, f"{lang}-log")
    page.get_by_role("link", name=text["settings"]).first.click()
    expect(page.locator("h1")).to_have_text(text["settings"])
    _shot(page, f"{lang}-settings")
    page.get_by_role("link", name=text["help"]).first.click()
    expect(page.locator("h1")).to_have_text(text["help"])
    assert page.title().startswith(text["help"])
    _shot(page, f"{lang}-help")
    page.get_by_role("link", name=text["notifications"]).first.click()
    expect(page.locator("h1")).to_have_text(text["notifications"])
    _shot(page, f"{lang}-notifications")

    # The same pages on a phone.
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    for name, path in (
        ("dashboard", "/"),
        ("list", "/automations/"),
        ("log", "/automations/log/"),
        ("guard-form", "/automations/new/margin_guard/"),
        ("settings", "/accounts/settings/"),
        ("notifications", "/notifications/"),
        ("help", "/help/"),
    ):
        phone.goto(f"{stack.url}{path}")
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, f"{path} scrolls sideways on a phone ({width}px)"
        _shot(phone, f"{lang}-phone-{name}")
    favicon = page.request.get(f"{stack.url}/favicon.ico")
    assert favicon.ok
    assert errors == []
    context.close()


@pytest.mark.parametrize("lang", ["en", "pt-BR"])
def test_preview_says_how_far_each_trigger_is(stack: EmbeddedServer, browser: Browser, lang: str):
    """The demo user's Margin Guard over its three running paper trades: the distance and trigger price of each."""
    context = browser.new_context(viewport=DESKTOP, locale=lang)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{stack.url}/accounts/login/?next=/automations/")
    page.fill("#id_username", "demo")
    page.fill("#id_password", stack.demo_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{stack.url}/automations/")
    page.locator("a[href$='/preview/']").first.click()
    rows = page.locator("#automation-summary ul.triggers li")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("it triggers at a price of" if lang == "en" else "dispara ao preço de")
    _shot(page, f"{lang}-preview")
    phone = context.new_page()
    phone.set_viewport_size(PHONE)
    phone.goto(page.url)
    _shot(phone, f"{lang}-phone-preview")
    context.close()
