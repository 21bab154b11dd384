"""Benchmark of the LN Markets simulator: signed REST requests/s and Stream pushes/s on this machine.

Starts ``python -m lnmarkets.simulator`` on 127.0.0.1 in a separate process (rate limits off, frozen price), then:

1. REST: several aiohttp workers over one pooled connector send signed ``GET /v3/futures/isolated/trades/running``
   requests (a fresh timestamp and signature each) for a few seconds; counts 200 answers per second.
2. Stream: N WebSocket clients subscribe to the four price topics while the control API pumps ticks
   (``POST /_sim/step``); counts subscription messages received per second.

The last line is ``RESULT rest_rps=<n> stream_msgs_per_s=<n>``. Bounded (< 60 s), loopback only.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lnmarkets.signing import rest_signature  # noqa: E402
from lnmarkets.simulator.client import ControlClient  # noqa: E402

HOST = "127.0.0.1"
TOKEN = "bench-token"  # noqa: S105 - a loopback-only control token for this run
REST_SECONDS = 5.0
REST_WORKERS = 32
STREAM_SECONDS = 5.0
STREAM_SOCKETS = 50
STEPS_PER_CALL = 50
TOPICS = [f"futures/inverse/btc_usd/{name}" for name in ("ticker", "lastPrice", "index", "buckets")]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "lnmarkets.simulator", "--host", HOST, "--port", str(port), "--seed", "1"]
    command += ["--control-token", TOKEN, "--no-rate-limits", "--no-auto-tick"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("simulator did not start")


async def rest_bench(base: str, key: str, secret: str, passphrase: str) -> float:
    path = "/v3/futures/isolated/trades/running"
    url = base + path
    count = 0
    errors = 0
    stop_at = 0.0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal count, errors
        while time.monotonic() < stop_at:
            ts = str(int(time.time() * 1000))
            headers = {
                "lnm-access-key": key,
                "lnm-access-passphrase": passphrase,
                "lnm-access-timestamp": ts,
                "lnm-access-signature": rest_signature(secret, ts, "get", path),
            }
            async with session.get(url, headers=headers) as response:
                await response.read()
                if response.status == 200:
                    count += 1
                else:
                    errors += 1

    connector = aiohttp.TCPConnector(limit=REST_WORKERS)
    async with aiohttp.ClientSession(connector=connector) as session:
        stop_at = time.monotonic() + 0.5  # warm-up
        await asyncio.gather(*(worker(session) for _ in range(REST_WORKERS)))
        count = errors = 0
        start = time.monotonic()
        stop_at = start + REST_SECONDS
        await asyncio.gather(*(worker(session) for _ in range(REST_WORKERS)))
        elapsed = time.monotonic() - start
    if errors:
        print(f"rest: {errors} non-200 answers")
    return count / elapsed


async def stream_bench(base: str, stream_url: str) -> float:
    received = 0
    counting = False
    done = asyncio.Event()

    async def reader(ws: aiohttp.ClientWebSocketResponse) -> None:
        nonlocal received
        async for message in ws:
            if counting and message.type == aiohttp.WSMsgType.TEXT:
                received += 1
            if done.is_set():
                break

    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(stream_url, max_msg_size=0) for _ in range(STREAM_SOCKETS)]
        for ws in sockets:
            await ws.send_json({"jsonrpc": "2.0", "id": 1, "method": "subscribe", "params": {"topics": TOPICS}})
            await ws.receive()
        readers = [asyncio.create_task(reader(ws)) for ws in sockets]
        headers = {"Authorization": f"Bearer {TOKEN}"}

        async def pump(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                async with session.post(base + "/_sim/step", json={"n": STEPS_PER_CALL}, headers=headers) as reply:
                    await reply.read()

        await pump(0.5)  # warm-up
        counting = True
        start = time.monotonic()
        await pump(STREAM_SECONDS)
        await asyncio.sleep(0.2)  # let the queues drain into the count
        elapsed = time.monotonic() - start
        counting = False
        done.set()
        for ws in sockets:
            await ws.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    return received / elapsed


def main() -> None:
    port = free_port()
    base = f"http://{HOST}:{port}"
    process = start_server(port)
    try:
        control = ControlClient(base, TOKEN)
        account = control.create_account(balance=10**9)
        control.step(1)
        rest_rps = asyncio.run(rest_bench(base, account.key, account.secret, account.passphrase))
        seen = control.request_log_full(account.key)["statuses"]
        print(f"rest: {rest_rps:.0f} signed requests/s ({REST_WORKERS} workers, {REST_SECONDS:.0f} s)")
        print(f"rest: the server logged {len(seen)} requests with this key, {seen.count(200)} answered 200")
        stream_rate = asyncio.run(stream_bench(base, f"ws://{HOST}:{port}/v1"))
        print(f"stream: {stream_rate:.0f} messages/s ({STREAM_SOCKETS} sockets x {len(TOPICS)} topics)")
        print(f"stream: the server pushed {control.state()['counters']['streamPushes']} messages in total")
        control.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
    print(f"cpus={os.cpu_count()}")
    print(f"RESULT rest_rps={int(rest_rps)} stream_msgs_per_s={int(stream_rate)}")


if __name__ == "__main__":
    main()
