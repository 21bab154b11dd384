"""HTTP fallback: session-authenticated, owner-scoped JSON snapshots, the same shape as the socket's."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from accounts.models import ExchangeAccount, User
from automations.models import TrackedTrade

pytestmark = pytest.mark.django_db


def test_anonymous_gets_401_json(client: Client) -> None:
    for url in ("/realtime/api/snapshot/", "/realtime/api/accounts/1/snapshot/"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.json() == {"error": "unauthenticated"}


def test_snapshot_of_the_active_account(
    client: Client,
    alice: User,
    make_account: Callable[..., ExchangeAccount],
    make_trade: Callable[..., TrackedTrade],
    set_market: Callable[..., object],
) -> None:
    account = make_account(alice)
    make_trade(account, "t-1")
    set_market(last="100000.0")
    client.force_login(alice)
    response = client.get("/realtime/api/snapshot/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    body = response.json()
    assert body["type"] == "snapshot"
    assert body["data"]["account"]["id"] == account.pk
    assert body["data"]["positions"]["items"][0]["trade_id"] == "t-1"
    assert body["data"]["market"]["state"] == "live"


def test_foreign_account_is_404_like_a_missing_one(
    client: Client, alice: User, bob: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    make_account(alice)
    bobs = make_account(bob, label="bob-main")
    client.force_login(alice)
    for url in (
        f"/realtime/api/accounts/{bobs.pk}/snapshot/",
        f"/realtime/api/snapshot/?account={bobs.pk}",
        "/realtime/api/accounts/999999/snapshot/",
        "/realtime/api/snapshot/?account=abc",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert "bob-main" not in response.content.decode()


def test_owned_second_account(client: Client, alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    make_account(alice, label="a1")
    second = make_account(alice, label="a2", network="signet")
    client.force_login(alice)
    body = client.get(f"/realtime/api/accounts/{second.pk}/snapshot/").json()
    assert body["data"]["account"] == {
        "id": second.pk,
        "label": "a2",
        "network": "signet",
        "is_paper": False,
        "kill_switch": False,
        "entries_halted": False,
    }


def test_stale_market_is_reported_stale(
    client: Client, alice: User, make_account: Callable[..., ExchangeAccount], set_market: Callable[..., object]
) -> None:
    make_account(alice)
    set_market(last="100000.0", age_s=16)
    client.force_login(alice)
    market = client.get("/realtime/api/snapshot/").json()["data"]["market"]
    assert market["state"] == "stale"
    assert market["age_ms"] >= 16_000


def test_no_market_data_is_stale(client: Client, alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    make_account(alice)
    client.force_login(alice)
    market = client.get("/realtime/api/snapshot/").json()["data"]["market"]
    assert market["state"] == "stale"
    assert market["last"] is None


def test_post_is_refused(client: Client, alice: User) -> None:
    client.force_login(alice)
    assert client.post("/realtime/api/snapshot/").status_code == 405
