"""Realtime fan-out: N authenticated dashboard sockets on one Daphne process, market ticks at 2 Hz.

A throw-away SQLite database gets N users, each with a simulator account and a session; a real Daphne process
serves ``tests.realtime.browser_app`` (the real ASGI app plus a scripted feed behind a real ``MarketPublisher``,
in-memory channel layer: the embedded default). N ``websockets`` clients connect with an ``Origin`` and a session
cookie, wait for their snapshot, then count ``ticker`` messages for ``--seconds``. Measured:

* connect: time from opening to the ``snapshot`` (p50/p99), failures, and the time until all N are in;
* fan-out: ``consumer→client`` = receipt − the message's ``ts`` (the consumer's send time), and ``feed→client`` =
  receipt − the ticker's ``received_at`` (includes up to 1/rate of coalescing), p50/p99 over every delivery;
* delivery: ticker messages per client (min/median) against ticks published, ``seq`` gaps seen by clients;
* the Daphne process's resident memory after connecting.

Bounded: defaults finish in well under 60 s (``--clients 2000`` takes longer on a small machine). The last line is
machine-readable:

    RESULT clients=<n> connected=<n> connect_p99_ms=<n> fanout_p99_ms=<n> delivered_pct=<n> gaps=<n> rss_mb=<n>

Realistic caveat: a single Daphne process and the benchmark clients share this machine's CPUs; with Redis
(``REDIS_URL``) the layer adds a network hop per group member (reliability.md §3 "Known scale issues").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SEED = """
import json, sys
import django; django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from accounts.models import ExchangeAccount, User
n = int(sys.argv[1])
users = User.objects.bulk_create([User(username=f"bench{i}", password="!") for i in range(n)])
users = list(User.objects.filter(username__startswith="bench").order_by("id"))
ExchangeAccount.objects.bulk_create([
    ExchangeAccount(owner=u, label="paper", network="simulator", api_key_encrypted="x", api_secret_encrypted="x",
                    passphrase_encrypted="x", is_active=True, balance=1_000_000) for u in users])
cookies = []
for u in users:
    s = SessionStore()
    s[SESSION_KEY] = str(u.pk)
    s[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    s[HASH_SESSION_KEY] = u.get_session_auth_hash()
    s.create()
    cookies.append(s.session_key)
print(json.dumps(cookies))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    def __init__(self) -> None:
        self.connect_ms: float | None = None
        self.tickers = 0
        self.gaps = 0
        self.error: str | None = None
        self.lat_consumer: list[float] = []
        self.lat_feed: list[float] = []


async def run_client(url: str, origin: str, cookie: str, client: Client, stop: asyncio.Event) -> None:
    from websockets.asyncio.client import connect

    started = time.perf_counter()
    try:
        async with connect(
            url,
            additional_headers={"Origin": origin, "Cookie": f"sessionid={cookie}"},
            open_timeout=60,
            compression=None,
            proxy=None,
        ) as ws:
            last_seq = 0
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), timeout=0.5)
                except TimeoutError:
                    continue
                now = time.time()
                msg: dict[str, Any] = json.loads(raw)
                if msg["seq"] != last_seq + 1:
                    client.gaps += 1
                last_seq = msg["seq"]
                if msg["type"] == "snapshot" and client.connect_ms is None:
                    client.connect_ms = (time.perf_counter() - started) * 1000
                elif msg["type"] == "ticker":
                    client.tickers += 1
                    client.lat_consumer.append((now - datetime.fromisoformat(msg["ts"]).timestamp()) * 1000)
                    received = msg["data"].get("received_at")
                    if received:
                        client.lat_feed.append((now - datetime.fromisoformat(received).timestamp()) * 1000)
    except Exception as exc:  # noqa: BLE001 - a benchmark counts failures instead of stopping
        client.error = type(exc).__name__


