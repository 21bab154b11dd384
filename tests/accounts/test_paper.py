"""One-click paper accounts: the simulator creates the credentials server-side; the token never reaches a page."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import paper, services
from accounts.models import ExchangeAccount
from lnmarkets.client import RestClient
from lnmarkets.credentials import static_provider
from lnmarkets.ratelimit import InProcessRateLimiter
from tests.fixtures_simulator import SIM_TOKEN


@pytest.fixture
def paper_sim(sim, sim_network, settings):
    settings.SIMULATOR_CONTROL_TOKEN = SIM_TOKEN
    return sim


def _sim_balance(sim, account: ExchangeAccount) -> int:
    creds = services.credentials_for_signing(account_id=account.pk)
    client = RestClient(sim.rest_url, static_provider(creds), rate_limiter=InProcessRateLimiter(), timeout=5.0)
    try:
        return int(client.account_get().balance)
    finally:
        client.close()


def test_add_paper_account_in_one_click(client, alice, paper_sim):
    client.force_login(alice)
    page = client.get(reverse("accounts:paper-create")).content.decode()
    assert SIM_TOKEN not in page
    assert 'value="Paper"' in page
    response = client.post(reverse("accounts:paper-create"), {"label": "Paper", "balance": "2500000"})
    assert response.status_code == 302
    account = ExchangeAccount.objects.get(owner=alice)
    assert account.is_paper
    assert account.is_active
    assert account.can_trade
    assert _sim_balance(paper_sim, account) == 2_500_000
    assert account.balance == 2_500_000  # shown before the first reconciliation
    listing = client.get(reverse("accounts:list")).content.decode()
    assert "Paper" in listing
    assert SIM_TOKEN not in listing
    # The second one gets a free label suggestion.
    assert 'value="Paper 2"' in client.get(reverse("accounts:paper-create")).content.decode()


def test_paper_form_reports_every_error_at_once(client, alice, paper_sim, make_account):
    make_account(alice, label="Taken")
    client.force_login(alice)
    response = client.post(reverse("accounts:paper-create"), {"label": "Taken", "balance": "5"})
    assert response.status_code == 200
    body = response.content.decode()
    assert "You already have an account with this label." in body
    assert "Ensure this value is greater than or equal to 10000." in body
    assert "Please fix 2 problems" in body
    assert ExchangeAccount.objects.filter(owner=alice).count() == 1


def test_reset_closes_trades_and_sets_balance(client, alice, paper_sim):
    account = paper.paper_account_create(owner=alice, label="P", balance=1_000_000)
    creds = services.credentials_for_signing(account_id=account.pk)
    rest = RestClient(paper_sim.rest_url, static_provider(creds), rate_limiter=InProcessRateLimiter(), timeout=5.0)
    try:
        rest.isolated_trade_create(type="market", side="buy", quantity=100, leverage=Decimal(10))
        assert len(rest.isolated_trades_running_list()) == 1
        client.force_login(alice)
        response = client.post(reverse("accounts:paper-reset", args=[account.pk]), {"balance": "300000"})
        assert response.status_code == 302
        assert rest.isolated_trades_running_list() == ()
        assert int(rest.account_get().balance) == 300_000
    finally:
        rest.close()


def test_reset_is_owner_scoped_and_paper_only(client, alice, bob, paper_sim, make_account):
    theirs = paper.paper_account_create(owner=bob, label="B", balance=1_000_000)
    real = make_account(alice, label="real", network="mainnet")
    client.force_login(alice)
    assert client.post(reverse("accounts:paper-reset", args=[theirs.pk]), {"balance": "20000"}).status_code == 404
    assert client.get(reverse("accounts:paper-reset", args=[real.pk])).status_code == 404


def test_unreachable_simulator_is_a_form_error(client, alice, settings):
    settings.SIMULATOR_CONTROL_TOKEN = "x"
    settings.LNMARKETS_URLS = {**settings.LNMARKETS_URLS, "simulator": {"rest": "http://127.0.0.1:9/v3", "stream": ""}}
    client.force_login(alice)
    response = client.post(reverse("accounts:paper-create"), {"label": "P", "balance": "100000"})
    assert response.status_code == 200
    assert "The local simulator did not answer" in response.content.decode()
    assert not ExchangeAccount.objects.filter(owner=alice).exists()


def test_no_token_means_no_paper_button(client, alice, settings):
    settings.SIMULATOR_CONTROL_TOKEN = ""
    client.force_login(alice)
    assert reverse("accounts:paper-create") not in client.get(reverse("accounts:list")).content.decode()
    response = client.post(reverse("accounts:paper-create"), {"label": "P", "balance": "100000"})
    assert response.status_code == 200
    assert "not available here" in response.content.decode()
