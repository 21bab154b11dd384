"""Real processes for the reliability battery: a Redis of its own (so restarting it disturbs nothing else), the LN
Markets simulator, Celery workers, Celery beats and ``run_automations``, each its own process on the test's
PostgreSQL database. The driver (the test) talks to them only as a user and the exchange would: rows in the
database, tasks on the broker, requests to the simulator, signals to the processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from celery import Celery

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.ratelimit import InProcessRateLimiter
from lnmarkets.simulator.client import ControlClient, SimAccount

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "faults-control-token"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], T], timeout: float, interval: float = 0.1, what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:.0f} s")
        time.sleep(interval)


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


@dataclass
class Timing:
    """The exchange's signature window and Axisor's send window (seconds): they set every attempt's fence."""

    window_s: int
    send_window_s: float
    http_timeout_s: float = 2.0

    @property
    def fence_s(self) -> float:
        return self.send_window_s + 2 * self.window_s


@dataclass
class Stack:
    """The processes of one battery run. ``start_*`` return the process; ``logs`` keeps each one's output."""

    tmp: Path
    database_url: str
    timing: Timing
    redis_port: int = field(default_factory=free_port)
    sim_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _celery: Celery | None = None

    # --- environment ------------------------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def sim_url(self) -> str:
        return f"http://127.0.0.1:{self.sim_port}"

    def env(self, **extra: object) -> dict[str, str]:
        base = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "DB_POOL_MAX_SIZE": "4",
            "LNMARKETS_SIMULATOR_REST_URL": f"{self.sim_url}/v3",
            "LNMARKETS_SIMULATOR_STREAM_URL": f"ws://127.0.0.1:{self.sim_port}/v1",
            "LNMARKETS_HTTP_TIMEOUT": str(self.timing.http_timeout_s),
            "LNMARKETS_TIMESTAMP_WINDOW_SECONDS": str(self.timing.window_s),
            "ORDER_SEND_WINDOW_SECONDS": str(self.timing.send_window_s),
            "INTENT_SWEEP_SECONDS": "5",
            "RECONCILE_SECONDS": "10",
            "AUTOMATION_SWEEP_SECONDS": "10",
            "PYTHONUNBUFFERED": "1",
        }
        base.update({k: str(v) for k, v in extra.items()})
        return base

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.tmp / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- Redis ----------------------------------------------------------------------------------------------------

    def start_redis(self) -> None:
        self._spawn(
            "redis",
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "", "--appendonly", "no"],
            dict(os.environ),
        )
        wait_for(self._redis_up, 20, what="redis up")

    def _redis_up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop_redis(self) -> None:
        self.stop("redis", signal.SIGKILL)

    # --- the exchange -------------------------------------------------------------------------------------------

    def start_simulator(self) -> ControlClient:
        argv = [sys.executable, "manage.py", "lnm_simulator", "--host", "127.0.0.1", "--port", str(self.sim_port)]
        argv += ["--control-token", TOKEN, "--no-auto-tick", "--no-rate-limits", "--seed", "7"]
        argv += ["--timestamp-window-ms", str(self.timing.window_s * 1000)]
        self._spawn("simulator", argv, self.env())
        control = ControlClient(self.sim_url, TOKEN)
        wait_for(lambda: _answers(control), 60, what="simulator up")
        return control

    def exchange_client(self, account: SimAccount) -> RestClient:
        """A trader's own REST client on ``account`` (the "by hand" side of the tests)."""
        creds = Credentials(key=account.key, secret=account.secret, passphrase=account.passphrase)
        return RestClient(f"{self.sim_url}/v3", static_provider(creds), rate_limiter=InProcessRateLimiter(), timeout=5)

    # --- Celery ---------------------------------------------------------------------------------------------------

    def start_worker(self, name: str = "worker", concurrency: int = 2, **extra: object) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "prefork", "-c", str(concurrency)]
        argv += ["-Q", "protective,celery", "-l", "info", "--without-heartbeat", "--without-mingle", "--without-gossip"]
        argv += ["-n", f"{name}-{os.getpid()}@%h"]
        proc = self._spawn(name, argv, self.env(**extra))
        wait_for(lambda: len(children(proc.pid)) >= concurrency, 60, what=f"{name} ready")
        wait_for(lambda: "ready." in self.log(name), 60, what=f"{name} consuming")
        return proc

    def start_beat(self, name: str = "beat", **extra: object) -> subprocess.Popen[bytes]:
        schedule = self.tmp / f"{name}-schedule"
        argv = [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "info", "-s", str(schedule)]
        return self._spawn(name, argv, self.env(**extra))

    def start_automations(self, **extra: object) -> subprocess.Popen[bytes]:
        proc = self._spawn(
            "automations", [sys.executable, "manage.py", "run_automations", "--network", "simulator"], self.env(**extra)
        )
        wait_for(lambda: "start-up reconciliation" in self.log("automations"), 90, what="run_automations started")
        return proc

    @property
    def celery(self) -> Celery:
        """A producer on this stack's broker (the driver's own Celery app points at the suite's Redis)."""
        if self._celery is None:
            # not the current app: the suite's own tasks (``task.delay()``) must keep going to the suite's broker
            self._celery = Celery("faults-driver", broker=self.redis_url, set_as_current=False)
            self._celery.conf.broker_connection_retry_on_startup = True
        return self._celery

    def enqueue(self, intent_id: int, *, protective: bool, countdown: float = 0) -> None:
        self.celery.send_task(
            "automations.tasks.order_intent_execute_task",
            args=(intent_id,),
            queue="protective" if protective else "celery",
            countdown=countdown,
        )

    def enqueue_batch(self, intent_ids: list[int], *, protective: bool) -> None:
        """Several intents in one message, as the tick runner queues them (``order_intents_enqueue``)."""
        self.celery.send_task(
            "automations.tasks.order_intents_execute_task",
            args=(intent_ids, protective),
            queue="protective" if protective else "celery",
        )

    def purge(self) -> None:
        with self.celery.connection_for_write() as conn:
            for queue in ("protective", "celery"):
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]

    # --- processes ----------------------------------------------------------------------------------------------

    def kill_children(self, name: str, sig: int = signal.SIGKILL) -> int:
        killed = 0
        for child in children(self.procs[name].pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, sig)
                killed += 1
        return killed

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for child in children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in [n for n in self.procs if n not in ("redis", "simulator")]:
            self.stop(name)
        for name in ("simulator", "redis"):
            self.stop(name)
        if self._celery is not None:
            self._celery.close()


def _answers(control: ControlClient) -> bool:
    try:
        control.state()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def stack(tmp: Path, database_url: str, timing: Timing) -> Iterator[Stack]:
    run = Stack(tmp=tmp, database_url=database_url, timing=timing)
    try:
        run.start_redis()
        yield run
    finally:
        run.stop_all()


def money(value: Any) -> Decimal:  # noqa: ANN401 - JSON numbers of the control API
    return Decimal(str(value))
