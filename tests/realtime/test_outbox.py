"""The per-user events' outbox (``axisor_bus.publish._Outbox``): the publisher never waits for Redis, the events
leave in the order they were published, a full outbox drops (and says so) instead of growing, and a failed send
does not stop the ones after it. Events waiting together leave together (``_send_user_events``): numbered in one
round trip, each user's in order."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache

from axisor_bus import publish as bus


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    monkeypatch.setattr(bus, "_send_user_event", lambda user_id, event: out.append((user_id, event)))
    monkeypatch.setattr(bus, "_send_user_events", out.extend)
    return out


def test_events_leave_in_the_order_they_were_published(sent: list[tuple[int, dict[str, Any]]]) -> None:
    outbox = bus._Outbox()  # noqa: SLF001
    published = [(user, {"type": "account.changed", "account_id": n}) for n in range(200) for user in (1, 2)]
    for user, event in published:
        outbox.put(user, event)
    assert outbox.flush(5.0)
    assert sent == published


def test_a_full_outbox_drops_the_new_event_and_logs_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(bus, "OUTBOX_MAX", 2)
    release = threading.Event()
    taken = threading.Event()
    sent: list[int] = []

    def slow_send(events: list[tuple[int, dict[str, Any]]]) -> None:
        taken.set()
        release.wait(5)
        sent.extend(event["n"] for _, event in events)

    monkeypatch.setattr(bus, "_send_user_events", slow_send)
    outbox = bus._Outbox()  # noqa: SLF001
    outbox.put(7, {"n": 0})
    assert taken.wait(5)  # the thread holds event 0; the queue has room for two more
    with caplog.at_level(logging.WARNING, logger="axisor_bus.publish"):
        for n in (1, 2, 3):
            outbox.put(7, {"n": n})
    assert "outbox full" in caplog.text
    assert not outbox.flush(0.05)  # still waiting on the held send
    release.set()
    assert outbox.flush(5.0)
    assert sent == [0, 1, 2]


def test_a_full_outbox_still_sends_a_session_end_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus, "OUTBOX_MAX", 1)
    release = threading.Event()
    taken = threading.Event()
    sent: list[str] = []

    def send_run(events: list[tuple[int, dict[str, Any]]]) -> None:
        taken.set()
        release.wait(5)
        sent.extend(event["type"] for _, event in events)

    monkeypatch.setattr(bus, "_send_user_events", send_run)
    monkeypatch.setattr(bus, "_send_user_event", lambda user_id, event: sent.append(event["type"]))
    outbox = bus._Outbox()  # noqa: SLF001
    outbox.put(7, {"type": "account.changed"})
    assert taken.wait(5)
    outbox.put(7, {"type": "account.changed"})  # fills the queue
    outbox.put(7, {"type": "session.ended", "reason": "logout"})  # a logout is never dropped
    assert sent == ["session.ended"]
    release.set()
    assert outbox.flush(5.0)
    assert sent == ["session.ended", "account.changed", "account.changed"]


def test_a_failed_send_is_logged_and_the_next_events_still_leave(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[int] = []

    def send(events: list[tuple[int, dict[str, Any]]]) -> None:
        if any(event["n"] == 1 for _, event in events):
            raise ConnectionError("redis went away")
        sent.extend(event["n"] for _, event in events)

    monkeypatch.setattr(bus, "_send_user_events", send)
    outbox = bus._Outbox()  # noqa: SLF001
    with caplog.at_level(logging.ERROR, logger="axisor_bus.publish"):
        for n in range(3):
            outbox.put(3, {"n": n})
            assert outbox.flush(5.0)  # one run each
    assert sent == [0, 2]
    assert "not sent" in caplog.text


def test_events_waiting_together_leave_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    runs: list[list[int]] = []

    def send(events: list[tuple[int, dict[str, Any]]]) -> None:
        release.wait(5)
        runs.append([event["n"] for _, event in events])

    monkeypatch.setattr(bus, "_send_user_events", send)
    outbox = bus._Outbox()  # noqa: SLF001
    for n in range(5):
        outbox.put(n % 2, {"n": n})
    release.set()
    assert outbox.flush(5.0)
    assert [n for run in runs for n in run] == [0, 1, 2, 3, 4]
    assert len(runs) <= 2  # the first may have left alone; the others waited together


def test_publish_uses_the_outbox_on_a_network_layer_and_sends_at_once_in_memory(
    monkeypatch: pytest.MonkeyPatch, sent: list[tuple[int, dict[str, Any]]]
) -> None:
    in_memory = InMemoryChannelLayer()
    monkeypatch.setattr(bus, "get_channel_layer", lambda: in_memory)
    bus.publish_user_event(5, {"type": "automations.changed", "account_id": 9})
    assert sent == [(5, {"type": "automations.changed", "account_id": 9})]  # no thread involved

    monkeypatch.setattr(bus, "get_channel_layer", lambda: object())  # stands for the Redis layer
    monkeypatch.setattr(bus, "_outbox", None)
    held = threading.Event()

    def held_send(events: list[tuple[int, dict[str, Any]]]) -> None:
        held.wait(5)
        sent.extend(events)

    monkeypatch.setattr(bus, "_send_user_events", held_send)
    bus.publish_user_event(5, {"type": "account.changed", "account_id": 9})
    assert len(sent) == 1  # returned without waiting for the send
    held.set()
    assert bus.outbox_flush(5.0)
    assert sent[-1] == (5, {"type": "account.changed", "account_id": 9})


@pytest.mark.skipif(not isinstance(caches["default"], RedisCache), reason="needs Redis (the PostgreSQL pass)")
def test_a_run_on_redis_is_numbered_in_turn_and_reaches_each_user_in_order() -> None:
    user, other = 900_001, 900_002
    cache.delete_many([bus.user_seq_key(user), bus.user_seq_key(other)])
    assert bus.next_user_seq(user) == 1  # the counter as the cache keeps it
    assert bus.next_user_seqs([user, other, user]) == [2, 1, 3]  # in turn, one round trip, a missing one starts at 1
    assert bus.current_user_seq(user) == 3
    layer = get_channel_layer()
    assert layer is not None
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(bus.user_group(user), channel)
    try:
        bus._send_user_events(  # noqa: SLF001
            [(user, {"type": "account.changed", "account_id": n}) for n in (1, 2)]
            + [
                (other, {"type": "account.changed", "account_id": 3}),
                (user, {"type": "account.changed", "account_id": 4}),
            ]
        )

        async def received(count: int) -> list[dict[str, Any]]:
            return [await layer.receive(channel) for _ in range(count)]

        (got,) = async_to_sync(received)(1)
    finally:
        async_to_sync(layer.group_discard)(bus.user_group(user), channel)
    assert got["type"] == "user.events"  # the user's three events in one message, in the order published
    assert [(m["account_id"], m["event_seq"]) for m in got["events"]] == [(1, 4), (2, 5), (4, 6)]
    assert bus.current_user_seq(other) == 2
