"""The production cache: Django's Redis cache, reusing one Redis client per connection pool.

Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` object for every cache call, and each build
fills a table of about 170 response callbacks: 0.15 ms of CPU per call, four calls per dashboard poll (session,
event counter, snapshot part, sockets flag), over a quarter of a cached poll's own time (profiled with cProfile,
issue #14). A ``redis.Redis`` object is safe to share between threads (each command takes a connection from the
pool), so one per pool is kept.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusingRedisCacheClient(RedisCacheClient):
    """``RedisCacheClient`` whose ``get_client`` returns the same client for the same pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:  # noqa: ANN401 - redis is untyped here
        base: Any = self  # Django's private pool attributes are not in its type stubs
        index: int = base._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in base._pools:
                base._pools[index] = base._pool_class.from_url(base._servers[index], **base._pool_options)
            client = self._clients[index] = base._client(connection_pool=base._pools[index])
        return client


class ReusingRedisCache(RedisCache):
    """Django's ``RedisCache`` with ``ReusingRedisCacheClient``; configured like it (``LOCATION``, ``OPTIONS``)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
