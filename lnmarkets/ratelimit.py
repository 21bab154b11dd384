"""Client-side rate limiting shared by every process that uses one API key (docs/protocol.md §8.1).

Limits: authenticated calls 5 per second per API key (bucket ``auth:<sha256(key)[:16]>``), public calls 1 per second
per host (bucket ``public:<host>``). ``RedisRateLimiter`` shares the budget between the web process and every Celery
worker; ``InProcessRateLimiter`` is for the embedded single-process mode and tests.

Algorithm: a *sliding-window log* rather than a classic token bucket. A token bucket of capacity ``b`` and rate ``r``
lets ``b + r`` requests through in some 1-second windows; the log guarantees "at most ``limit`` requests in any
window", which is the only thing that keeps us under the exchange's limit whatever algorithm it uses. The window is
lengthened by a small guard (``window_guard``, 0.1 s) because requests granted here reach the exchange with a few
milliseconds of jitter. In Redis the log is a sorted set updated by one Lua script that reads the clock from Redis
``TIME`` (one clock for all processes), so check-and-add is atomic.

Priority (product rule: protective work first): a caller may take a slot only if at least ``reserve[priority]`` slots
stay free afterwards. Defaults: ``high`` (closes, add-margin, stop-loss changes) reserves 0, ``normal`` (entries,
reconciliation) 1, ``low`` (dashboard refreshes) 2. A burst of low/normal traffic therefore always leaves a slot for
a protective call. Buckets whose limit is 1 have no reserve.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

import redis
from redis.exceptions import RedisError

from lnmarkets.exceptions import RateLimitedError

logger = logging.getLogger(__name__)

Priority = Literal["high", "normal", "low"]


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """At most ``limit`` acquisitions per ``window`` seconds."""

    limit: int
    window: float = 1.0


DEFAULT_LIMITS: dict[str, BucketLimit] = {"auth": BucketLimit(5, 1.0), "public": BucketLimit(1, 1.0)}
DEFAULT_RESERVE: dict[str, int] = {"high": 0, "normal": 1, "low": 2}
WINDOW_GUARD = 0.1


class RateLimiter(Protocol):
    """What the REST client needs from a limiter."""

    def acquire(self, bucket: str, *, priority: Priority = "normal", timeout: float = 10.0) -> None:
        """Block until a slot in ``bucket`` is granted; ``RateLimitedError`` if that would take over ``timeout``."""
        ...

    def pause(self, bucket: str, seconds: float) -> None:
        """Grant nothing in ``bucket`` for ``seconds`` (the exchange answered 429 with ``Retry-After``)."""
        ...


class _Config:
    """Shared limit/reserve lookup of both limiters."""

    def __init__(
        self,
        limits: dict[str, BucketLimit] | None,
        reserve: dict[str, int] | None,
        window_guard: float,
    ) -> None:
        self.limits = dict(DEFAULT_LIMITS if limits is None else limits)
        self.reserve = dict(DEFAULT_RESERVE if reserve is None else reserve)
        self.window_guard = window_guard

    def limit_for(self, bucket: str) -> BucketLimit:
        kind = bucket.split(":", 1)[0]
        try:
            return self.limits[kind]
        except KeyError:
            raise ValueError(f"no rate limit configured for bucket kind {kind!r}") from None

    def allowed(self, bucket: str, priority: Priority) -> tuple[int, float]:
        """(slots this priority may fill, window seconds incl. guard)."""
        lim = self.limit_for(bucket)
        reserve = min(self.reserve.get(priority, 0), lim.limit - 1)
        return lim.limit - reserve, lim.window + self.window_guard


def _give_up(bucket: str, wait: float) -> RateLimitedError:
    return RateLimitedError(f"local rate limit: no slot in {bucket} in time", retry_after=wait, code="local_rate_limit")


class InProcessRateLimiter:
    """Thread-safe sliding-window limiter for one process."""

    def __init__(
        self,
        limits: dict[str, BucketLimit] | None = None,
        *,
        reserve: dict[str, int] | None = None,
        window_guard: float = WINDOW_GUARD,
    ) -> None:
        self._config = _Config(limits, reserve, window_guard)
        self._lock = threading.Lock()
        self._logs: dict[str, deque[float]] = {}
        self._paused_until: dict[str, float] = {}

    def _try(self, bucket: str, priority: Priority) -> float:
        allowed, window = self._config.allowed(bucket, priority)
        now = time.monotonic()
        with self._lock:
            paused = self._paused_until.get(bucket, 0.0)
            if paused > now:
                return paused - now
            log = self._logs.setdefault(bucket, deque())
            while log and log[0] <= now - window:
                log.popleft()
            if len(log) < allowed:
                log.append(now)
                return 0.0
            return max(log[len(log) - allowed] + window - now, 0.001)

    def acquire(self, bucket: str, *, priority: Priority = "normal", timeout: float = 10.0) -> None:
        """See ``RateLimiter.acquire``."""
        deadline = time.monotonic() + timeout
        while True:
            wait = self._try(bucket, priority)
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise _give_up(bucket, wait)
            time.sleep(wait)

    def pause(self, bucket: str, seconds: float) -> None:
        """See ``RateLimiter.pause``."""
        with self._lock:
            until = time.monotonic() + seconds
            self._paused_until[bucket] = max(self._paused_until.get(bucket, 0.0), until)


# KEYS[1] log (zset), KEYS[2] pause marker. ARGV: allowed, window_us, member. Returns 0 (granted) or µs to wait.
_ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local allowed = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local paused = redis.call('GET', KEYS[2])
if paused and tonumber(paused) > now then
  return tonumber(paused) - now
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < allowed then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local entry = redis.call('ZRANGE', KEYS[1], count - allowed, count - allowed, 'WITHSCORES')
local wait = tonumber(entry[2]) + window - now
if wait < 1000 then wait = 1000 end
return wait
"""

