"""Fixtures for automations against the in-process simulator: a paper account wired to it, and helpers."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from accounts import services as account_services
from accounts.models import ExchangeAccount
from automations.configs import config_to_json
from automations.engine import AutoEntryConfig, MarginGuardConfig
from automations.exchange import clients_reset
from automations.models import Automation
from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.ratelimit import InProcessRateLimiter


@pytest.fixture
def sim_network(sim, settings) -> Iterator[None]:
    """Point the `simulator` network at the test simulator (and forget cached clients before and after)."""
    settings.LNMARKETS_URLS = {**settings.LNMARKETS_URLS, "simulator": {"rest": sim.rest_url, "stream": sim.stream_url}}
    clients_reset()
    yield
    clients_reset()


@pytest.fixture
def paper(alice, sim, sim_network, sim_account) -> ExchangeAccount:
    """alice's exchange account holding the simulator account's credentials."""
    return account_services.exchange_account_create(
        owner=alice,
        label="paper",
        network="simulator",
        api_key=sim_account.key,
        api_secret=sim_account.secret,
        passphrase=sim_account.passphrase,
        verification=account_services.Verification(permissions=tuple(sim_account.scopes)),
    )


@pytest.fixture
def exchange(sim, sim_account) -> Iterator[RestClient]:
    """A direct REST client on the simulator account: the 'by hand' trader of the tests."""
    creds = Credentials(key=sim_account.key, secret=sim_account.secret, passphrase=sim_account.passphrase)
    client = RestClient(sim.rest_url, static_provider(creds), rate_limiter=InProcessRateLimiter(), timeout=5)
    yield client
    client.close()


def margin_guard(account: ExchangeAccount, **overrides: object) -> Automation:
    config = MarginGuardConfig(
        trigger="liquidation_distance",
        threshold=Decimal(overrides.pop("threshold", "5")),  # type: ignore[arg-type]
        action=overrides.pop("action", "close"),  # type: ignore[arg-type]
        cooldown_seconds=0,
        **overrides,  # type: ignore[arg-type]
    )
    return Automation.objects.create(account=account, name="guard", kind="margin_guard", config=config_to_json(config))


def auto_entry(account: ExchangeAccount, **overrides: object) -> Automation:
    fields: dict[str, object] = {"side": "buy", "leverage": Decimal(10), "quantity": 100, "margin": None}
    fields["trigger"] = "immediate"
    fields.update(overrides)
    config = AutoEntryConfig(**fields)  # type: ignore[arg-type]
    return Automation.objects.create(account=account, name="entry", kind="auto_entry", config=config_to_json(config))
