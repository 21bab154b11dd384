"""The realtime bus: a leaf module (Django's cache, transactions and the channel layer; no app models) that every
app may import to announce a change to dashboards. See docs/exchange-events.md, "Imports run one way".

Contract (house rule 11, docs/architecture.md):

* Producers build their own payloads (``automations.publish`` for account, automation and audit events;
  ``accounts``/``realtime`` for session ends; ``realtime.market`` for ticks) and resolve the recipient: an event
  for a user goes to ``user.<owner id>`` only (so one user's events can never reach another user's sockets), market
  data to ``market.<network>``.
* Services publish only after the database commit: use ``publish_user_event_on_commit`` inside a transaction, so a
  rolled-back change is never announced.
* Payloads carry ids and display fields only; the consumer re-reads the owner-scoped state it needs. Delivery is at
  most once (``group_send`` silently drops on a full channel), so every per-user event carries ``event_seq`` from a
  per-user counter in the cache (Redis in production, shared by all processes), added here at send time: a consumer
  that sees a jump sends a full snapshot instead of the increment. The browser's own ``seq`` covers the
  consumer→browser leg.
* On Redis, per-user events are numbered and sent by one outbox thread per process (``_Outbox``), in the order
  they were published, so that publishing never makes the publisher wait for Redis. Events waiting together are
  numbered in one round trip and sent together: each user's in one ``user.events`` message, in order.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import threading
import time
from typing import Any, Literal, TypedDict, cast

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction

logger = logging.getLogger(__name__)


class AccountChangedEvent(TypedDict):
    """Balance, fills or closes of ``account_id`` changed: re-send its ``balance`` and ``positions``."""

    type: Literal["account.changed"]
    account_id: int
    event_seq: int


class AutomationsChangedEvent(TypedDict):
    """An automation of ``account_id`` changed status: re-send ``automations``."""

    type: Literal["automations.changed"]
    account_id: int
    event_seq: int


class AutomationLogEvent(TypedDict):
    """A new audit entry (decision/outcome) of ``account_id``: send it as ``automation_log``."""

    type: Literal["automation.log"]
    account_id: int
    entry_id: int
    event_seq: int


class ForceCloseEvent(TypedDict):
    """The user logged out or changed password: close every socket of ``user.<id>``."""

    type: Literal["session.ended"]
    reason: str
    event_seq: int


class MarketEvent(TypedDict):
    """A coalesced tick (``market.tick``) or a state-only update (``market.status``); see ``realtime.market``."""

    type: Literal["market.tick", "market.status"]
    market: Any


def user_group(user_id: int) -> str:
    """The per-user group (ASCII alphanumerics and periods only)."""
    return f"user.{int(user_id)}"


def market_group(network: str) -> str:
    """The per-network market group."""
    return f"market.{''.join(c for c in network if c.isalnum())}"


# The in-memory layer keeps asyncio queues bound to the server's event loop; a put from another thread's loop does
# not wake it. The consumer records the loop it runs on, and sends from other threads are scheduled onto it.
_server_loop: asyncio.AbstractEventLoop | None = None
_loop_guard = threading.Lock()


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the consumer on connect: the loop the in-memory channel layer's receivers wait on."""
    global _server_loop  # noqa: PLW0603
    with _loop_guard:
        _server_loop = loop


_bus_loop: tuple[int, asyncio.AbstractEventLoop] | None = None


def _sender_loop() -> asyncio.AbstractEventLoop:
    """This process's one sender loop (a daemon thread, made on first use and again after a fork): a network
    layer's connection pool belongs to one loop, so sending from a fresh loop per call (``async_to_sync``) opened a
    new Redis connection each time (6.9 ms a send; 0.3 ms on the kept loop, bench/events.py)."""
    global _bus_loop  # noqa: PLW0603
    with _loop_guard:
        if _bus_loop is None or _bus_loop[0] != os.getpid() or not _bus_loop[1].is_running():
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            loop.call_soon(ready.set)
            threading.Thread(target=loop.run_forever, name="axisor-bus", daemon=True).start()
            ready.wait(timeout=5)
            _bus_loop = (os.getpid(), loop)
        return _bus_loop[1]


