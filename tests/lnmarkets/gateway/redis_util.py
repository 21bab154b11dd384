"""The Redis used by the limiter tests: REDIS_URL, else redis://127.0.0.1:6379/15 if it answers, else skip."""

from __future__ import annotations

import os

import pytest
import redis
from redis.exceptions import RedisError

FALLBACK_URL = "redis://127.0.0.1:6379/15"


def redis_url_or_skip() -> str:
    url = os.environ.get("REDIS_URL") or FALLBACK_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5).ping()
    except RedisError as exc:
        pytest.skip(f"no Redis at {url} ({type(exc).__name__}); the shared limiter cannot be tested")
    return url


def max_in_window(times: list[float], window: float) -> int:
    """The largest number of events inside any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
