"""Three processes hammering one key never exceed 5 requests/s at the exchange (counted by the simulator)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from lnmarkets.simulator import RunningSimulator, SimAccount
from tests.lnmarkets.gateway.redis_util import max_in_window, redis_url_or_skip

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow  # a fault scenario that waits on real clocks: the PostgreSQL pass runs it
def test_three_processes_share_the_5_per_second_budget(sim: RunningSimulator, sim_account: SimAccount) -> None:
    redis_url = redis_url_or_skip()
    sim.control.set_rate_limits(True, auth_rps=5, public_rps=1)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HAMMER_KEY": sim_account.key,
        "HAMMER_SECRET": sim_account.secret,
        "HAMMER_PASSPHRASE": sim_account.passphrase,
        "HAMMER_REDIS": redis_url,
        "HAMMER_PREFIX": f"test:{uuid.uuid4().hex}:",
        "HAMMER_REST": sim.rest_url,
        "HAMMER_START": str(time.time() + 2.0),
        "HAMMER_SECONDS": "4",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.lnmarkets.gateway.hammer_worker"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=30) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err[-2000:] for _, err in outputs]
    ok_total = sum(int(out.split()[0]) for out, _ in outputs)

    log = sim.control.request_log_full(sim_account.key)
    times, statuses = log["times"], log["statuses"]
    assert 429 not in statuses
    assert len(times) == ok_total
    assert max_in_window([float(t) for t in times], 1.0) <= 5
    assert ok_total >= 14  # ~4.5/s for 4 s: the budget was used, not starved
    assert all(int(out.split()[0]) > 0 for out, _ in outputs)  # every process got a share
