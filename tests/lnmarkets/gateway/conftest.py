"""Fixtures of the gateway tests, on top of the shared simulator fixtures (``sim``, ``sim_account``; tests/
fixtures_simulator.py): credentials, a REST client bound to the account, and a ticker pump (the shared simulator
does not tick on its own). Loopback only."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.ratelimit import NullRateLimiter
from lnmarkets.simulator import RunningSimulator, SimAccount


@pytest.fixture
def creds(sim_account: SimAccount) -> Credentials:
    return Credentials(sim_account.key, sim_account.secret, sim_account.passphrase)


@pytest.fixture
def client(sim: RunningSimulator, creds: Credentials) -> Iterator[RestClient]:
    rest = RestClient(
        sim.rest_url,
        static_provider(creds),
        timeout=5.0,
        rate_limiter=NullRateLimiter(),
        backoff_base=0.05,
        backoff_cap=0.2,
    )
    yield rest
    rest.close()


@pytest.fixture
def ticker_pump(sim: RunningSimulator) -> Iterator[Callable[[float], None]]:
    """``start(interval)`` advances the simulator's market every ``interval`` seconds until the test ends."""
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(interval: float = 0.3) -> None:
        def pump() -> None:
            while not stop.wait(interval):
                sim.control.step(1)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=5)
