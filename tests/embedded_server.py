"""Start `make run`'s stack for end-to-end tests: ``manage.py migrate`` then ``manage.py run_embedded`` on free ports,
with a fresh var directory (SQLite file, generated secrets, demo login, simulator state)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
CONTROL_TOKEN = "embedded-test-token"
# Production variables are dropped: the embedded default is what `make run` starts.
_DROPPED = {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "SIMULATOR_CONTROL_TOKEN"}


@dataclass(frozen=True)
class EmbeddedServer:
    url: str
    demo_password: str
    sim_url: str
    control_token: str
    log: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one ``manage.py`` command in the repository with ``env``; raise with its output when it fails."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise AssertionError(f"manage.py {args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


@contextmanager
def embedded_server(var_dir: Path, *, prepare: Sequence[Sequence[str]] = ()) -> Iterator[EmbeddedServer]:
    """Migrate a fresh SQLite file in ``var_dir``, run each ``prepare`` manage.py command (e.g. create a user in the
    same database), then start ``manage.py run_embedded`` as `make run` does and stop it on exit."""
    port, sim_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "AXISOR_VAR_DIR": str(var_dir),
            "SIMULATOR_PORT": str(sim_port),
            "SIMULATOR_CONTROL_TOKEN": CONTROL_TOKEN,
        }
    )
    manage(env, "migrate", "--noinput")
    for command in prepare:
        manage(env, *command)
    log_path = var_dir / "server.log"
    with log_path.open("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_embedded", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(proc, url, log_path)
            match = re.search(r"password '([^']+)'", log_path.read_text())
            assert match, "the demo login is printed on start"
            yield EmbeddedServer(
                url=url,
                demo_password=match.group(1),
                sim_url=f"http://127.0.0.1:{sim_port}",
                control_token=CONTROL_TOKEN,
                log=log_path,
            )
        finally:
            stop_process(proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float = 60) -> None:
    """Until ``url``/healthz answers 200; fails with the server's log if it exits or does not answer in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()
        try:
            if requests.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.3)
    pytest.fail(f"the embedded server did not answer within {timeout:.0f} s")
