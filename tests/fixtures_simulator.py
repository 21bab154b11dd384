"""pytest plugin: a running LN Markets simulator for the whole session, reset before each test that uses it.

- ``simulator``: session-scoped, control token set, rate limits off, no automatic ticks, price 100 000.
- ``sim``: the same object after ``reset()``, ``clear_faults()``, ``set_rate_limits(False)``,
  ``set_price(100000)`` and ``freeze(True)``.
- ``sim_account``: a fresh account with 1 000 000 sats and the trading scopes.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

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
