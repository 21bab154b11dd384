"""Benchmark: the live dashboard at 200, 1,000 and 2,000 authenticated sockets, and the same updates by HTTP polling.

Setup, as in production: PostgreSQL (a fresh ``axisor_rt_bench`` database) and Redis (database 4: the channel layer
and the cache, flushed before each server's run so that each starts cold), ``--servers`` ASGI server processes
(Uvicorn, the production server, then Daphne: ``--server``) serving ``config.asgi:application`` with
``config.servers``'s flags on one shared listening socket (``--fd``; the kernel spreads connections over them), and
one market publisher process: a scripted feed at 2 ticks/s behind the real ``realtime.market.MarketPublisher``, which
writes the market state to the cache and sends each tick once to the ``market.simulator`` group through Redis.

Each of N users has a simulator account with one running trade and a logged-in session. Clients run in
``--client-procs`` separate processes (Python ``websockets``, same machine: they share its 2 cores with the servers),
open their sockets at ``--ramp`` per second with an ``Origin`` and the session cookie, and wait for the snapshot.
Then, for ``--seconds``, they record every message:

* connect: sockets that got their snapshot / N (``connect_ok_pct``), and the time to snapshot;
* delivery latency of each tick: arrival at the client − the tick's ``received_at`` (when the publisher got it
  from the feed; same clock): channel layer, consumer, server and the client's own scheduling;
* ``seq`` gaps (a message number skipped on any socket) and ticks delivered / ticks published;
* RSS and CPU (% of one core) of the server processes, the publisher and Redis over the window.

A shed socket (``error`` ``overloaded``, close 4429) waits its ``retry_after_ms`` plus jitter and connects again,
as ``dashboard.js`` does. Then, with ``--bad-clients N`` (20), a second window with N raw sockets that stop reading
after their snapshot and N that never read (T19): the others' p99 against the first window, and the servers' RSS
growth. Then the **reconnect storm**: every client closes its socket and opens it again at once (as after a server
restart); ``storm_ok_pct`` = sockets with their snapshot within 30 s.

Then the sockets close and the same N users poll ``/realtime/api/snapshot/`` every ``--poll-interval`` seconds
on a fixed cadence from a random phase, as the browser's ``setInterval`` does while its socket is down (a slow
answer does not hold back the next request: N users every 5 s offer N / 5 requests/s): answers per second over the
``--seconds`` window that starts once every poller has begun, 5xx answers, round trip, and the delivery latency of
each tick through polling (arrival of the first response showing that tick's price or a newer one − the tick's
``received_at``, so it includes the wait for the next poll). Before #14's last change the pollers waited for each
answer before the next interval, which offered less than N / 5 requests/s whenever answers took time.

By default everything runs on both servers in one run, side by side (T18): ``--server uvicorn,daphne``.

Run: ``.venv/bin/python bench/realtime.py`` (needs PostgreSQL on 127.0.0.1:5432 and Redis; ``BENCH_REDIS_URL``,
``BENCH_DB``; ``make bench``). The last line is for the largest run of the first server (Uvicorn by default):

    RESULT sockets=<n> connect_ok_pct=<n> snapshot_p99_ms=<n> p99_ms=<n> gaps=<n> storm_ok_pct=<n> poll_rps=<n>
    poll_5xx=<n>

where ``p99_ms`` is the socket delivery latency of a tick and ``snapshot_p99_ms`` the time to the first snapshot.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._postgres import PG, recreate_database  # noqa: E402 - needs the project root on sys.path

HOST = "127.0.0.1"
DB_NAME = os.environ.get("BENCH_DB", "axisor_rt_bench")
STORM_WINDOW_S = 30.0
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")

SEED = """
import json, sys
import django; django.setup()
from decimal import Decimal
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.cached_db import SessionStore  # as a login stores it
from django.utils import timezone
from accounts.models import ExchangeAccount, User
from automations.models import TrackedTrade
n = int(sys.argv[1])
User.objects.bulk_create([User(username=f"bench{i}", password="!") for i in range(n)])
users = list(User.objects.filter(username__startswith="bench").order_by("id"))
ExchangeAccount.objects.bulk_create([
    ExchangeAccount(owner=u, label="paper", network="simulator", api_key_encrypted="x", api_secret_encrypted="x",
                    passphrase_encrypted="x", is_active=True, balance=1_000_000) for u in users])