def group_send(group: str, message: dict[str, Any] | Any) -> None:  # noqa: ANN401 - a TypedDict event
    """Send ``message`` to ``group`` from synchronous code (any thread). Never raises: a failed realtime push is
    logged, the page re-syncs by ``seq`` gap, snapshot or polling."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if isinstance(layer, InMemoryChannelLayer):
            loop = _server_loop
            if loop is not None and loop.is_running() and not loop.is_closed() and running is not loop:
                asyncio.run_coroutine_threadsafe(layer.group_send(group, dict(message)), loop).result(timeout=5)
                return
            async_to_sync(layer.group_send)(group, dict(message))
            return
        if running is None:
            asyncio.run_coroutine_threadsafe(layer.group_send(group, dict(message)), _sender_loop()).result(timeout=5)
            return
        async_to_sync(layer.group_send)(group, dict(message))
    except Exception:
        logger.exception("realtime group_send to %s failed", group)


def group_send_many(messages: dict[str, list[dict[str, Any]]]) -> None:
    """``group_send`` of several messages at once: each group's in order, the groups side by side (one hand-over
    to the sender loop for all of them on a network layer). Never raises: a failed send is logged per group."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if not isinstance(layer, InMemoryChannelLayer):
            timeout = 5.0 + 0.05 * sum(len(sent) for sent in messages.values())
            try:
                asyncio.run_coroutine_threadsafe(_send_groups(layer, messages), _sender_loop()).result(timeout=timeout)
            except Exception:
                logger.exception("realtime group_send to %d groups failed", len(messages))
            return
    for group, sent in messages.items():
        for message in sent:
            group_send(group, message)


async def _send_groups(layer: Any, messages: dict[str, list[dict[str, Any]]]) -> None:  # noqa: ANN401 - a layer
    async def in_order(group: str, sent: list[dict[str, Any]]) -> None:
        try:
            for message in sent:
                await layer.group_send(group, message)
        except Exception:
            logger.exception("realtime group_send to %s failed", group)

    await asyncio.gather(*(in_order(group, sent) for group, sent in messages.items()))


def _seq_key(user_id: int) -> str:
    return f"realtime:user-seq:{int(user_id)}"


def user_seq_key(user_id: int) -> str:
    """The cache key of ``user_id``'s ``event_seq`` counter, for a reader that fetches it with other keys at once."""
    return _seq_key(user_id)


def user_seq_value(value: object) -> int:
    """The ``event_seq`` from the cached value of ``user_seq_key`` (0 when there is none)."""
    return int(value) if isinstance(value, int | str) else 0


def current_user_seq(user_id: int) -> int:
    """The last ``event_seq`` issued to ``user_id`` (0 when none): read by the consumer before its snapshot."""
    return user_seq_value(cache.get(_seq_key(user_id)))


def next_user_seq(user_id: int) -> int:
    """Issue the next ``event_seq`` of ``user_id`` (atomic in Redis and in the local-memory cache)."""
    key = _seq_key(user_id)
    try:
        return int(cache.incr(key))  # one round trip once the counter exists
    except ValueError:  # the first event of this user (or the counter was evicted)
        cache.add(key, 0, timeout=None)
    try:
        return int(cache.incr(key))
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=None)
        return 1


