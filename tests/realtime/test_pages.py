"""Server-rendered pages: dashboard at /, positions, owner scoping, PAPER label, vendored chart, no CDN."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import ExchangeAccount, User
from automations.models import Automation, TrackedTrade

pytestmark = pytest.mark.django_db


def test_home_requires_login(client: Client) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_dashboard_renders_cards_and_paper_label(
    client: Client,
    alice: User,
    make_account: Callable[..., ExchangeAccount],
    make_trade: Callable[..., TrackedTrade],
    set_market: Callable[..., object],
) -> None:
    account = make_account(alice, label="paper-acct")
    account.balance = 123_456
    account.save(update_fields=["balance"])
    make_trade(account, "t-1")
    set_market(last="100000.0")
    client.force_login(alice)
    html = client.get("/").content.decode()
    for needle in (
        "card-balance",
        "card-market",
        "card-positions",
        "card-automations",
        "price-chart",
        "PAPER",
        "123456",
        "conn-badge",
        "audit-list",
        "initial-snapshot",
        "vendor/lightweight-charts/lightweight-charts.standalone.production.js",
        "js/chart.js",
        "js/dashboard.js",
        "css/dashboard.css",
        "/accounts/exchange/",
        "/automations/",
    ):
        assert needle in html, needle
    # Every script and stylesheet is served from our own static files (no CDN);
    # random tokens (CSRF, CSP nonce) may contain any letters, so look at URLs.
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_live_account_is_not_labelled_paper(
    client: Client, alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    make_account(alice, label="real", network="signet")
    client.force_login(alice)
    html = client.get("/").content.decode()
    assert 'id="paper-badge" hidden' in html


def test_positions_page_shows_guards(
    client: Client,
    alice: User,
    make_account: Callable[..., ExchangeAccount],
    make_trade: Callable[..., TrackedTrade],
) -> None:
    account = make_account(alice)
    make_trade(account, "t-1")
    make_trade(account, "t-ext", managed=False, origin=TrackedTrade.Origin.EXTERNAL)
    guard = Automation.objects.create(account=account, name="guard", kind="margin_guard", config={"trade_ids": []})
    client.force_login(alice)
    html = client.get("/realtime/positions/").content.decode()
    assert f"/automations/{guard.pk}/edit/" in html
    assert "external" in html


def test_foreign_account_query_falls_back_to_own(
    client: Client, alice: User, bob: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    make_account(alice, label="alice-main")
    bobs = make_account(bob, label="bob-main")
    client.force_login(alice)
    html = client.get(f"/?account={bobs.pk}").content.decode()
    assert "bob-main" not in html
    assert "alice-main" in html


def test_no_account_page(client: Client, alice: User) -> None:
    client.force_login(alice)
    response = client.get("/")
    assert response.status_code == 200
    assert "/accounts/exchange/new/" in response.content.decode()


def test_vendored_chart_has_its_license() -> None:
    vendor = Path(settings.BASE_DIR) / "static" / "vendor" / "uplot"
    assert (vendor / "uPlot.iife.min.js").stat().st_size > 10_000
    assert "MIT License" in (vendor / "LICENSE").read_text()
    charts = Path(settings.BASE_DIR) / "static" / "vendor" / "lightweight-charts"
    assert "Lightweight Charts" in (charts / "lightweight-charts.standalone.production.js").read_text()[:300]
    assert "Apache License" in (charts / "LICENSE").read_text()
    assert "TradingView" in (charts / "NOTICE").read_text()


def test_nav_links_positions_once_and_marks_the_current_page(
    client: Client, alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    make_account(alice)
    client.force_login(alice)
    for url in ("/", "/realtime/positions/"):
        html = client.get(url).content.decode()
        nav = html[html.index('<nav class="nav">') : html.index("</nav>")]
        assert nav.count('href="/realtime/positions/"') == 1, url
    nav = client.get("/realtime/positions/").content.decode().split("</nav>")[0]
    assert 'href="/realtime/positions/" aria-current="page"' in nav