now = timezone.now()
TrackedTrade.objects.bulk_create([
    TrackedTrade(account=a, trade_id=f"t-{a.pk}", origin="axisor", managed=True, state="running", side="buy",
                 quantity=100, entry_price=Decimal("95000"), margin=10_000, leverage=Decimal("10"),
                 liquidation=Decimal("86500"), maintenance_margin=200, pl=0, last_seen_at=now)
    for a in ExchangeAccount.objects.all()])
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

PUBLISHER = """
import sys, threading, time
from datetime import UTC, datetime
from decimal import Decimal
import django; django.setup()
from lnmarkets.feed import TickerSnapshot
from realtime.market import MarketPublisher

class Feed:
    state = "live"
    def __init__(self):
        self.callbacks = []
    def subscribe(self, callback):
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

feed = Feed()
publisher = MarketPublisher(feed, "simulator", max_rate_hz=float(sys.argv[1]), status_interval=5.0)
publisher.start()
period, price, step = 1.0 / float(sys.argv[1]), Decimal("100000.0"), 0
next_at = time.monotonic()
while True:
    next_at += period
    time.sleep(max(0.0, next_at - time.monotonic()))
    step += 1
    price += Decimal("0.5") if step % 3 else Decimal("-0.5")
    now = datetime.now(UTC)
    tick = TickerSnapshot(last_price=price, index=price, bid=price, ask=price + Decimal("0.5"), buckets=(),
                          funding_rate=None, exchange_time=now, received_at=now, received_monotonic=time.monotonic(),
                          source="stream")
    for callback in list(feed.callbacks):
        callback(tick)
    print(now.timestamp(), flush=True)
"""


# --- the client processes --------------------------------------------------------------------------------------


@dataclass
class SocketStats:
    connect_ms: float | None = None
    error: str | None = None
    sheds: int = 0
    last_seq: int = 0
    gaps: int = 0
    tickers: int = 0
    latencies: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)


def _age_ms(now: float, iso: str | None) -> float | None:
    return None if not iso else (now - datetime.fromisoformat(iso).timestamp()) * 1000


def _take(msg: dict[str, Any], stats: SocketStats, started: float, measuring: asyncio.Event) -> None:
    now = time.time()
    if msg["seq"] != stats.last_seq + 1:
        stats.gaps += 1
    stats.last_seq = msg["seq"]
    if msg["type"] == "snapshot" and stats.connect_ms is None:
        stats.connect_ms = (time.perf_counter() - started) * 1000
    elif msg["type"] == "tick" and measuring.is_set():
        stats.tickers += 1
        age = _age_ms(now, msg["data"]["ticker"].get("received_at"))
        if age is not None:
            stats.latencies.append(age)
            sent = _age_ms(now, msg["ts"])
            if sent is not None:
                stats.server_ms.append(age - sent)


async def _socket(url: str, origin: str, cookie: str, stats: SocketStats, measuring: asyncio.Event) -> None:
    """One dashboard tab, as ``dashboard.js`` behaves: a shed (``error`` ``overloaded`` then close 4429) is waited
    out for its ``retry_after_ms`` plus up to as much again of jitter, then the tab connects again."""
    from websockets.asyncio.client import connect

    started = time.perf_counter()
    while True:
        retry_ms: float | None = None
        stats.last_seq = 0
        try:
            async with connect(
                url,
                additional_headers={"Origin": origin, "Cookie": f"sessionid={cookie}"},
                open_timeout=60,
                compression=None,
                proxy=None,
                max_queue=None,
            ) as ws:
                async for raw in ws:
                    msg: dict[str, Any] = json.loads(raw)
                    if msg["type"] == "error" and msg["data"].get("code") == "overloaded":
                        retry_ms = float(msg["data"].get("retry_after_ms") or 3000)
                        stats.sheds += 1
                        continue
                    _take(msg, stats, started, measuring)
            if retry_ms is None:
                return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a benchmark counts failures instead of stopping
            if retry_ms is None:
                stats.error = type(exc).__name__
                return
        await asyncio.sleep(retry_ms * (1 + random.random()) / 1000)


