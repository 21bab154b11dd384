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


def test_every_cache_object_of_the_process_shares_one_client() -> None:
    """Django makes a cache object per asyncio context (each request, each socket): they must not each open their
    own connection pool to Redis."""
    import asyncio

    from django.core.cache import caches

    first = ReusingRedisCache(REDIS_URL, {"KEY_PREFIX": "test-config-cache"})
    second = ReusingRedisCache(REDIS_URL, {"KEY_PREFIX": "other-prefix"})
    client = first._cache.get_client()  # type: ignore[attr-defined]
    assert second._cache.get_client() is client  # type: ignore[attr-defined]

    async def in_a_task() -> Any:  # noqa: ANN401
        cache = caches["default"]  # a new object in this task's context
        return cache._cache.get_client()  # type: ignore[attr-defined]

    async def two_tasks() -> tuple[Any, Any]:
        return await asyncio.gather(asyncio.create_task(in_a_task()), asyncio.create_task(in_a_task()))

    one, other = asyncio.run(two_tasks())
    assert one is other