async def drive(url: str, origin: str, cookies: list[str], seconds: float, ramp: int) -> tuple[list[Client], float]:
    stop = asyncio.Event()
    clients = [Client() for _ in cookies]
    tasks = []
    t0 = time.perf_counter()
    for i, (cookie, client) in enumerate(zip(cookies, clients, strict=True)):
        tasks.append(asyncio.create_task(run_client(url, origin, cookie, client, stop)))
        if ramp and i % ramp == ramp - 1:
            await asyncio.sleep(0.05)
    deadline = time.perf_counter() + 90
    while time.perf_counter() < deadline:
        done = sum(1 for c in clients if c.connect_ms is not None or c.error)
        if done == len(clients):
            break
        await asyncio.sleep(0.1)
    all_in = time.perf_counter() - t0
    for c in clients:  # count only the steady-state window
        c.tickers, c.lat_consumer, c.lat_feed, c.gaps = 0, [], [], 0
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return clients, all_in


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ramp", type=int, default=100, help="open this many sockets per 50 ms (0: all at once)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        flag = tmp / "ticking"
        flag.touch()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
            "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
            "SIMULATOR_CONTROL_TOKEN": "bench",
            "SECURE_COOKIES": "false",
            "AXISOR_VAR_DIR": str(tmp),
            "BROWSER_TEST_TICK_FLAG": str(flag),
            "LOG_LEVEL": "WARNING",
        }
        python = sys.executable
        subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
        seeded = subprocess.run(
            [python, "-c", SEED, str(args.clients)], cwd=ROOT, env=env, check=True, timeout=300, capture_output=True
        )
        cookies: list[str] = json.loads(seeded.stdout)
        port = _free_port()
        daphne = Path(python).with_name("daphne")
        proc = subprocess.Popen(
            [str(daphne), "-b", "127.0.0.1", "-p", str(port), "tests.realtime.browser_app:application"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp / "daphne.log").open("w"),
        )
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
            rss_idle = _rss_mb(proc.pid)
            url, origin = f"ws://127.0.0.1:{port}/ws/dashboard/", f"http://127.0.0.1:{port}"
            clients, all_in = asyncio.run(drive(url, origin, cookies, args.seconds, args.ramp))
            rss = _rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    connected = [c for c in clients if c.connect_ms is not None and not c.error]
    errors: dict[str, int] = {}
    for c in clients:
        if c.error:
            errors[c.error] = errors.get(c.error, 0) + 1
    connect_ms = [c.connect_ms for c in clients if c.connect_ms is not None]
    consumer = [v for c in connected for v in c.lat_consumer]
    feed = [v for c in connected for v in c.lat_feed]
    tickers = [c.tickers for c in connected]
    expected = max(tickers) if tickers else 0
    delivered = 100.0 * sum(tickers) / (expected * len(connected)) if expected and connected else 0.0
    gaps = sum(c.gaps for c in connected)

    print(f"clients {args.clients}, connected {len(connected)}, errors {errors or 'none'}")
    print(f"all connected after {all_in:.2f} s (ramp {args.ramp}/50 ms)")
    print(f"connect→snapshot ms: p50 {_pct(connect_ms, 0.5):.1f}  p99 {_pct(connect_ms, 0.99):.1f}")
    print(f"consumer→client ms: p50 {_pct(consumer, 0.5):.1f}  p99 {_pct(consumer, 0.99):.1f}")
    print(f"feed→client ms:     p50 {_pct(feed, 0.5):.1f}  p99 {_pct(feed, 0.99):.1f}")
    if tickers:
        print(
            f"tickers per client over {args.seconds:.0f} s: min {min(tickers)} median {statistics.median(tickers)} "
            f"max {expected}; delivered {delivered:.1f} %; seq gaps {gaps}"
        )
    print(f"daphne RSS: idle {rss_idle:.0f} MB, with {len(connected)} sockets {rss:.0f} MB")
    print(
        f"RESULT clients={args.clients} connected={len(connected)} connect_p99_ms={_pct(connect_ms, 0.99):.0f} "
        f"fanout_p99_ms={_pct(feed, 0.99):.0f} delivered_pct={delivered:.1f} gaps={gaps} rss_mb={rss:.0f}"
    )


if __name__ == "__main__":
    main()