def _errors(stats: list[SocketStats]) -> dict[str, int]:
    errors: dict[str, int] = {}
    for s in stats:
        if s.error:
            errors[s.error] = errors.get(s.error, 0) + 1
    return errors


async def _until_snapshots(stats: list[SocketStats], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(s.connect_ms is None and s.error is None for s in stats):  # noqa: ASYNC110
        await asyncio.sleep(0.1)  # polled: the sockets have no shared event to wait on


async def _sockets_phase(base: str, cookies: list[str], ramp: float, ready_timeout: float) -> dict[str, Any]:
    """Open the sockets, report READY, measure between the parent's GO and STOP lines, print the figures; then, on
    STORM, close every socket and open them all again at once (as after a server restart) and print that too."""
    url, origin = base.replace("http://", "ws://") + "/ws/dashboard/", base
    measuring = asyncio.Event()
    stats = [SocketStats() for _ in cookies]
    tasks = []
    for i, cookie in enumerate(cookies):
        tasks.append(asyncio.create_task(_socket(url, origin, cookie, stats[i], measuring)))
        await asyncio.sleep(1.0 / ramp if ramp > 0 else 0)
    await _until_snapshots(stats, ready_timeout)
    connected = sum(1 for s in stats if s.connect_ms is not None and s.error is None)
    print(json.dumps({"ready": connected}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # GO
    for s in stats:
        s.gaps = 0
    measuring.set()
    await loop.run_in_executor(None, sys.stdin.readline)  # STOP
    measuring.clear()
    gaps = sum(s.gaps for s in stats)
    print(
        json.dumps(
            {
                "connected": connected,
                "errors": _errors(stats),
                "sheds": sum(s.sheds for s in stats),
                "connect_ms": [s.connect_ms for s in stats if s.connect_ms is not None],
                "latencies": [v for s in stats for v in s.latencies],
                "server_ms": [v for s in stats for v in s.server_ms],
                "tickers": [s.tickers for s in stats if s.connect_ms is not None],
                "gaps": gaps,
            }
        ),
        flush=True,
    )
    while (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "GO":  # a second window (T19), or STORM
        for s in stats:
            s.gaps, s.latencies, s.server_ms = 0, [], []
        measuring.set()
        await loop.run_in_executor(None, sys.stdin.readline)  # STOP
        measuring.clear()
        window = [v for s in stats for v in s.latencies]
        print(json.dumps({"latencies": window, "gaps": sum(s.gaps for s in stats)}), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    storm = [SocketStats() for _ in cookies]
    tasks = [asyncio.create_task(_socket(url, origin, c, storm[i], measuring)) for i, c in enumerate(cookies)]
    await _until_snapshots(storm, STORM_WINDOW_S)
    result = {
        "storm_connect_ms": [s.connect_ms for s in storm if s.connect_ms is not None],
        "storm_errors": _errors(storm),
        "storm_sheds": sum(s.sheds for s in storm),
    }
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def _poll_phase(base: str, cookies: list[str], interval: float, until: float) -> dict[str, Any]:
    """Each user polls the snapshot endpoint every ``interval`` s on a fixed cadence from a random phase, until the
    wall time ``until``: ``dashboard.js`` polls with ``setInterval``, so a slow answer does not delay the next
    request (2,000 users every 5 s offer 400 requests/s whatever the server does). Returns each answer's arrival."""
    import aiohttp

    rtts: list[float] = []
    done: list[float] = []  # wall time of each 200 answer
    seen: list[list[tuple[float, float]]] = []  # per poller: (response arrival, received_at of its price)
    errors: dict[str, int] = {}

    async def one(session: aiohttp.ClientSession, cookie: str, mine: list[tuple[float, float]]) -> None:
        started = time.perf_counter()
        try:
            async with session.get(
                f"{base}/realtime/api/snapshot/", headers={"Cookie": f"sessionid={cookie}"}
            ) as response:
                body = await response.json() if response.status == 200 else None
                now = time.time()
                if body is None:
                    errors[str(response.status)] = errors.get(str(response.status), 0) + 1
                    return
                rtts.append((time.perf_counter() - started) * 1000)
                done.append(now)
                received = body["data"]["market"].get("received_at")
                if received:
                    mine.append((now, datetime.fromisoformat(received).timestamp()))
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    async def poller(session: aiohttp.ClientSession, cookie: str) -> None:
        mine: list[tuple[float, float]] = []
        seen.append(mine)
        requests: list[asyncio.Task[None]] = []
        at = time.time() + random.uniform(0, interval)
        while at < until:
            await asyncio.sleep(max(0.0, at - time.time()))
            requests.append(asyncio.create_task(one(session, cookie, mine)))
            at += interval
        await asyncio.gather(*requests)

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as s:
        await asyncio.gather(*(poller(s, c) for c in cookies))
    return {"rtts": rtts, "done": done, "seen": seen, "errors": errors}


def client_main(argv: list[str]) -> None:
    """``bench/realtime.py --client sockets|poll BASE ...``: one client process; cookies come on stdin's 1st line."""
    mode, base = argv[0], argv[1]
    cookies: list[str] = json.loads(sys.stdin.readline())
    if mode == "sockets":
        result = asyncio.run(_sockets_phase(base, cookies, ramp=float(argv[2]), ready_timeout=float(argv[3])))
    else:
        result = asyncio.run(_poll_phase(base, cookies, interval=float(argv[2]), until=float(argv[3])))
    print(json.dumps(result), flush=True)


# --- the parent: servers, runs, figures ------------------------------------------------------------------------


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


def _cpu_s(pid: int) -> float:
    from bench._stack import cpu_seconds

    return cpu_seconds(pid)


def _redis_pid() -> int | None:
    import redis

    info = redis.Redis.from_url(REDIS).info("server")
    pid = info.get("process_id")
    return int(pid) if pid and Path(f"/proc/{pid}").exists() else None


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS,
        "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789abcdef",
        "FIELD_ENCRYPTION_KEYS": "dGVzdC1rZXktMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
        "SECURE_COOKIES": "false",
        "ALLOWED_HOSTS": HOST,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


@dataclass
class Stack:
    servers: list[subprocess.Popen[str]]
    publisher: subprocess.Popen[str]
    base: str
    listener: socket.socket
    published: int = 0
    ticks: list[float] = field(default_factory=list)

    def count_ticks(self) -> None:
        """Thread: follow the publisher's ticks (it prints each tick's ``received_at`` as a Unix time)."""
        assert self.publisher.stdout is not None
        for line in iter(self.publisher.stdout.readline, ""):
            self.ticks.append(float(line))
            self.published = len(self.ticks)

    def pids(self) -> list[int]:
        return [p.pid for p in self.servers]

    def stop(self) -> None:
        procs: list[subprocess.Popen[str]] = [*self.servers, self.publisher]
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.listener.close()


SERVERS = ("daphne", "uvicorn")


def _server_command(kind: str, fd: int) -> list[str]:
    """One ASGI server process on the shared listening socket ``fd``, with the flags the README runs it with
    (``config.servers``)."""
    from config.servers import APPLICATION, DAPHNE_ARGS, UVICORN_ARGS

    binary = str(Path(sys.executable).with_name(kind))
    if kind == "daphne":
        return [binary, "--fd", str(fd), *DAPHNE_ARGS, APPLICATION]
    return [binary, "--fd", str(fd), *UVICORN_ARGS, "--no-access-log", "--log-level", "warning", APPLICATION]


def _start_stack(servers: int, rate: float, log_dir: Path, kind: str = "daphne") -> Stack:
    env = _env()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    procs = [
        subprocess.Popen(
            _server_command(kind, listener.fileno()),
            cwd=ROOT,
            env=env,
            pass_fds=(listener.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=(log_dir / f"{kind}-{i}.log").open("w"),
            text=True,
        )
        for i in range(servers)
    ]
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(rate)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(log_dir / "publisher.log").open("w"),
        text=True,
    )
    base = f"http://{HOST}:{port}"
    import requests

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.2)
    else:
        raise SystemExit(f"the servers did not answer within 60 s; see {log_dir}")
    stack = Stack(servers=procs, publisher=publisher, base=base, listener=listener)
    threading.Thread(target=stack.count_ticks, daemon=True).start()
    return stack


def _clients(mode: str, base: str, cookies: list[str], procs: int, *args: str) -> list[subprocess.Popen[str]]:
    out = []
    for i in range(procs):
        part = cookies[i::procs]
        proc = subprocess.Popen(
            [sys.executable, __file__, "--client", mode, base, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(part) + "\n")
        proc.stdin.flush()
        out.append(proc)
    return out


def _line(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise SystemExit(f"a client process exited early (code {proc.wait()})")
    result: dict[str, Any] = json.loads(line)
    return result


def _tell(procs: list[subprocess.Popen[str]], word: str) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(word + "\n")
        proc.stdin.flush()


@dataclass
class Run:
    sockets: int
    server: str = "daphne"
    connect_ok_pct: float = 0.0
    connect_p99_ms: float = float("nan")
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    server_p50_ms: float = float("nan")
    server_p99_ms: float = float("nan")
    gaps: int = 0
    delivered_pct: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    sheds: int = 0
    storm_ok_pct: float = 0.0
    storm_p99_ms: float = float("nan")
    storm_sheds: int = 0
    storm_errors: dict[str, int] = field(default_factory=dict)
    poll_5xx: int = 0
    bad_p99_ms: float = float("nan")
    bad_gaps: int = 0
    bad_rss_growth_mb: float = float("nan")
    rss_mb: float = 0.0
    cpu_pct: dict[str, float] = field(default_factory=dict)
    poll_rtt_p50_ms: float = float("nan")
    poll_rtt_p99_ms: float = float("nan")
    poll_p50_ms: float = float("nan")
    poll_p99_ms: float = float("nan")
    poll_requests_per_s: float = 0.0
    poll_errors: dict[str, int] = field(default_factory=dict)
    poll_cpu_pct: float = 0.0


def _poll_latencies(pollers: list[list[list[float]]], ticks: list[float]) -> list[float]:
    """Delivery latency of each tick through polling, per poller: every tick newer than the price of the poller's
    previous response and not newer than this response's is delivered by this response (ms after the tick)."""
    out: list[float] = []
    for responses in pollers:
        previous: float | None = None
        for arrival, newest in sorted(responses, key=lambda r: r[1]):
            if previous is not None:
                out += [(arrival - t) * 1000 for t in ticks if previous + 1e-4 < t <= newest + 1e-4]  # µs rounding
            previous = newest
    return out


def _cpu_of(pids: dict[str, list[int]]) -> dict[str, float]:
    return {name: sum(_cpu_s(p) for p in group) for name, group in pids.items()}


def _bad_client(base: str, cookie: str, read_first: bool) -> socket.socket:
    """A dashboard socket that stops reading (T19): after its first bytes (``read_first``: it saw its handshake and
    snapshot, then the tab froze) or at once (a peer that vanished: nothing is read, as the server sees a client
    whose network went away until TCP gives up). A 4 kB receive buffer so that the server's writes back up soon."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws/dashboard/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {base}\r\n"
        f"Cookie: sessionid={cookie}\r\n\r\n".encode()
    )
    if read_first:
        sock.settimeout(30)
        sock.recv(4096)
    return sock


def _bad_window(
    stack: Stack, cookies: list[str], clients: list[subprocess.Popen[str]], args: argparse.Namespace, run: Run
) -> None:
    """A second window with ``--bad-clients`` sockets that stop reading and as many that vanish: the others' p99
    and the servers' memory, against the first window."""
    rss0 = sum(_rss_mb(p) for p in stack.pids())
    bad = [_bad_client(stack.base, cookies[i % len(cookies)], i % 2 == 0) for i in range(2 * args.bad_clients)]
    time.sleep(1.0)
    _tell(clients, "GO")
    time.sleep(args.bad_seconds)
    _tell(clients, "STOP")
    window = [_line(c) for c in clients]
    run.bad_rss_growth_mb = sum(_rss_mb(p) for p in stack.pids()) - rss0
    run.bad_p99_ms = _pct([v for r in window for v in r["latencies"]], 0.99)
    run.bad_gaps = sum(r["gaps"] for r in window)
    for sock in bad:
        sock.close()


def _measure(stack: Stack, cookies: list[str], args: argparse.Namespace, redis_pid: int | None, run: Run) -> None:
    clients = _clients("sockets", stack.base, cookies, args.client_procs, str(args.ramp / args.client_procs), "120")
    ready = sum(_line(c)["ready"] for c in clients)
    groups = {"server": stack.pids(), "publisher": [stack.publisher.pid], "redis": [redis_pid] if redis_pid else []}
    groups["clients"] = [c.pid for c in clients]
    time.sleep(1.0)
    cpu0, published0, t0 = _cpu_of(groups), stack.published, time.monotonic()
    _tell(clients, "GO")
    time.sleep(args.seconds)
    _tell(clients, "STOP")
    cpu1, published1, elapsed = _cpu_of(groups), stack.published, time.monotonic() - t0
    run.rss_mb = sum(_rss_mb(p) for p in stack.pids())
    results = [_line(c) for c in clients]
    if args.bad_clients:
        _bad_window(stack, cookies, clients, args, run)
    _tell(clients, "STORM")
    storms = [_line(c) for c in clients]
    for c in clients:
        c.wait(timeout=60)
    storm_ms = [v for r in storms for v in r["storm_connect_ms"] if v <= STORM_WINDOW_S * 1000]
    run.storm_ok_pct = 100.0 * len(storm_ms) / len(cookies)
    run.storm_p99_ms = _pct(storm_ms, 0.99)
    run.storm_sheds = sum(r["storm_sheds"] for r in storms)
    for r in storms:
        for k, v in r["storm_errors"].items():
            run.storm_errors[k] = run.storm_errors.get(k, 0) + v
    run.cpu_pct = {k: 100 * (cpu1[k] - cpu0[k]) / elapsed for k in cpu0}
    run.connect_ok_pct = 100.0 * ready / len(cookies)
    connect_ms = [v for r in results for v in r["connect_ms"]]
    latencies = [v for r in results for v in r["latencies"]]
    tickers = [v for r in results for v in r["tickers"]]
    run.connect_p99_ms = _pct(connect_ms, 0.99)
    run.p50_ms, run.p99_ms = _pct(latencies, 0.5), _pct(latencies, 0.99)
    server_ms = [v for r in results for v in r["server_ms"]]
    run.server_p50_ms, run.server_p99_ms = _pct(server_ms, 0.5), _pct(server_ms, 0.99)
    run.gaps = sum(r["gaps"] for r in results)
    for r in results:
        for k, v in r["errors"].items():
            run.errors[k] = run.errors.get(k, 0) + v
    run.sheds = sum(r["sheds"] for r in results)
    expected = max(1, published1 - published0) * len(cookies)
    run.delivered_pct = 100.0 * sum(tickers) / expected

    # The pollers start within one interval (random phases) and keep their cadence past the measured window, which
    # is the ``--seconds`` after that first interval: every poller sends exactly once per interval inside it, so a
    # server that keeps up answers N / interval requests per second there.
    began = time.time() + 1.0
    window = (began + args.poll_interval, began + args.poll_interval + args.seconds)
    pollers = _clients("poll", stack.base, cookies, args.client_procs, str(args.poll_interval), str(window[1] + 1.0))
    time.sleep(max(0.0, window[0] - time.time()))
    cpu0 = _cpu_of({"server": stack.pids()})
    time.sleep(max(0.0, window[1] - time.time()))
    run.poll_cpu_pct = 100 * (_cpu_of({"server": stack.pids()})["server"] - cpu0["server"]) / args.seconds
    polled = [_line(c) for c in pollers]
    for c in pollers:
        c.wait(timeout=60)
    rtts = [v for r in polled for v in r["rtts"]]
    ages = _poll_latencies([seen for r in polled for seen in r["seen"]], stack.ticks)
    run.poll_rtt_p50_ms, run.poll_rtt_p99_ms = _pct(rtts, 0.5), _pct(rtts, 0.99)
    run.poll_p50_ms, run.poll_p99_ms = _pct(ages, 0.5), _pct(ages, 0.99)
    run.poll_requests_per_s = sum(1 for r in polled for t in r["done"] if window[0] <= t < window[1]) / args.seconds
    for r in polled:
        for k, v in r["errors"].items():
            run.poll_errors[k] = run.poll_errors.get(k, 0) + v
    run.poll_5xx = sum(v for k, v in run.poll_errors.items() if k.startswith("5"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sockets", default="200,2000", help="comma-separated socket counts, one run each")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window of each phase")
    parser.add_argument("--servers", type=int, default=os.cpu_count() or 2, help="server processes")
    parser.add_argument(
        "--server",
        default="uvicorn,daphne",
        help="uvicorn (production), daphne, or both side by side (T18, the default); RESULT is for the first",
    )
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--bad-clients", type=int, default=20, help="T19: that many stop reading, as many vanish")
    parser.add_argument("--bad-seconds", type=float, default=30.0, help="the window with the bad clients")
    parser.add_argument("--ramp", type=float, default=150.0, help="sockets opened per second (all client procs)")
    parser.add_argument("--rate", type=float, default=2.0, help="ticks per second")
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sockets.split(",")]
    began = time.monotonic()

    import redis

    redis.Redis.from_url(REDIS).flushdb()
    recreate_database(DB_NAME)
    env = _env()
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300)
    seeded = subprocess.run(
        [python, "-c", SEED, str(max(sizes))], cwd=ROOT, env=env, check=True, timeout=600, capture_output=True
    )
    cookies: list[str] = json.loads(seeded.stdout)
    redis_pid = _redis_pid()
    log_dir = Path(os.environ.get("BENCH_LOG_DIR", ROOT / "var" / "bench-realtime"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"{args.servers} server processes, {args.client_procs} client processes, {args.rate:g} ticks/s, "
        f"ramp {args.ramp:g} sockets/s, {args.seconds:g} s windows, {os.cpu_count()} CPUs; logs in {log_dir}"
    )
    runs: list[Run] = []
    kinds = [k for k in args.server.split(",") if k]
    if any(k not in SERVERS for k in kinds):
        raise SystemExit(f"--server takes {', '.join(SERVERS)}")
    for kind, size in [(k, n) for k in kinds for n in sizes]:
        # Every run starts cold, as after a deploy: the cache (sessions read through, snapshots' user parts) is
        # emptied, or the second server of a side-by-side run would find the first one's snapshots cached.
        redis.Redis.from_url(REDIS).flushdb()
        stack = _start_stack(args.servers, args.rate, log_dir, kind)
        try:
            run = Run(sockets=size, server=kind)
            _measure(stack, cookies[:size], args, redis_pid, run)
            runs.append(run)
        finally:
            stack.stop()
        print(f"--- {kind} ---", flush=True)
        cpu = " ".join(f"{k} {v:.0f}%" for k, v in run.cpu_pct.items())
        if args.bad_clients:
            change = 100 * (run.bad_p99_ms - run.p99_ms) / run.p99_ms
            print(
                f"{size:5d} sockets + {args.bad_clients} that stop reading + {args.bad_clients} that vanish, "
                f"{args.bad_seconds:g} s: the others' tick p99 {run.bad_p99_ms:.0f} ms ({change:+.0f} % against "
                f"{run.p99_ms:.0f} ms without them), gaps {run.bad_gaps}, server RSS {run.bad_rss_growth_mb:+.0f} MB",
                flush=True,
            )
        print(
            f"{size:5d} sockets, reconnect storm (all at once): {run.storm_ok_pct:.1f} % had their snapshot within "
            f"{STORM_WINDOW_S:.0f} s (p99 {run.storm_p99_ms:.0f} ms), deliberate sheds {run.storm_sheds}, "
            f"errors {run.storm_errors or 'none'}; sheds during the ramp {run.sheds}",
            flush=True,
        )
        print(
            f"{size:5d} sockets: connected {run.connect_ok_pct:.1f} % (snapshot p99 {run.connect_p99_ms:.0f} ms), "
            f"tick latency p50 {run.p50_ms:.0f} / p99 {run.p99_ms:.0f} ms (until the server's send: p50 "
            f"{run.server_p50_ms:.0f} / p99 {run.server_p99_ms:.0f} ms), gaps {run.gaps}, "
            f"delivered {run.delivered_pct:.1f} %, errors {run.errors or 'none'}; "
            f"server RSS {run.rss_mb:.0f} MB; CPU {cpu}",
            flush=True,
        )
        print(
            f"{size:5d} pollers: {run.poll_requests_per_s:.0f} req/s, round trip p50 {run.poll_rtt_p50_ms:.0f} / "
            f"p99 {run.poll_rtt_p99_ms:.0f} ms, update latency p50 {run.poll_p50_ms:.0f} / p99 {run.poll_p99_ms:.0f}"
            f" ms, errors {run.poll_errors or 'none'}; server CPU {run.poll_cpu_pct:.0f}%",
            flush=True,
        )
    if len(kinds) > 1:
        print("side by side (per server process; CPU in % of one core while the sockets were measured):")
        for run in runs:
            print(
                f"  {run.server:8s} {run.sockets:5d} sockets: connected {run.connect_ok_pct:.1f} %, snapshot p99 "
                f"{run.connect_p99_ms:.0f} ms, tick p50 {run.p50_ms:.0f} / p99 {run.p99_ms:.0f} ms, gaps {run.gaps}, "
                f"storm {run.storm_ok_pct:.1f} %, CPU {run.cpu_pct.get('server', 0) / args.servers:.0f} %, RSS "
                f"{run.rss_mb / args.servers:.0f} MB, polls {run.poll_requests_per_s:.0f} req/s",
                flush=True,
            )
    last = [r for r in runs if r.server == kinds[0]][-1]
    print(f"took {time.monotonic() - began:.0f} s; load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    print(
        f"RESULT sockets={last.sockets} connect_ok_pct={last.connect_ok_pct:.1f} "
        f"snapshot_p99_ms={last.connect_p99_ms:.0f} p99_ms={last.p99_ms:.0f} gaps={last.gaps} "
        f"storm_ok_pct={last.storm_ok_pct:.1f} poll_rps={last.poll_requests_per_s:.0f} poll_5xx={last.poll_5xx}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
    else:
        main()
