"""Benchmark: tick → order POST latency at the simulator, with N accounts each guarding 3 running trades.

Setup (PostgreSQL + Redis on loopback, as in production): a bench database ``axisor_bench``, the simulator in its
own process (no rate limits, no automatic ticks), a real ``celery worker`` process (prefork, 2 children), and in
this process the market feed on the simulator's stream with the tick runner, exactly as ``run_automations`` runs.

N traders each own one account holding 3 running 10x longs (liquidation 90 909) under a Margin Guard that closes
at a liquidation distance threshold (until 2026-12-07 one owner held all N accounts, which made per-user work look
cheaper than it is: the dashboard events of all the accounts were numbered and sent as one user's). ``TRIGGERS``
accounts have distinct thresholds between 8.8 % and 5 %; the others have 0.5 % and never fire in the price range
used. Each measured tick lowers the price just across the next trigger account's threshold, so every tick evaluates
all N accounts and fires exactly one (3 closes). Latency =
arrival of that account's first close POST at the simulator − the moment the price was set (same clock).

Then, at the largest size, the **crash tick**: the price falls at once just past the 0.5 % threshold of every other
account (about -8.6 %, confirmed by the next tick as an outlier must be), so all their guarded trades must be closed
together; ``crash_all_acted_s`` = first tick → the last of those closes reconciled. The engine and client-overhead
figures come from ``bench/engine_evals.py`` and ``bench/gateway.py``.

Run: ``.venv/bin/python bench/automations.py`` (``BENCH_ACCOUNTS``, default ``100,1000``; ``BENCH_WORKER_CHILDREN``,
default 2; ``BENCH_WORKER_POOL``, default prefork; ``BENCH_EXCHANGE_LATENCY_MS``, default 0: each crash-tick POST
waits that long at the simulator, as at a distant exchange); the last line is

    RESULT accounts=… tick_to_order_p50_ms=… tick_to_order_p99_ms=… crash_all_acted_s=… engine_evals_per_s=…
    overhead_us_per_call=…
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._postgres import PG, recreate_database  # noqa: E402 - needs the project root on sys.path
from bench._stack import (  # noqa: E402
    HOST,
    TOKEN,
    bench_environ,
    free_port,
    start_simulator,
    start_worker,
    stop,
    wait,
    wait_for_simulator,
)

DB_NAME = os.environ.get("BENCH_DB", "axisor_bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
SIZES = tuple(int(n) for n in os.environ.get("BENCH_ACCOUNTS", "100,1000").split(","))
TRIGGERS = int(os.environ.get("BENCH_TRIGGERS", "30"))
WORKER_CHILDREN = int(os.environ.get("BENCH_WORKER_CHILDREN", "2"))
WORKER_POOL = os.environ.get("BENCH_WORKER_POOL", "prefork")  # Celery's -P (threads: BENCH_WORKER_CHILDREN threads)
# The crash tick's POSTs wait this long at the simulator before being processed (0: the loopback simulator's own
# speed; the real exchange answers in tens to hundreds of ms, during which a worker child waits).
EXCHANGE_LATENCY_MS = int(os.environ.get("BENCH_EXCHANGE_LATENCY_MS", "0"))
LIQUIDATION = Decimal("90909")


def _wait(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    return wait(predicate, timeout, what, poll=0.02)


def main() -> None:  # noqa: C901, PLR0915 - a linear script
    began = time.monotonic()
    sim_port = free_port()
    bench_environ(f"{PG}/{DB_NAME}", REDIS, sim_port)
    recreate_database(DB_NAME)
    sim = start_simulator(sim_port)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from accounts import services as account_services
    from accounts.models import ExchangeAccount, User
    from automations.configs import config_to_json
    from automations.engine import MarginGuardConfig
    from automations.models import Automation, OrderIntent, TrackedTrade
    from automations.runner import TickRunner
    from bench.engine_evals import measure_engine_evals_per_s
    from lnmarkets.client import RestClient
    from lnmarkets.credentials import Credentials, static_provider
    from lnmarkets.feed import MarketFeed
    from lnmarkets.maths import round_to_tick
    from lnmarkets.ratelimit import NullRateLimiter
    from lnmarkets.simulator.client import ControlClient

    control = ControlClient(f"http://{HOST}:{sim_port}", TOKEN)
    wait_for_simulator(control)
    worker = start_worker("protective,celery", WORKER_CHILDREN, WORKER_POOL)
    results: dict[int, tuple[float, float, int]] = {}
    crash: dict[int, float] = {}
    feed = MarketFeed(f"http://{HOST}:{sim_port}/v3", f"ws://{HOST}:{sim_port}/v1", name="bench-feed")
    runner = TickRunner(feed, "simulator")
    try:
        feed.start()
        runner.start()
        for size in SIZES:
            ExchangeAccount.objects.all().delete()
            # 1,000 traders: every account has an owner of its own, as in use (per-user work, e.g. numbering the
            # dashboard events or reading the owner's notification channels, is then done per account)
            User.objects.bulk_create(User(username=f"trader-{size}-{i}", password="!") for i in range(size))  # noqa: S106
            owners = list(User.objects.filter(username__startswith=f"trader-{size}-").order_by("pk"))
            control.reset()
            control.freeze(True)
            control.set_price(100000)
            sim_accounts = [control.create_account(balance=10_000_000) for _ in range(size)]

            def open_three(sim_account):  # noqa: ANN001, ANN202
                creds = Credentials(sim_account.key, sim_account.secret, sim_account.passphrase)
                client = RestClient(
                    f"http://{HOST}:{sim_port}/v3", static_provider(creds), rate_limiter=NullRateLimiter(), timeout=10
                )
                trades = [
                    client.isolated_trade_create(type="market", side="buy", quantity=100, leverage=Decimal(10))
                    for _ in range(3)
                ]
                client.close()
                return trades

            with ThreadPoolExecutor(8) as pool:
                trades_per_account = list(pool.map(open_three, sim_accounts))
            accounts = []
            for i, (sim_account, owner) in enumerate(zip(sim_accounts, owners, strict=True)):
                accounts.append(
                    account_services.exchange_account_create(
                        owner=owner,
                        label=f"acct-{size}-{i}",
                        network="simulator",
                        api_key=sim_account.key,
                        api_secret=sim_account.secret,
                        passphrase=sim_account.passphrase,
                        verification=account_services.Verification(permissions=tuple(sim_account.scopes)),
                    )
                )
            ExchangeAccount.objects.update(balance=10_000_000)
            TrackedTrade.objects.bulk_create(
                TrackedTrade(
                    account=account,
                    trade_id=t.id,
                    origin="axisor",
                    managed=True,
                    state="running",
                    side=t.side,
                    quantity=int(t.quantity),
                    entry_price=t.entry_price or t.price,
                    margin=int(t.margin),
                    leverage=t.leverage,
                    liquidation=t.liquidation,
                    maintenance_margin=int(t.maintenance_margin),
                    opening_fee=int(t.opening_fee),
                    last_seen_at=django.utils.timezone.now(),
                )
                for account, trades in zip(accounts, trades_per_account, strict=True)
                for t in trades
            )
            # one extra trigger account first: its tick warms the worker's connections and is not measured
            thresholds = [Decimal("8.8") - Decimal("0.2") * j for j in range(TRIGGERS + 1)]
            Automation.objects.bulk_create(
                Automation(
                    account=account,
                    name="guard",
                    kind="margin_guard",
                    config=config_to_json(
                        MarginGuardConfig(
                            trigger="liquidation_distance",
                            threshold=thresholds[i] if i <= TRIGGERS else Decimal("0.5"),
                            action="close",
                            cooldown_seconds=0,
                        )
                    ),
                )
                for i, account in enumerate(accounts)
            )
            control.set_price(100001)  # a fresh tick: the feed is live again after the long set-up
            _wait(lambda: feed.state == "live", 20, "the live feed")
            latencies: list[float] = []
            decided: list[float] = []  # the tick → its first intent written (the rest is queue, worker and POST)
            for j in range(TRIGGERS + 1):
                crossing = LIQUIDATION / (1 - thresholds[j] / 100)
                price = round_to_tick(crossing, ROUND_FLOOR) - 1
                key = sim_accounts[j].key
                started = time.time()
                control.set_price(price)
                first = _wait(
                    lambda key=key, started=started: [t for t in control.request_log(key) if t >= started],
                    30,
                    "the close POST",
                )
                if j:
                    latencies.append((min(first) - started) * 1000)
                    written = OrderIntent.objects.filter(account=accounts[j]).order_by("created_at").first()
                    if written is not None:
                        decided.append((written.created_at.timestamp() - started) * 1000)
                _wait(
                    lambda acct=accounts[j]: OrderIntent.objects.filter(account=acct, state="reconciled").count() == 3,
                    60,
                    "the three closes",
                )
            latencies.sort()
            p50 = statistics.median(latencies)
            p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
            results[size] = (p50, p99, runner.evaluations)
            print(
                f"accounts={size} trades={3 * size} ticks={TRIGGERS} tick_to_order_p50_ms={p50:.0f} "
                f"p99_ms={p99:.0f} max_ms={latencies[-1]:.0f} slowest_ms={[round(x) for x in latencies[-4:]]} "
                f"tick_to_intent_p50_ms={statistics.median(decided):.0f} max_ms={max(decided):.0f}",
                flush=True,
            )
            if size == max(SIZES):
                crash[size] = _crash_tick(
                    control, accounts[TRIGGERS + 1 :], OrderIntent, {"simulator": sim, "worker": worker}
                )
    finally:
        runner.stop()
        feed.stop()
        stop(worker, sim)
    evals = measure_engine_evals_per_s(2.0)
    overhead = _gateway_overhead_us()
    largest = max(results)
    p50, p99, _ = results[largest]
    print(f"took {time.monotonic() - began:.0f} s; load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    print(
        f"RESULT accounts={largest} tick_to_order_p50_ms={p50:.0f} tick_to_order_p99_ms={p99:.0f} "
        f"crash_all_acted_s={crash[largest]:.1f} engine_evals_per_s={evals} overhead_us_per_call={overhead}"
    )


def _cpu_groups(procs: dict[str, subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds so far of the processes the crash tick keeps busy (the worker with its children)."""
    import redis

    from bench._stack import cpu_seconds, pids_named, with_children

    groups = {name: with_children(proc.pid) for name, proc in procs.items()}
    groups["PostgreSQL"] = pids_named("postgres")
    groups["Redis"] = [int(redis.Redis.from_url(REDIS).info("server")["process_id"])]
    groups["runner (this process)"] = [os.getpid()]
    return {name: sum(cpu_seconds(pid) for pid in pids) for name, pids in groups.items()}


