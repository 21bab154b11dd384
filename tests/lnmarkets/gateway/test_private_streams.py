"""``lnmarkets.private_streams`` on the real simulator, without Django: each account's events reach only its own
handler, accounts come and go with ``sync``, rejected credentials leave that socket ``failed``, and the connect
pacer spaces attempts instead of bursting them."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.private_streams import ConnectPacer, PrivateStreams, StreamTarget
from lnmarkets.ratelimit import NullRateLimiter
from lnmarkets.schemas import StreamTradeEvent
from lnmarkets.simulator import RunningSimulator, SimAccount
from lnmarkets.stream import StreamState


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[int, StreamTradeEvent]] = []
        self.states: list[tuple[int, StreamState]] = []

    def event(self, account_id: int, event: StreamTradeEvent) -> None:
        with self.lock:
            self.events.append((account_id, event))

    def status(self, account_id: int, state: StreamState) -> None:
        with self.lock:
            self.states.append((account_id, state))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def streams(recorder: Recorder) -> Iterator[PrivateStreams]:
    pool = PrivateStreams(recorder.event, recorder.status, connects_per_second=50, backoff_initial=0.1)
    pool.start()
    yield pool
    pool.stop()


def _target(sim: RunningSimulator, account: SimAccount, version: str = "") -> StreamTarget:
    creds = Credentials(account.key, account.secret, account.passphrase)
    return StreamTarget(sim.stream_url, static_provider(creds), version)


def _client(sim: RunningSimulator, account: SimAccount) -> RestClient:
    creds = Credentials(account.key, account.secret, account.passphrase)
    return RestClient(sim.rest_url, static_provider(creds), timeout=5.0, rate_limiter=NullRateLimiter())


def test_each_account_hears_only_its_own_trades(sim: RunningSimulator, streams: PrivateStreams, recorder) -> None:
    first, second = sim.control.create_account(balance=100_000), sim.control.create_account(balance=100_000)
    streams.sync({1: _target(sim, first), 2: _target(sim, second)})
    wait_until(lambda: streams.live_count() == 2)
    client = _client(sim, second)
    try:
        trade = client.isolated_trade_create(type="market", side="buy", quantity=10, leverage=10)
        client.isolated_trade_close(trade.id)
    finally:
        client.close()
    wait_until(lambda: [e.event for _, e in recorder.events] == ["filled", "closed"])
    assert {a for a, _ in recorder.events} == {2}
    assert all(e.trade.id == trade.id for _, e in recorder.events)


def test_sync_closes_unwanted_sockets_and_restarts_changed_ones(
    sim: RunningSimulator, streams: PrivateStreams, recorder
) -> None:
    account = sim.control.create_account(balance=100_000)
    streams.sync({7: _target(sim, account, "v1")})
    wait_until(lambda: streams.states() == {7: "live"})
    first_client = streams.client(7)
    streams.sync({7: _target(sim, account, "v1")})  # same target: the socket stays
    assert streams.client(7) is first_client
    streams.sync({7: _target(sim, account, "v2")})  # new credentials: a new socket
    assert streams.client(7) is not first_client
    wait_until(lambda: streams.states() == {7: "live"})
    streams.sync({})
    assert streams.states() == {}
    assert recorder.states[-1] == (7, "stopped")


def test_rejected_credentials_fail_that_socket_only(sim: RunningSimulator, streams: PrivateStreams) -> None:
    good = sim.control.create_account(balance=100_000)
    bad = StreamTarget(sim.stream_url, static_provider(Credentials("nope", "bm9wZQ==", "nope")))
    streams.sync({1: _target(sim, good), 2: bad})
    wait_until(lambda: streams.states() == {1: "live", 2: "failed"})


def test_the_pacer_spaces_connects() -> None:
    async def schedule() -> list[float]:
        pacer = ConnectPacer(rate=20.0)
        started = time.monotonic()
        stamps: list[float] = []

        async def one() -> None:
            await pacer.wait()
            stamps.append(time.monotonic() - started)

        await asyncio.gather(*(one() for _ in range(5)))
        return sorted(stamps)

    stamps = asyncio.run(schedule())
    # Five attempts at 20/s cannot all pass at once: the fifth waits for four intervals (0.2 s) at least.
    assert stamps[-1] >= 4 * 0.05 - 0.01
