"""pytest plugin: a running LN Markets simulator for the whole session, reset before each test that uses it.

- ``simulator``: session-scoped, control token set, rate limits off, no automatic ticks, price 100 000.
- ``sim``: the same object after ``reset()``, ``clear_faults()``, ``set_rate_limits(False)``,
  ``set_price(100000)`` and ``freeze(True)``.
- ``sim_account``: a fresh account with 1 000 000 sats and the trading scopes.
- ``sim_network``: the ``simulator`` network pointed at it; ``paper``: alice's exchange account with
  ``sim_account``'s credentials; ``exchange``: a direct REST client on ``sim_account`` (the "by hand" trader).
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from accounts import services as account_services
from accounts.models import ExchangeAccount, User
from automations.exchange import clients_reset
from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.ratelimit import InProcessRateLimiter
from lnmarkets.simulator import RunningSimulator, SimAccount, SimulatorConfig, start_in_thread

SIM_TOKEN = "sim-test-token"


@pytest.fixture(scope="session")
def simulator() -> Iterator[RunningSimulator]:
    config = SimulatorConfig(
        host="127.0.0.1",
        port=0,
        seed=1,
        price=Decimal("100000"),
        control_token=SIM_TOKEN,
        rate_limits=False,
        tick_interval=1.0,
        auto_tick=False,
        state_file=None,
    )
    sim = start_in_thread(config)
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    control = simulator.control
    control.reset()
    control.clear_faults()
    control.set_rate_limits(False)
    control.set_price(100000)
    control.freeze(True)
    return simulator


@pytest.fixture
def sim_account(sim: RunningSimulator) -> SimAccount:
    return sim.control.create_account(balance=1_000_000)


@pytest.fixture
def sim_network(sim, settings) -> Iterator[None]:
    """Point the `simulator` network at the test simulator (and forget cached clients before and after)."""
    settings.LNMARKETS_URLS = {**settings.LNMARKETS_URLS, "simulator": {"rest": sim.rest_url, "stream": sim.stream_url}}
    clients_reset()
    yield
    clients_reset()


def exchange_account_for(owner: User, sim_account: SimAccount, label: str) -> ExchangeAccount:
    """An exchange account of ``owner`` holding ``sim_account``'s credentials (not verified again)."""
    return account_services.exchange_account_create(
        owner=owner,
        label=label,
        network="simulator",
        api_key=sim_account.key,
        api_secret=sim_account.secret,
        passphrase=sim_account.passphrase,
        verification=account_services.Verification(permissions=tuple(sim_account.scopes)),
    )


@pytest.fixture
def paper(alice, sim, sim_network, sim_account) -> ExchangeAccount:
    """alice's exchange account holding the simulator account's credentials."""
    return exchange_account_for(alice, sim_account, "paper")


@pytest.fixture
def exchange(sim, sim_account) -> Iterator[RestClient]:
    """A direct REST client on the simulator account: the 'by hand' trader of the tests."""
    creds = Credentials(key=sim_account.key, secret=sim_account.secret, passphrase=sim_account.passphrase)
    client = RestClient(sim.rest_url, static_provider(creds), rate_limiter=InProcessRateLimiter(), timeout=5)
    yield client
    client.close()
