"""Gateway client overhead: our own CPU per signed REST call (sign + send + parse) and the Stream decode rate.

The simulator runs in a separate process (loopback, rate limits off), so ``time.process_time()`` of this process
measures only the client side: building and signing the request, ``urllib3``/``http.client`` sending it and reading
the answer, and parsing it into typed models. Bounded to well under 60 s. The last line is machine-readable:

    RESULT overhead_us_per_call=<n> stream_decode_per_s=<n>
"""

from __future__ import annotations

import json
import multiprocessing
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lnmarkets.client import RestClient  # noqa: E402
from lnmarkets.credentials import Credentials, static_provider  # noqa: E402
from lnmarkets.ratelimit import NullRateLimiter  # noqa: E402
from lnmarkets.simulator import ControlClient  # noqa: E402
from lnmarkets.stream import decode_message  # noqa: E402

TOKEN = secrets.token_hex(8)
CALLS = 600
WARMUP = 50
ROUNDS = 5
DECODE_SECONDS = 2.0


def serve(queue: Queue[str], stop: EventType, token: str) -> None:
    from lnmarkets.simulator import SimulatorConfig, start_in_thread

    config = SimulatorConfig(
        host="127.0.0.1",
        port=0,
        seed=1,
        price=Decimal(100000),
        control_token=token,
        rate_limits=False,
        auto_tick=False,
        state_file=None,
    )
    sim = start_in_thread(config)
    queue.put(sim.base_url)
    stop.wait(55)
    sim.stop()


def measure_calls(base_url: str) -> tuple[float, float, dict[str, float]]:
    control = ControlClient(base_url, TOKEN)
    account = control.create_account(balance=100_000_000)
    trade_holder = RestClient(
        base_url + "/v3",
        static_provider(Credentials(account.key, account.secret, account.passphrase)),
        rate_limiter=NullRateLimiter(),
    )
    for _ in range(3):
        trade_holder.isolated_trade_create(type="market", side="buy", leverage=10, quantity=100)
    client = trade_holder
    calls: dict[str, Callable[[], object]] = {
        "account_get": client.account_get,
        "isolated_trades_running_list(3 trades)": client.isolated_trades_running_list,
        "futures_ticker_get": client.futures_ticker_get,
    }
    per_call: dict[str, float] = {}
    for name, call in calls.items():
        for _ in range(WARMUP):
            call()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(CALLS):
            call()
        per_call[name] = (time.process_time() - cpu0) / CALLS * 1e6
        print(
            f"{name:40s} cpu {per_call[name]:8.1f} us/call  wall {(time.perf_counter() - wall0) / CALLS * 1e6:8.1f} us"
        )
    rounds: list[tuple[float, float]] = []
    for _ in range(ROUNDS):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(CALLS):
            client.account_get()
        rounds.append(((time.process_time() - cpu0) / CALLS * 1e6, (time.perf_counter() - wall0) / CALLS * 1e6))
    overhead = statistics.median(r[0] for r in rounds)
    wall = statistics.median(r[1] for r in rounds)
    control.close()
    client.close()
    return overhead, wall, per_call


def measure_own_code() -> None:
    """Our share of the per-call CPU, without the HTTP stack: signing the request and parsing the answer."""
    from lnmarkets.schemas import Account, parse_json, parse_model
    from lnmarkets.signing import rest_signature

    body = '{"id":"cd613e30-d8f1-4adf-91b7-584a2265b1f5","username":"u","balance":1000000,"feeTier":0}'
    n = 20_000
    cpu0 = time.process_time()
    for i in range(n):
        rest_signature("secret-0123456789", str(1_700_000_000_000 + i), "GET", "/v3/account", "")
    sign = (time.process_time() - cpu0) / n * 1e6
    cpu0 = time.process_time()
    for _ in range(n):
        parse_model(Account, parse_json(body), context="bench")
    parse = (time.process_time() - cpu0) / n * 1e6
    print(f"of which ours: sign {sign:.1f} us, parse Account {parse:.1f} us (the rest is urllib3/http.client)")


def measure_decode() -> float:
    frames = [
        json.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"topic": topic, "data": data}})
        for topic, data in (
            (
                "futures/inverse/btc_usd/ticker",
                {
                    "time": 1764171148822,
                    "lastPrice": 100000.5,
                    "index": 100000,
                    "funding": {"rate": 0.0001, "time": 1764172800000},
                },
            ),
            (
                "futures/inverse/btc_usd/buckets",
                {
                    "time": 1764171148822,
                    "buckets": [{"minSize": 1, "maxSize": 10000, "bidPrice": 100000, "askPrice": 100000.5}],
                },
            ),
            (
                "futures/inverse/btc_usd/isolated/trades",
                {
                    "pair": "btc_usd",
                    "event": "closed",
                    "trade": {"id": "t1", "closedAt": 1764171149822, "closingFee": 99, "pl": 890, "exitPrice": 101000},
                },
            ),
        )
    ]
    decoded = 0
    deadline = time.perf_counter() + DECODE_SECONDS
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for frame in frames:
            if decode_message(frame) is None:
                raise SystemExit("decode failed")
        decoded += len(frames)
    return decoded / (time.perf_counter() - started)


def main() -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    stop = ctx.Event()
    server = ctx.Process(target=serve, args=(queue, stop, TOKEN), daemon=True)
    server.start()
    try:
        base_url = queue.get(timeout=20)
        print(f"simulator (separate process) at {base_url}; {CALLS} calls per measurement, rate limits off")
        overhead, wall, _ = measure_calls(base_url)
        print(
            f"signed GET /v3/account, median of {ROUNDS} rounds: "
            f"client CPU {overhead:.1f} us/call, round trip {wall:.1f} us"
        )
        measure_own_code()
    finally:
        stop.set()
        server.join(timeout=15)
    rate = measure_decode()
    print(f"stream decode: {rate:,.0f} frames/s (ticker, buckets, trade event; JSON + typed models)")
    print(f"RESULT overhead_us_per_call={overhead:.0f} stream_decode_per_s={rate:.0f}")


if __name__ == "__main__":
    main()
