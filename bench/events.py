"""Benchmark: the exchange's own closes (take-profit hits, liquidations) → tracked trade closed and dashboard frame
sent, with N accounts each holding its own authenticated private socket to the simulator.

Setup (PostgreSQL + Redis on loopback, as in production): a fresh database (``BENCH_EVENTS_DB``, default
``axisor_bench_events``), Redis (``BENCH_REDIS_URL``) for the cache and the channel layer, the simulator in its own
process (no rate limits, no automatic ticks). This process is the feed process: it runs the private stream manager
exactly as ``run_automations`` does (``automations.stream_manager.ExchangeStreamManager``: one socket per enabled
account, connects paced at ``BENCH_CONNECTS_PER_S``, two applier threads).

Each account holds one running long: half with a take-profit (distinct levels 100 100 … 102 098), half at
50x-100x (liquidation between about 98 000 and 99 010). The price then walks up by 20 USD every 0.1 s to 102 100
(every take-profit fires, a few per step), back to 100 000, and down by 20 USD every 0.1 s to 97 900 (every
liquidation fires). Latency of one close = the moment its ``automation.log`` frame is handed to the channel layer
(Redis) − the exchange's own ``closedAt`` of the trade (same machine, same wall clock).

Run: ``.venv/bin/python bench/events.py`` (last line ``RESULT accounts=1000 event_to_dashboard_p99_ms=…
private_sockets=…``).
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._postgres import PG, recreate_database  # noqa: E402 - needs the project root on sys.path

HOST = "127.0.0.1"
TOKEN = "bench-token"  # noqa: S105 - the local simulator's control token
DB_NAME = os.environ.get("BENCH_EVENTS_DB", "axisor_bench_events")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
ACCOUNTS = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
CONNECTS_PER_S = float(os.environ.get("BENCH_CONNECTS_PER_S", "50"))
STEP_USD = 20
STEP_S = 0.1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _wait(predicate: Any, timeout: float, what: str) -> None:  # noqa: ANN401
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:  # noqa: C901, PLR0915 - a linear script
    sim_port = _free_port()
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"{PG}/{DB_NAME}",
            "REDIS_URL": REDIS,
            "SECRET_KEY": "bench-secret-key-" + "x" * 40,
            "FIELD_ENCRYPTION_KEYS": "YmVuY2gta2V5LTAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
            "LNMARKETS_SIMULATOR_REST_URL": f"http://{HOST}:{sim_port}/v3",
            "LNMARKETS_SIMULATOR_STREAM_URL": f"ws://{HOST}:{sim_port}/v1",
            "SECURE_COOKIES": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    recreate_database(DB_NAME)
    sim = subprocess.Popen(
        [sys.executable, "-m", "lnmarkets.simulator", "--host", HOST, "--port", str(sim_port), "--seed", "1"]
        + ["--control-token", TOKEN, "--no-rate-limits", "--no-auto-tick"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _run(sim_port, sim)
    finally:
        sim.terminate()
        sim.wait(timeout=10)


def _run(sim_port: int, sim: subprocess.Popen[bytes]) -> None:  # noqa: C901, PLR0915
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db.models import Count

    call_command("migrate", verbosity=0)
    cache.clear()
    from accounts import services as account_services
    from accounts.models import ExchangeAccount, User
    from automations.models import AuditEntry, TrackedTrade
    from automations.services.trades import tracked_trade_upsert
    from automations.stream_manager import ExchangeStreamManager
    from axisor_bus import publish as bus
    from lnmarkets.client import RestClient
    from lnmarkets.credentials import Credentials, static_provider
    from lnmarkets.ratelimit import NullRateLimiter
    from lnmarkets.simulator.client import ControlClient, SimAccount

    control = ControlClient(f"http://{HOST}:{sim_port}", TOKEN)
    _wait(lambda: _ping(control), 20, "the simulator")
    rest_url = f"http://{HOST}:{sim_port}/v3"
    print(f"load before: {os.getloadavg()}")

    # --- N users, N simulator accounts, N exchange accounts, one running trade each --------------------------
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        sims: list[SimAccount] = list(pool.map(lambda _i: control.create_account(balance=10_000_000), range(ACCOUNTS)))
    password = make_password(None)
    User.objects.bulk_create(User(username=f"bench{i}", password=password) for i in range(ACCOUNTS))
    users = list(User.objects.filter(username__startswith="bench").order_by("id"))
    verification = account_services.Verification(permissions=("futures:isolated:read", "futures:isolated:write"))
    accounts: list[ExchangeAccount] = []
    for user, sim_account in zip(users, sims, strict=True):
        accounts.append(
            account_services.exchange_account_create(
                owner=user,
                label="bench",
                network="simulator",
                api_key=sim_account.key,
                api_secret=sim_account.secret,
                passphrase=sim_account.passphrase,
                verification=verification,
            )
        )
    half = ACCOUNTS // 2

    def open_trade(i: int) -> Any:  # noqa: ANN401
        account = sims[i]
        creds = Credentials(account.key, account.secret, account.passphrase)
        client = RestClient(rest_url, static_provider(creds), timeout=10, rate_limiter=NullRateLimiter())
        try:
            if i < half:  # a take-profit between 100 100 and 102 098
                return client.isolated_trade_create(
                    type="market", side="buy", quantity=100, leverage=10, takeprofit=Decimal(100_100 + 2 * i)
                )
            return client.isolated_trade_create(type="market", side="buy", quantity=100, leverage=50 + (i % 51))
        finally:
            client.close()

    with ThreadPoolExecutor(8) as pool:
        trades = list(pool.map(open_trade, range(ACCOUNTS)))
    for account, trade in zip(accounts, trades, strict=True):
        tracked_trade_upsert(account, trade, managed=True)
    print(f"setup: {ACCOUNTS} accounts with one running trade each in {time.monotonic() - started:.1f} s")

    # --- the dashboard frames, as handed to the channel layer --------------------------------------------------
    frames: dict[int, float] = {}
    frames_lock = threading.Lock()
    real_group_send = bus.group_send

    def group_send(group: str, message: Any) -> None:  # noqa: ANN401
        real_group_send(group, message)
        if message.get("type") == "automation.log":
            sent = time.time()
            with frames_lock:
                frames.setdefault(int(message["account_id"]), sent)

    bus.group_send = group_send
    closes: dict[int, float] = {}  # account → the exchange's closedAt (s)
    received: dict[int, float] = {}  # account → when its socket handed the event over (wall clock, s)
    results: dict[str, int] = {}

    def on_applied(account_id: int, event: Any, result: str, got: float) -> None:  # noqa: ANN401
        results[result] = results.get(result, 0) + 1
        if event.trade.closed_at is not None and result == "closed":
            closes[account_id] = event.trade.closed_at.timestamp()
            received[account_id] = time.time() - (time.monotonic() - got)

    # --- the feed process's private streams ----------------------------------------------------------------------
    cpu0, wall0 = time.process_time(), time.monotonic()
    manager = ExchangeStreamManager(["simulator"], connects_per_second=CONNECTS_PER_S, on_applied=on_applied)
    manager.start()
    _wait(lambda: manager.streams.live_count() == ACCOUNTS, 60 + ACCOUNTS / CONNECTS_PER_S * 2, "every socket live")
    connect_s = time.monotonic() - wall0
    sockets_at_sim = int(control.state()["counters"]["streamSockets"])
    live = manager.streams.live_count()
    print(
        f"{live} private sockets live in {connect_s:.1f} s (paced at {CONNECTS_PER_S:g}/s); simulator counts "
        f"{sockets_at_sim} stream sockets; RSS {_rss_mb():.0f} MB"
    )
    idle_cpu0, idle_wall0 = time.process_time(), time.monotonic()
    time.sleep(10)
    idle_cpu = time.process_time() - idle_cpu0
    print(
        f"idle, {live} sockets (heartbeats only): {idle_cpu / (time.monotonic() - idle_wall0) * 100:.1f} % of one core"
    )

    # --- exchange-side closes: a walk up through the take-profits, then down through the liquidations -------------
    walk_cpu0, walk_wall0 = time.process_time(), time.monotonic()
    path = [*range(100_000, 102_101, STEP_USD), *range(102_100, 99_999, -200), *range(100_000, 97_899, -STEP_USD)]
    for price in path:
        control.set_price(price)
        time.sleep(STEP_S)
    _wait(lambda: len(frames) >= ACCOUNTS, 60, "a dashboard frame for every close")
    walk_s = time.monotonic() - walk_wall0
    walk_cpu = time.process_time() - walk_cpu0
    total_cpu, total_wall = time.process_time() - cpu0, time.monotonic() - wall0
    sockets_during = manager.streams.live_count()
    manager.stop()
    bus.group_send = real_group_send

    latencies = [(frames[a] - closes[a]) * 1000 for a in closes if a in frames]
    to_socket = [(received[a] - closes[a]) * 1000 for a in closes]
    to_frame = [(frames[a] - received[a]) * 1000 for a in closes if a in frames]
    closed_rows = TrackedTrade.objects.filter(state=TrackedTrade.State.CLOSED).count()
    reasons = dict(
        TrackedTrade.objects.filter(state=TrackedTrade.State.CLOSED)
        .values_list("closed_reason")
        .annotate(n=Count("id"))
    )
    entries = AuditEntry.objects.filter(event=AuditEntry.Event.RECONCILE, inputs__source="stream").count()
    print(
        f"closes: {closed_rows} tracked trades closed ({reasons}), {entries} audit entries, applier results "
        f"{results}, apply errors {manager.errors}; {len(path)} price steps in {walk_s:.1f} s "
        f"({ACCOUNTS / walk_s:.0f} closes/s on average)"
    )
    print(
        f"event → dashboard frame (ms): p50 {statistics.median(latencies):.0f}, p90 {_pct(latencies, 0.9):.0f}, "
        f"p99 {_pct(latencies, 0.99):.0f}, max {max(latencies):.0f} over {len(latencies)} closes"
    )
    print(
        f"of which exchange → socket p50 {statistics.median(to_socket):.0f} / p99 {_pct(to_socket, 0.99):.0f} ms, "
        f"socket → frame (queue, database, publish) p50 {statistics.median(to_frame):.0f} / p99 "
        f"{_pct(to_frame, 0.99):.0f} ms"
    )
    print(
        f"feed process: CPU {total_cpu:.1f} s over {total_wall:.0f} s (connects {connect_s:.0f} s, idle 10 s, "
        f"walk {walk_cpu:.1f} s CPU in {walk_s:.0f} s), RSS {_rss_mb():.0f} MB, threads {threading.active_count()}"
    )
    print(f"load after: {os.getloadavg()}")
    if closed_rows != ACCOUNTS or entries != ACCOUNTS or len(latencies) != ACCOUNTS:
        raise SystemExit("not every close was applied exactly once")
    print(
        f"RESULT accounts={ACCOUNTS} event_to_dashboard_p99_ms={_pct(latencies, 0.99):.0f} "
        f"private_sockets={min(sockets_during, sockets_at_sim)}"
    )


def _ping(control: Any) -> bool:  # noqa: ANN401
    try:
        control.state()
    except Exception:  # noqa: BLE001 - the server is still starting
        return False
    return True


if __name__ == "__main__":
    main()
