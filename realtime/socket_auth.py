"""Channels' session authentication for sockets, with the lookup on a thread of the pool (issue #14).

``channels.auth.AuthMiddleware`` resolves ``scope["user"]`` through ``database_sync_to_async``, which is
thread-sensitive: every handshake's session and user lookups queue on the *one* thread of the process that also runs
every socket's database work, one network round trip after another. In a connect storm that thread was busy about
half the time, mostly waiting on Redis and PostgreSQL. Here the same lookup (``channels.auth.get_user``, unchanged:
session, backend check, session hash verification) runs on a thread of the pool (``realtime.pool_threads``) with a
database connection from the pool, so several handshakes' round trips overlap. The handshake gate
(``realtime.admission``) still bounds how many are in flight."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddleware, get_user
from channels.sessions import CookieMiddleware, SessionMiddleware

from realtime.pool_threads import in_pool

_lookup = in_pool(get_user.func)  # the undecorated function


class PooledAuthMiddleware(AuthMiddleware):  # type: ignore[misc]  # channels is untyped
    """``AuthMiddleware`` whose lookup runs on a pool thread (see the module docstring)."""

    async def resolve_scope(self, scope: dict[str, Any]) -> None:
        scope["user"]._wrapped = await _lookup(scope)


def socket_auth_stack(inner: Any) -> Any:  # noqa: ANN401 - ASGI applications are untyped here
    """``channels.auth.AuthMiddlewareStack`` with ``PooledAuthMiddleware``: cookies, session, user."""
    return CookieMiddleware(SessionMiddleware(PooledAuthMiddleware(inner)))