def next_user_seqs(user_ids: list[int]) -> list[int]:
    """``next_user_seq`` of each of ``user_ids`` in turn (a user named twice gets two numbers, in order): one
    pipelined round trip on a Redis cache (``INCR`` creates a missing counter at 1, as ``next_user_seq`` does; the
    cache's own ``incr`` asks whether the key exists first, a second round trip per event)."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return [next_user_seq(user_id) for user_id in user_ids]
    keys = [backend.make_and_validate_key(_seq_key(user_id)) for user_id in user_ids]
    client = cast(Any, backend)._cache.get_client(write=True)  # noqa: SLF001 - the backend's own Redis client
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.incr(key)
    return [int(value) for value in pipe.execute()]


def _send_user_event(user_id: int, event: dict[str, Any]) -> None:
    group_send(user_group(user_id), {**event, "event_seq": next_user_seq(user_id)})


class UserEventsEvent(TypedDict):
    """Several per-user events sent together (``_send_user_events``): the consumer applies them in order, each as
    if it had come alone."""

    type: Literal["user.events"]
    events: list[dict[str, Any]]


def _send_user_events(events: list[tuple[int, dict[str, Any]]]) -> None:
    """Number events waiting together in one round trip and send them: each user's in one message, in the order
    published (``UserEventsEvent`` when there are several), the users side by side (``group_send_many``)."""
    seqs = next_user_seqs([user_id for user_id, _ in events])
    numbered: dict[int, list[dict[str, Any]]] = {}
    for (user_id, event), seq in zip(events, seqs, strict=True):
        numbered.setdefault(user_id, []).append({**event, "event_seq": seq})
    group_send_many(
        {
            user_group(user_id): [sent[0] if len(sent) == 1 else dict(UserEventsEvent(type="user.events", events=sent))]
            for user_id, sent in numbered.items()
        }
    )


class _Outbox:
    """Per-user events sent by one daemon thread of this process, in the order they were published, so that the
    publisher (the tick runner writing a crash tick's thousands of decisions, a worker settling an order) never
    waits for Redis: numbering and sending took a round trip each per event on the publisher's own thread.

    Delivery stays at most once, as the channel layer's is (module docstring): when ``OUTBOX_MAX`` events are
    waiting, a new one is dropped and logged, and the page re-syncs on the ``event_seq`` it then misses.
    """

    def __init__(self) -> None:
        self.queue: queue.Queue[tuple[int, dict[str, Any]]] = queue.Queue(maxsize=OUTBOX_MAX)
        self.pid = os.getpid()
        self.thread = threading.Thread(target=self._run, name="axisor-outbox", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            events = [self.queue.get()]
            while len(events) < OUTBOX_RUN:  # what else is waiting leaves with it
                try:
                    events.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                _send_user_events(events)
            except Exception:
                logger.exception("realtime events for users %s not sent", sorted({user_id for user_id, _ in events}))
            finally:
                for _ in events:
                    self.queue.task_done()

    def put(self, user_id: int, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait((user_id, event))
        except queue.Full:
            if event.get("type") == "session.ended":
                _send_user_event(user_id, event)  # a logout must close the sockets: sent at once, never dropped
                return
            logger.warning("realtime outbox full: an event for user %s was dropped (the page re-syncs)", user_id)

    def flush(self, timeout: float) -> bool:
        """Wait until every event queued so far is sent (at most ``timeout`` s); False if some are still waiting."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True


OUTBOX_MAX = 10_000
OUTBOX_RUN = 200  # the most events numbered and sent together
_outbox: _Outbox | None = None


def _uses_outbox() -> bool:
    """Events go through the outbox on a network channel layer (Redis) from synchronous code; the in-memory layer
    (embedded default, tests without Redis) is sent at once: its receivers live in this process."""
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return True
    return False


def _the_outbox() -> _Outbox:
    global _outbox  # noqa: PLW0603
    with _loop_guard:
        if _outbox is None or _outbox.pid != os.getpid():  # a forked child starts its own thread
            _outbox = _Outbox()
        return _outbox


def outbox_flush(timeout: float = 5.0) -> bool:
    """Wait for this process's queued per-user events to be sent (tests; process exit)."""
    return _outbox.flush(timeout) if _outbox is not None and _outbox.pid == os.getpid() else True


atexit.register(outbox_flush, 2.0)


def publish_user_event(user_id: int, event: dict[str, Any] | Any) -> None:  # noqa: ANN401 - a TypedDict event
    """Send ``event`` (without ``event_seq``: it is added when it is sent) to ``user_id``'s sockets; through the
    outbox (``_Outbox``) on Redis, so the caller does not wait."""
    if _uses_outbox():
        _the_outbox().put(user_id, dict(event))
    else:
        _send_user_event(user_id, dict(event))


def publish_user_event_on_commit(user_id: int, event: dict[str, Any] | Any) -> None:  # noqa: ANN401
    """``publish_user_event`` after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: publish_user_event(user_id, event))


def publish_session_ended(user_id: int, reason: str = "logout") -> None:
    """Close every open dashboard socket of ``user_id`` (logout, password change); in order with the user's other
    events (``ForceCloseEvent``)."""
    publish_user_event(user_id, {"type": "session.ended", "reason": reason})


def publish_session_ended_on_commit(user_id: int, reason: str = "logout") -> None:
    """``publish_session_ended`` after the current transaction commits."""
    transaction.on_commit(lambda: publish_session_ended(user_id, reason))


class SocketsPausedEvent(TypedDict):
    """An operator paused live sockets (``realtime.ops``): every dashboard socket closes and its page polls."""

    type: Literal["sockets.paused"]


def broadcast_group() -> str:
    """The group every dashboard socket of every process joins (operational broadcasts only, no user data)."""
    return "realtime.all"
