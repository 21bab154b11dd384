"""Fixtures of the reliability battery (docs/reliability.md §7) with real processes: PostgreSQL + Redis only.

``FAULTS_SCALE=full`` (``make faults``) runs the battery's trial counts with LN Markets' real 30 s signature window;
the default (``ci``) runs a reduced count of every scenario with a 5 s window, so CI's PostgreSQL pass catches a
regression in minutes. Each test adds its ``Result`` to the session tally; the total is written to
``$AXISOR_TEST_ARTIFACTS/faults/result.json`` and printed as a ``RESULT`` line.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import ExchangeAccount, User
from automations.exchange import clients_reset
from lnmarkets.simulator.client import ControlClient, SimAccount
from tests.faults.harness import Stack, Timing, stack
from tests.faults.tally import Result, Tally
from tests.fixtures_simulator import exchange_account_for

SCALE = os.environ.get("FAULTS_SCALE", "ci")
FULL = SCALE == "full"
TIMING = Timing(window_s=30, send_window_s=10) if FULL else Timing(window_s=5, send_window_s=3)

needs_real_services = pytest.mark.skipif(
    not (settings.REDIS_URL and connection.vendor == "postgresql"),
    reason="the fault battery runs real processes on PostgreSQL + Redis",
)

_tally = Tally()


def trials(ci: int, full: int) -> int:
    return full if FULL else ci


@pytest.fixture(scope="session")
def battery(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Redis of its own and the simulator, for the whole session; workers are per test."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    with stack(tmp_path_factory.mktemp("faults"), url, TIMING) as run:
        run.start_simulator()
        yield run


@pytest.fixture
def rig(battery: Stack, transactional_db: None, settings: Any) -> Iterator[Stack]:  # noqa: ANN401
    """The session's stack with a clean exchange and empty queues; the test's own processes stopped after it. The
    driver's own reads (reconciling an account by hand) go to the stack's simulator too."""
    settings.LNMARKETS_URLS = {
        **settings.LNMARKETS_URLS,
        "simulator": {"rest": f"{battery.sim_url}/v3", "stream": f"ws://127.0.0.1:{battery.sim_port}/v1"},
    }
    clients_reset()
    control = ControlClient(battery.sim_url, "faults-control-token")
    control.reset()
    control.freeze(True)
    control.set_rate_limits(False)
    battery.purge()
    before = set(battery.procs)
    yield battery
    for name in set(battery.procs) - before:
        battery.stop(name)
    if "redis" not in battery.procs:
        battery.start_redis()
    clients_reset()


@pytest.fixture
def control(rig: Stack) -> ControlClient:
    return ControlClient(rig.sim_url, "faults-control-token")


@pytest.fixture
def trader(transactional_db: None) -> User:
    return User.objects.create_user("faults-trader", password="faults-password-123")


@pytest.fixture
def accounts(control: ControlClient, trader: User) -> Callable[[int], list[tuple[ExchangeAccount, SimAccount]]]:
    """``accounts(n)``: n exchange accounts, each on its own simulator account (its own key and rate budget)."""

    labels = itertools.count(1)

    def make(n: int) -> list[tuple[ExchangeAccount, SimAccount]]:
        made = []
        for i in itertools.islice(labels, n):
            sim = control.create_account(balance=50_000_000)
            made.append((exchange_account_for(trader, sim, f"trial {i}"), sim))
        return made

    return make


@pytest.fixture
def record() -> Callable[[Result], Result]:
    """Add a scenario's result to the session tally (and return it for the test's own assertions)."""

    def add(result: Result) -> Result:
        _tally.add(result)
        return result

    return add


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _tally.results:
        path = _tally.write()
        session.config._faults_summary = (path, _tally.result_line())  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    summary: tuple[Path, str] | None = getattr(terminalreporter.config, "_faults_summary", None)
    if summary is None:
        return
    path, line = summary
    terminalreporter.write_sep("-", "reliability battery")
    for result in _tally.results:
        flag = "ok" if result.ok() else "FAILED"
        terminalreporter.write_line(
            f"{result.scenario:<34} trials={result.trials:<4} duplicates={result.duplicates} lost={result.lost} "
            f"misattributed={result.misattributed} max_terminal_s={result.max_terminal_s} {flag}"
        )
    terminalreporter.write_line(f"({path})")
    terminalreporter.write_line(line)
