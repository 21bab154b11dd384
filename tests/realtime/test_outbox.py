"""The per-user events' outbox (``axisor_bus.publish._Outbox``): the publisher never waits for Redis, the events
leave in the order they were published, a full outbox drops (and says so) instead of growing, and a failed send
does not stop the ones after it."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from channels.layers import InMemoryChannelLayer

from axisor_bus import publish as bus


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, dict[str, Any]]]:
    out: list[tuple[int, dict[str, Any]]] = []
    monkeypatch.setattr(bus, "_send_user_event", lambda user_id, event: out.append((user_id, event)))
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

    def slow_send(user_id: int, event: dict[str, Any]) -> None:
        taken.set()
        release.wait(5)
        sent.append(event["n"])

    monkeypatch.setattr(bus, "_send_user_event", slow_send)
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

    def send(user_id: int, event: dict[str, Any]) -> None:
        if event["type"] != "session.ended":
            taken.set()
            release.wait(5)
        sent.append(event["type"])

    monkeypatch.setattr(bus, "_send_user_event", send)
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

    def send(user_id: int, event: dict[str, Any]) -> None:
        if event["n"] == 1:
            raise ConnectionError("redis went away")
        sent.append(event["n"])

    monkeypatch.setattr(bus, "_send_user_event", send)
    outbox = bus._Outbox()  # noqa: SLF001
    with caplog.at_level(logging.ERROR, logger="axisor_bus.publish"):
        for n in range(3):
            outbox.put(3, {"n": n})
        assert outbox.flush(5.0)
    assert sent == [0, 2]
    assert "not sent" in caplog.text


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

    def held_send(user_id: int, event: dict[str, Any]) -> None:
        held.wait(5)
        sent.append((user_id, event))

    monkeypatch.setattr(bus, "_send_user_event", held_send)
    bus.publish_user_event(5, {"type": "account.changed", "account_id": 9})
    assert len(sent) == 1  # returned without waiting for the send
    held.set()
    assert bus.outbox_flush(5.0)
    assert sent[-1] == (5, {"type": "account.changed", "account_id": 9})