def _crash_tick(control, accounts, order_intent, procs) -> float:  # noqa: ANN001 - the bench's own objects
    """Every remaining guard at once: the price falls just past the 0.5 % liquidation-distance threshold of all the
    other accounts (about -8.6 % from 100,000: every 10x long sits just above its liquidation), on one tick and its
    confirming next tick (an outlier waits for one, T13). Returns the seconds from the first tick until every one
    of their 3 closes is reconciled (all protective: Margin Guard closes)."""
    from bench._stack import pss_mb, with_children
    from lnmarkets.maths import round_to_tick

    crossing = LIQUIDATION / (1 - Decimal("0.005"))
    price = round_to_tick(crossing, ROUND_FLOOR) - 1
    ids = [a.pk for a in accounts]
    expected = 3 * len(ids)
    if EXCHANGE_LATENCY_MS:
        control.inject_fault("delay", method="POST", count=None, seconds=EXCHANGE_LATENCY_MS / 1000)
    cpu_before = _cpu_groups(procs)
    started = time.monotonic()
    control.set_price(price)
    time.sleep(0.5)
    control.set_price(price - Decimal("0.5"))  # the confirming tick
    done = 0
    deadline = started + 300
    while time.monotonic() < deadline:
        done = order_intent.objects.filter(account_id__in=ids, state="reconciled").count()
        if done >= expected:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - started
    cpu = {name: spent - cpu_before[name] for name, spent in _cpu_groups(procs).items()}
    busy = ", ".join(f"{name} {spent:.1f}" for name, spent in sorted(cpu.items(), key=lambda item: -item[1]))
    print(f"crash tick CPU seconds over {elapsed:.1f} s on {os.cpu_count()} cores: {busy}", flush=True)
    worker_pids = with_children(procs["worker"].pid)
    memory = sum(pss_mb(pid) for pid in worker_pids)
    print(f"worker memory after the crash tick: {memory:.0f} MB (PSS) over {len(worker_pids)} processes", flush=True)
    intents = order_intent.objects.filter(account_id__in=ids)
    created = max(intents.values_list("created_at", flat=True), default=None)
    first = min(intents.values_list("created_at", flat=True), default=None)
    decided = f"{(created - first).total_seconds():.1f} s" if created and first else "n/a"
    print(
        f"crash tick: {len(ids)} accounts, {done}/{expected} guarded trades closed and reconciled after "
        f"{elapsed:.1f} s (first tick → last reconciliation; the intents were written over {decided}; "
        f"{WORKER_CHILDREN} worker {'children' if WORKER_POOL == 'prefork' else WORKER_POOL}; "
        f"exchange latency {EXCHANGE_LATENCY_MS} ms per POST)",
        flush=True,
    )
    return elapsed if done >= expected else float("nan")


def _gateway_overhead_us() -> str:
    """``overhead_us_per_call`` from ``bench/gateway.py`` (its own simulator process; about 30 s)."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gateway.py")], capture_output=True, text=True, timeout=300, check=True
    )
    result = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return dict(part.split("=", 1) for part in result.split()[1:])["overhead_us_per_call"]


if __name__ == "__main__":
    main()
