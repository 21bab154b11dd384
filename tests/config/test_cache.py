"""The production cache backend (``config.cache``): Django's Redis cache, one client per pool, same behaviour."""

from __future__ import annotations

import os
from typing import Any

import pytest

from config.cache import ReusingRedisCache

REDIS_URL = os.environ.get("REDIS_URL", "")
pytestmark = pytest.mark.skipif(not REDIS_URL, reason="needs Redis (the PostgreSQL pass)")


def test_one_client_per_pool_and_the_cache_still_works() -> None:
    cache = ReusingRedisCache(REDIS_URL, {"KEY_PREFIX": "test-config-cache"})
    inner: Any = cache._cache  # type: ignore[attr-defined]  # Django's private client object
    client = inner.get_client(write=True)
    assert inner.get_client(write=False) is client  # one server: reads and writes share the one pool
    cache.set("k", {"v": 1}, 30)
    assert cache.get("k") == {"v": 1}
    cache.add("n", 0)
    assert cache.incr("n", 1) == 1
    cache.delete_many(["k", "n"])
    assert cache.get("k") is None
    assert inner.get_client() is client
