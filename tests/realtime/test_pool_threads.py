"""``realtime.pool_threads.in_pool``: a socket's database work on pool threads hands its pooled connections back
(Channels' ``database_sync_to_async`` closes outside the call's context: on a pool thread inside a socket's
handshake it kept the connection, and the PostgreSQL pass ran the pool dry after a few sockets)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

from accounts.models import ExchangeAccount, User
from tests.realtime.conftest import connect_as

pytestmark = pytest.mark.django_db(transaction=True)


def _in_use() -> int:
    """Connections handed out and not given back by the pool threads. Not ``pool_available`` alone: the pool grows
    in the background when a request had to wait and shrinks idle connections every ``max_idle`` (a full PostgreSQL
    pass crosses that), which moves the idle count with nothing leaked; both move ``pool_size`` the same way. A
    connection being opened counts as in use until it is ready, so the caller waits for a growth in progress.

    Runs on Channels' one database thread, whose own connection is handed back first: the test's helper logs users
    in there (``session_cookie``), and when eight of those calls queue at once the thread may keep one connection
    (one thread: at most one connection, and not the sockets' doing)."""
    connections.close_all()
    stats = connections["default"].pool.get_stats()  # type: ignore[attr-defined]  # PostgreSQL's wrapper only
    return int(stats["pool_size"]) - int(stats["pool_available"])


async def test_sockets_hand_their_pooled_connections_back(
    alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    if not settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
        pytest.skip("PostgreSQL's connection pool (the PostgreSQL pass)")
    import asyncio

    await database_sync_to_async(make_account)(alice)
    before = await database_sync_to_async(_in_use)()
    for _ in range(3):
        sockets = await asyncio.gather(*(connect_as(alice) for _ in range(8)))  # several pool threads at once
        for comm, first in sockets:
            assert first["data"]["account"] is not None
            await comm.disconnect()
    in_use = await database_sync_to_async(_in_use)()
    for _ in range(50):  # a connection the pool is still opening (it grew while sockets waited) is not a leak
        if in_use <= before:
            break
        await asyncio.sleep(0.1)
        in_use = await database_sync_to_async(_in_use)()
    assert in_use == before  # no pool thread keeps one
