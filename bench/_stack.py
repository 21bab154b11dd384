"""Start-up shared by the benches that run the production stack on loopback: the environment of a bench database
and Redis, the simulator in its own process, a real Celery worker process, and small waiting helpers.

Each bench still sets up its own accounts and measures its own figures; this module only starts and stops
processes (``stop``) so that the benches do not each carry the same start-up code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOKEN = "bench-token"  # noqa: S105 - the local simulator's control token
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait(predicate: Callable[[], T | None], timeout: float, what: str, poll: float = 0.05) -> T:
    """The first truthy value of ``predicate`` within ``timeout`` seconds; exits the bench when it never comes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise SystemExit(f"timed out waiting for {what}")


def bench_environ(database_url: str, redis_url: str, sim_port: int, **extra: str) -> None:
    """Point this process (and the processes it starts) at the bench database, Redis and simulator."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": "bench-secret-key-" + "x" * 40,
            "FIELD_ENCRYPTION_KEYS": "YmVuY2gta2V5LTAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
            "LNMARKETS_SIMULATOR_REST_URL": f"http://{HOST}:{sim_port}/v3",
            "LNMARKETS_SIMULATOR_STREAM_URL": f"ws://{HOST}:{sim_port}/v1",
            "AUTOMATION_SWEEP_SECONDS": "3600",
            "SECURE_COOKIES": "false",  # plain http on loopback: no HTTPS redirect, no proxy header needed
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )


def start_simulator(sim_port: int) -> subprocess.Popen[bytes]:
    """The simulator on ``sim_port``: no rate limits, no automatic ticks (the bench sets the price)."""
    argv = [sys.executable, "-m", "lnmarkets.simulator", "--host", HOST, "--port", str(sim_port), "--seed", "1"]
    argv += ["--control-token", TOKEN, "--no-rate-limits", "--no-auto-tick"]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _ping(control: Any) -> bool:  # noqa: ANN401 - lnmarkets.simulator.client.ControlClient (imported after setup)
    try:
        control.state()
    except Exception:  # noqa: BLE001 - the server is still starting
        return False
    return True


def wait_for_simulator(control: Any) -> None:  # noqa: ANN401 - a ControlClient
    wait(lambda: _ping(control), 20, "the simulator")


def start_worker(queues: str, concurrency: int | str, pool: str = "prefork") -> subprocess.Popen[bytes]:
    """A real ``celery worker`` (``pool``: prefork, as deployed) on ``queues``, after purging them (a previous
    run's leftovers)."""
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    subprocess.run([*celery, "purge", "-f", "-Q", queues], cwd=ROOT, capture_output=True, check=False)
    argv = [*celery, "worker", "-P", pool, "-c", str(concurrency), "-Q", queues, "-l", "warning"]
    argv += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_children(pid: int) -> list[int]:
    """``pid`` and its direct children (a prefork worker's pool)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *(int(c) for c in children)]


def pss_mb(pid: int) -> float:
    """Proportional set size of one process in MB (shared pages split between the processes sharing them, so a
    prefork pool's children add up to what they really cost); 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0
    return 0.0


def pids_named(name: str) -> list[int]:
    """Every process whose command name is ``name`` (e.g. all PostgreSQL backends)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def stop(*procs: subprocess.Popen[bytes]) -> None:
    """SIGTERM each process, then SIGKILL any that has not ended within 20 s."""
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
