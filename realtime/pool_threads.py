"""Database work of sockets on a thread of the pool instead of the process's one database thread (issue #14).

``channels.db.database_sync_to_async`` closes stale connections around the call, but it does so outside the
context the call runs in; on a pool thread (``thread_sensitive=False``) the connection opened inside that context is
not the one it sees, and a pooled connection was never handed back (found by the PostgreSQL pass: the pool ran dry
after a few sockets). ``in_pool`` closes them inside the call, where the connection was opened, as
``realtime.fast_snapshot`` does for a poll.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def in_pool(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``func`` as a coroutine function run on a pool thread, its database connection handed back after each call."""

    @functools.wraps(func)
    def closing(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return func(*args, **kwargs)
        finally:
            close_old_connections()

    return sync_to_async(closing, thread_sensitive=False)
