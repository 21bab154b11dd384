"""The chosen account is in the URL and remembered for the session (#15): dashboard, positions, history and the
automations of one account all show the account last chosen, on any of them, across reloads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from history.models import ClosedTrade

pytestmark = pytest.mark.django_db


@pytest.fixture
def accounts(alice: User, make_account: Callable[..., ExchangeAccount]) -> tuple[ExchangeAccount, ExchangeAccount]:
    first = make_account(alice, label="first")
    second = make_account(alice, label="second", api_key="key-0002")
    ExchangeAccount.objects.filter(pk=first.pk).update(is_active=True)
    for account in (first, second):
        ClosedTrade.objects.create(
            account=account, trade_id=f"trade-of-{account.label}", side="buy", quantity=10, leverage=Decimal(2),
            margin=500, closed_at=timezone.now() - dt.timedelta(minutes=1), closed_by="outside",
        )  # fmt: skip
    return first, second


def _shown(client: Client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200
    return int(response.context["snap"]["account"]["id"])


def test_a_choice_sticks_across_pages_and_reloads(
    alice: User, bob: User, accounts: tuple[ExchangeAccount, ExchangeAccount], make_account
) -> None:
    first, second = accounts
    client = Client()
    client.force_login(alice)
    assert _shown(client, "/") == first.pk  # nothing chosen yet: the active account
    assert _shown(client, f"/?account={second.pk}") == second.pk
    assert _shown(client, "/") == second.pk  # a reload without the parameter
    assert _shown(client, "/realtime/positions/") == second.pk
    history = client.get("/history/").content.decode()
    assert "trade-of-second" in history
    assert "trade-of-first" not in history
    assert f'href="/realtime/positions/?account={second.pk}"' in history  # the nav carries the choice
    everything = client.get("/history/", {"account": ""}).content.decode()  # "All accounts" on this page only
    assert "trade-of-first" in everything
    assert _shown(client, "/") == second.pk
    # Another user's account is never remembered; the page keeps the choice.
    bobs = make_account(bob, label="bobs", api_key="key-0003")
    assert _shown(client, f"/?account={bobs.pk}") == second.pk  # not theirs: the remembered choice stays
    assert _shown(client, "/") == second.pk
    # Choosing on the automations page or on the live page (the JSON snapshot) sticks too.
    client.get(f"/automations/account/{first.pk}/")
    assert _shown(client, "/realtime/positions/") == first.pk
    client.get("/realtime/api/snapshot/", {"account": second.pk})
    assert _shown(client, "/") == second.pk
