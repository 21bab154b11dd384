"""A real ``celery worker`` process on the test database, the test simulator and the suite's Redis, for the end to
end tests of the PostgreSQL + Redis pass (tests/automations/test_worker.py, tests/notifications/test_worker_e2e.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def wait_for(predicate: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail("condition not met in time")


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


@contextmanager
def celery_worker(
    sim: Any,  # noqa: ANN401 - the simulator fixture (tests.fixtures_simulator)
    tmp_path: Path,
    *,
    queues: str = "protective,celery",
    name: str = "test",
    **env_extra: str,
) -> Iterator[subprocess.Popen[bytes]]:
    """`celery worker` (prefork, one child) on ``queues``, purged first; its log is printed when it stops (pytest
    shows it for a failing test)."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "LNMARKETS_SIMULATOR_REST_URL": sim.rest_url,
        "LNMARKETS_SIMULATOR_STREAM_URL": sim.stream_url,
        "PYTHONUNBUFFERED": "1",
        **env_extra,
    }
    celery = [sys.executable, "-m", "celery", "-A", "config"]
    subprocess.run(
        [*celery, "purge", "-f", "-Q", queues], cwd=ROOT, env=env, check=True, capture_output=True, timeout=60
    )
    log_path = tmp_path / f"{name}-worker.log"
    argv = [*celery, "worker", "-P", "prefork", "-c", "1", "-Q", queues, "-l", "info"]
    argv += ["--without-heartbeat", "--without-mingle", "--without-gossip", "-n", f"{name}-{os.getpid()}@%h"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: children(proc.pid), timeout=60)  # ready when its child process exists
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    sys.stderr.write(log_path.read_text()[-6000:])
