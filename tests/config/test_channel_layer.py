"""config.channel_layer: a receive cancelled mid-read ends as a cancellation, not as a Redis error; a cancelled
wait for the cleanup lock leaves nothing bound to its event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels_redis.core import ChannelLock, RedisChannelLayer
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.channel_layer import BoundedRedisChannelLayer, CountedChannelLock


def _layer() -> BoundedRedisChannelLayer:
    return BoundedRedisChannelLayer(hosts=[{"address": "redis://127.0.0.1:1/0"}])  # never connected


async def test_a_receive_cancelled_mid_read_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    reading = asyncio.Event()

    async def read_then_time_out_on_cancel(self: RedisChannelLayer, channel: str) -> dict[str, Any]:
        reading.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379") from None  # what redis.asyncio does
        return {}

    monkeypatch.setattr(RedisChannelLayer, "receive", read_then_time_out_on_cancel)
    task = asyncio.ensure_future(_layer().receive("specific.abc!def"))
    await reading.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_redis_error_outside_a_cancellation_still_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    async def time_out(self: RedisChannelLayer, channel: str) -> dict[str, Any]:
        raise RedisTimeoutError("Timeout reading from 127.0.0.1:6379")

    monkeypatch.setattr(RedisChannelLayer, "receive", time_out)
    with pytest.raises(RedisTimeoutError):
        await _layer().receive("specific.abc!def")


async def test_a_message_is_returned_as_received(monkeypatch: pytest.MonkeyPatch) -> None:
    async def deliver(self: RedisChannelLayer, channel: str) -> dict[str, Any]:
        return {"type": "market.tick", "channel": channel}

    monkeypatch.setattr(RedisChannelLayer, "receive", deliver)
    assert await _layer().receive("specific.abc!def") == {"type": "market.tick", "channel": "specific.abc!def"}


def _cancel_a_wait(lock: ChannelLock) -> None:
    """In a loop of its own: hold the lock, cancel another task's wait for it, release it."""

    async def run() -> None:
        await lock.acquire("key")
        waiter = asyncio.ensure_future(lock.acquire("key"))
        await asyncio.sleep(0)  # the waiter now waits (binding the lock to this loop)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        lock.release("key")

    asyncio.run(run())


def _contend_in_a_new_loop(lock: ChannelLock) -> None:
    async def run() -> None:
        await lock.acquire("key")
        waiter = asyncio.ensure_future(lock.acquire("key"))
        await asyncio.sleep(0)
        lock.release("key")
        await waiter
        lock.release("key")

    asyncio.run(run())


def test_a_cancelled_wait_leaves_no_lock_bound_to_its_loop() -> None:
    lock = CountedChannelLock()
    _cancel_a_wait(lock)
    assert not lock.locks
    assert not lock.wait_counts
    _contend_in_a_new_loop(lock)  # another event loop (the next async test) waits on the same channel's lock
    assert not lock.locks


def test_channels_redis_own_lock_fails_that_way() -> None:
    """The failure ``CountedChannelLock`` exists for (if channels_redis fixes it, this test says so)."""
    lock = ChannelLock()
    _cancel_a_wait(lock)
    assert lock.wait_counts["key"] == 1
    with pytest.raises(RuntimeError, match="different event loop"):
        _contend_in_a_new_loop(lock)


def test_the_layer_uses_the_counted_lock() -> None:
    assert isinstance(_layer().receive_clean_locks, CountedChannelLock)
