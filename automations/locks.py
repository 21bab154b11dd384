"""One lock per exchange account, shared by every worker process (Redis) or every thread (embedded default).

Held around an order's claim → send → record sequence so two workers never interleave orders of one account.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


class LockTimeoutError(Exception):
    """The account lock could not be taken in time (another worker holds it); the caller retries later."""


_local_locks: dict[int, threading.Lock] = {}
_local_guard = threading.Lock()


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


@contextmanager
def account_lock(account_id: int, *, timeout: float = 30.0, hold: float = 20.0) -> Iterator[None]:
    """Hold the account's lock; raises ``LockTimeoutError`` after ``timeout`` s.

    ``hold`` bounds how long a crashed holder (a worker killed mid-order) blocks the account. Exactly-once does not
    rest on this lock (the intent's compare-and-set does): it only keeps one account's orders in sequence.
    """
    if settings.REDIS_URL:
        lock = _redis(settings.REDIS_URL).lock(
            f"axisor:lock:account:{account_id}", timeout=hold, blocking_timeout=timeout
        )
        if not lock.acquire():
            raise LockTimeoutError(f"account {account_id} is locked by another worker")
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                # The lock expired while held (a very slow call); another holder may have it now: nothing to free.
                logger.warning("account %s lock expired before release", account_id)
        return
    with _local_guard:
        local = _local_locks.setdefault(account_id, threading.Lock())
    if not local.acquire(timeout=timeout):
        raise LockTimeoutError(f"account {account_id} is locked by another thread")
    try:
        yield
    finally:
        local.release()
