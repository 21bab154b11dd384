"""The shared limiter: at most N per window, priority reserve, timeouts, pauses; in-process and over Redis."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from lnmarkets.credentials import key_fingerprint
from lnmarkets.exceptions import RateLimitedError
from lnmarkets.ratelimit import (
    BucketLimit,
    InProcessRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    auth_bucket,
    default_rate_limiter,
)
from tests.lnmarkets.gateway.redis_util import max_in_window, redis_url_or_skip

FAST = {"auth": BucketLimit(5, 0.5), "public": BucketLimit(1, 0.5)}


@pytest.fixture(params=["inprocess", "redis"])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "inprocess":
        return InProcessRateLimiter(FAST, window_guard=0.0)
    url = redis_url_or_skip()
    return RedisRateLimiter(url, limits=FAST, window_guard=0.0, prefix=f"test:{uuid.uuid4().hex}:")


def test_never_more_than_limit_in_any_window_under_threads(limiter: RateLimiter) -> None:
    grants: list[float] = []
    lock = threading.Lock()

    def hammer() -> None:
        end = time.monotonic() + 1.6
        while time.monotonic() < end:
            limiter.acquire("auth:abc", priority="high", timeout=5)
            with lock:
                grants.append(time.monotonic())

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max_in_window(grants, 0.5 - 0.01) <= 5
    assert len(grants) >= 15  # and it did let traffic through at about the limit


def test_protective_calls_keep_a_reserved_slot(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.acquire("auth:p", priority="low", timeout=0)
    with pytest.raises(RateLimitedError):
        limiter.acquire("auth:p", priority="low", timeout=0)
    limiter.acquire("auth:p", priority="normal", timeout=0)
    with pytest.raises(RateLimitedError):
        limiter.acquire("auth:p", priority="normal", timeout=0)
    limiter.acquire("auth:p", priority="high", timeout=0)  # the reserved slot
    with pytest.raises(RateLimitedError) as info:
        limiter.acquire("auth:p", priority="high", timeout=0)
    assert 0 < info.value.retry_after <= 0.5


def test_public_bucket_is_one_per_window_without_reserve(limiter: RateLimiter) -> None:
    limiter.acquire("public:host", priority="low", timeout=0)
    started = time.monotonic()
    limiter.acquire("public:host", priority="low", timeout=2)
    assert 0.4 <= time.monotonic() - started <= 1.0


def test_pause_blocks_the_bucket(limiter: RateLimiter) -> None:
    limiter.pause("auth:z", 0.4)
    with pytest.raises(RateLimitedError):
        limiter.acquire("auth:z", priority="high", timeout=0.1)
    started = time.monotonic()
    limiter.acquire("auth:z", priority="high", timeout=2)
    assert time.monotonic() - started <= 0.5


def test_bucket_names_never_contain_the_key() -> None:
    key = "CANARYKEY-0123456789"
    bucket = auth_bucket(key_fingerprint(key))
    assert key not in bucket
    assert len(bucket) == len("auth:") + 16


def test_redis_keys_hold_no_raw_key() -> None:
    url = redis_url_or_skip()
    prefix = f"test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(url, prefix=prefix)
    key = "CANARYKEY-abcdef0123"
    limiter.acquire(auth_bucket(key_fingerprint(key)), timeout=1)
    names = [name.decode() for name in limiter._redis.scan_iter(f"{prefix}*")]  # noqa: SLF001
    assert names
    assert all(key not in name for name in names)


def test_redis_outage_falls_back_to_the_process_limiter() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", limits=FAST, window_guard=0.0, socket_timeout=0.2)
    for _ in range(5):
        limiter.acquire("auth:x", priority="high", timeout=1)
    with pytest.raises(RateLimitedError):
        limiter.acquire("auth:x", priority="high", timeout=0)


def test_default_limiter_is_in_process_without_redis_url(settings) -> None:
    import lnmarkets.ratelimit as module

    settings.REDIS_URL = ""
    module._default = None  # noqa: SLF001
    assert isinstance(default_rate_limiter(), InProcessRateLimiter)
    assert default_rate_limiter() is default_rate_limiter()
    module._default = None  # noqa: SLF001
