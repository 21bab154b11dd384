"""config.channel_layer: a receive cancelled mid-read ends as a cancellation, not as a Redis error."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels_redis.core import RedisChannelLayer
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.channel_layer import BoundedRedisChannelLayer


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
