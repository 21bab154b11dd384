"""Work delivered side by side in a process's threads, and what it queues sent together (issue #14).

A task that delivers several items (order intents, notifications) runs each in a thread of this process
(``run_side_by_side``): the waits on the network overlap instead of holding a worker child each. Each thread hands
its database connection back after every item (to the pool under PostgreSQL: no connection is kept per thread).

What those deliveries queue for later (a close's notification, queued when its transaction commits) is held while
``sends_grouped`` is open and sent once at its end, in one call per kind: work that arrived together leaves together,
so a batch of eight closes queues its eight notifications as one batch, not eight messages that a worker fetching
from its queues in turn would take one per batch of closes.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from django.db import connection

T = TypeVar("T")
Send = Callable[[list[int]], None]

_executors: dict[tuple[int, int], ThreadPoolExecutor] = {}
_executors_guard = threading.Lock()


class _Held:
    """What one ``sends_grouped`` holds, per kind of send; ``open`` is False once it has been sent (a thread still
    running after that, e.g. past a task's time limit, sends at once instead of adding to a list nobody reads)."""

    def __init__(self) -> None:
        self.sends: dict[Send, list[int]] = {}
        self.guard = threading.Lock()
        self.open = True


_held: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("axisor_held_sends", default=None)


def batches(ids: list[int], size: int | None = None) -> Iterator[list[int]]:
    """``ids`` in the batches one delivery task takes: ``size`` (default ``settings.DELIVERY_THREADS``) at a time,
    in order."""
    from django.conf import settings

    size = max(1, size or settings.DELIVERY_THREADS)
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _executor(threads: int) -> ThreadPoolExecutor:
    """This process's delivery threads (a forked worker child makes its own: threads do not survive a fork)."""
    key = (os.getpid(), threads)
    with _executors_guard:
        executor = _executors.get(key)
        if executor is None:
            executor = _executors[key] = ThreadPoolExecutor(threads, thread_name_prefix="side-by-side")
        return executor


def _in_thread(work: Callable[[T], None], item: T) -> None:
    try:
        work(item)
    finally:
        connection.close()  # back to the pool: a delivery thread keeps no connection between items


def run_side_by_side(items: Iterable[T], work: Callable[[T], None], *, threads: int) -> None:
    """``work(item)`` for every item, up to ``threads`` at a time, each in a copy of the caller's context (so inside
    ``sends_grouped`` too); returns when all are done. In this thread, one after another, when ``threads`` is 1 or
    a transaction is open (other threads would not see its writes). ``work`` records its own outcome: an exception
    it lets out is raised here once every item has run."""
    todo = list(items)
    if threads <= 1 or len(todo) <= 1 or connection.in_atomic_block:
        for item in todo:
            work(item)
        return
    executor = _executor(threads)
    futures = [executor.submit(contextvars.copy_context().run, _in_thread, work, item) for item in todo]
    for future in futures:
        future.exception()  # wait for every item before raising any
    for future in futures:
        future.result()


@contextmanager
def sends_grouped() -> Iterator[None]:
    """While open, ``send_or_hold`` holds what it is given; on leaving (also on an error: what was queued for later
    is still sent), each kind's ``send`` is called once with everything held for it, in the order it was held."""
    held = _Held()
    token = _held.set(held)
    try:
        yield
    finally:
        _held.reset(token)
        with held.guard:
            held.open = False
        for send, ids in held.sends.items():
            send(ids)


def send_or_hold(send: Send, ids: list[int]) -> None:
    """``send(ids)`` now, or at the end of the enclosing ``sends_grouped``."""
    held = _held.get()
    if held is not None:
        with held.guard:
            if held.open:
                held.sends.setdefault(send, []).extend(ids)
                return
    send(ids)
