"""The worker's Redis transport survives losing its connection while it holds unacknowledged messages
(config/broker_transport.py): closing a channel whose connection was already collected must not raise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

pytestmark = pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (the PostgreSQL pass)")

OURS = "config.broker_transport:Transport"


@pytest.fixture
def queue() -> Iterator[Queue]:
    name = f"axisor-test-transport-{os.getpid()}"
    yield Queue(name, Exchange(name), name)
    with Connection(os.environ["REDIS_URL"]) as conn:
        channel: Any = conn.default_channel
        channel.client.delete(name)


def _holding_one_unacked(transport: str | None, queue: Queue) -> Connection:
    conn = Connection(os.environ["REDIS_URL"], transport=transport)
    channel: Any = conn.default_channel
    conn.Producer(channel).publish({"x": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])
    conn.Consumer(queue, callbacks=[lambda body, message: None], channel=channel).consume()
    conn.drain_events(timeout=5)
    assert len(channel.qos._delivered) == 1
    return conn


def test_stock_kombu_raises_when_the_client_is_already_gone(queue: Queue) -> None:
    """What Celery 5.7's consumer does after a connection error when collect() was cut short by a socket timeout:
    the transport's client is dropped, then the channel is closed and restores its unacked message. When this
    fails, kombu has fixed it: config/broker_transport.py can go."""
    conn = _holding_one_unacked(None, queue)
    channel: Any = conn.default_channel
    conn.transport.client = None
    with pytest.raises(AttributeError):
        channel.close()


def test_ours_leaves_the_message_for_the_visibility_timeout_restore(queue: Queue) -> None:
    conn = _holding_one_unacked(OURS, queue)
    channel: Any = conn.default_channel
    conn.transport.client = None
    channel.close()  # no AttributeError: the worker goes on to reconnect
    with Connection(os.environ["REDIS_URL"]) as fresh:
        other: Any = fresh.default_channel
        unacked = other.client.hlen(other.unacked_key)
    assert unacked >= 1  # still in Redis's unacked set, not lost


def test_the_production_settings_use_it() -> None:
    from django.conf import settings

    assert settings.CELERY_BROKER_TRANSPORT == OURS