# KEYS[1] pause marker. ARGV: seconds_us. Extends (never shortens) the pause.
_PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local untl = now + tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if (not cur) or tonumber(cur) < untl then
  redis.call('SET', KEYS[1], string.format('%d', untl), 'PX', math.ceil(tonumber(ARGV[1]) / 1000) + 1000)
end
return 0
"""


class RedisRateLimiter:
    """Sliding-window limiter shared by all processes through Redis (atomic Lua; Redis clock).

    If Redis is unreachable the call falls back to a per-process limiter and logs a warning: a protective close must
    not fail because the limiter's store is down (the exchange's own 429 remains the backstop).
    """

    def __init__(
        self,
        redis_url: str,
        *,
        limits: dict[str, BucketLimit] | None = None,
        reserve: dict[str, int] | None = None,
        window_guard: float = WINDOW_GUARD,
        prefix: str = "lnm:rl:",
        socket_timeout: float = 1.0,
    ) -> None:
        self._config = _Config(limits, reserve, window_guard)
        self._redis = redis.Redis.from_url(
            redis_url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )
        self._acquire_script = self._redis.register_script(_ACQUIRE_LUA)
        self._pause_script = self._redis.register_script(_PAUSE_LUA)
        self._prefix = prefix
        self._fallback = InProcessRateLimiter(limits, reserve=reserve, window_guard=window_guard)

    def _keys(self, bucket: str) -> list[str]:
        return [f"{self._prefix}{bucket}", f"{self._prefix}{bucket}:pause"]

    def _try(self, bucket: str, priority: Priority) -> float:
        allowed, window = self._config.allowed(bucket, priority)
        member = f"{time.time_ns()}:{os.getpid()}:{secrets.token_hex(4)}"
        result = self._acquire_script(keys=self._keys(bucket), args=[allowed, int(window * 1_000_000), member])
        return int(str(result)) / 1_000_000

    def acquire(self, bucket: str, *, priority: Priority = "normal", timeout: float = 10.0) -> None:
        """See ``RateLimiter.acquire``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                wait = self._try(bucket, priority)
            except RedisError as exc:
                logger.warning("redis rate limiter unavailable (%s); using the per-process limiter", type(exc).__name__)
                remaining = max(deadline - time.monotonic(), 0.0)
                self._fallback.acquire(bucket, priority=priority, timeout=remaining)
                return
            if wait <= 0:
                return
            if time.monotonic() + wait > deadline:
                raise _give_up(bucket, wait)
            time.sleep(wait)

    def pause(self, bucket: str, seconds: float) -> None:
        """See ``RateLimiter.pause``."""
        self._fallback.pause(bucket, seconds)
        try:
            self._pause_script(keys=self._keys(bucket)[1:], args=[int(seconds * 1_000_000)])
        except RedisError as exc:
            logger.warning("redis rate limiter unavailable for pause (%s)", type(exc).__name__)

    def ping(self) -> bool:
        """True when Redis answers (used by tests and health checks)."""
        try:
            return bool(self._redis.ping())
        except RedisError:
            return False


_default: tuple[int, RateLimiter] | None = None
_default_lock = threading.Lock()


def _redis_url_from_settings() -> str:
    from django.conf import settings  # lazy: the package stays usable without Django

    if not settings.configured:
        return ""
    return str(getattr(settings, "REDIS_URL", "") or "")


def default_rate_limiter() -> RateLimiter:
    """The process-wide limiter: Redis when ``settings.REDIS_URL`` is set, in-process otherwise (one per pid)."""
    global _default
    with _default_lock:
        if _default is None or _default[0] != os.getpid():
            url = _redis_url_from_settings()
            limiter: RateLimiter = RedisRateLimiter(url) if url else InProcessRateLimiter()
            _default = (os.getpid(), limiter)
        return _default[1]


def auth_bucket(key_id: str) -> str:
    """Bucket name for authenticated calls of one key; ``key_id`` is ``sha256(key)[:16]``, never the key."""
    return f"auth:{key_id}"


def public_bucket(host: str) -> str:
    """Bucket name for public calls to one host."""
    return f"public:{host}"


class NullRateLimiter:
    """Grants everything: for benchmarks and tests with the exchange's limits off. Never use it in production."""

    def acquire(self, bucket: str, *, priority: Priority = "normal", timeout: float = 10.0) -> None:
        """Return at once."""

    def pause(self, bucket: str, seconds: float) -> None:
        """Ignore pauses."""
