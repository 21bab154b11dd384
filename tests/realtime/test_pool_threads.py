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


def _available() -> int:
    pool = connections["default"].pool  # type: ignore[attr-defined]  # PostgreSQL's wrapper only
    return int(pool.get_stats()["pool_available"])


async def test_sockets_hand_their_pooled_connections_back(
    alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    if not settings.DATABASES["default"].get("OPTIONS", {}).get("pool"):
        pytest.skip("PostgreSQL's connection pool (the PostgreSQL pass)")
    import asyncio

    await database_sync_to_async(make_account)(alice)
    before = await database_sync_to_async(_available)()
    for _ in range(3):
        sockets = await asyncio.gather(*(connect_as(alice) for _ in range(8)))  # several pool threads at once
        for comm, first in sockets:
            assert first["data"]["account"] is not None
            await comm.disconnect()
    assert await database_sync_to_async(_available)() == before  # no pool thread keeps one
