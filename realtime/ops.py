"""Operations switch: pause live dashboard sockets (shed WebSocket load; every tab falls back to HTTP polling).

Contract:

* The state lives in the Django cache (Redis in production, so every Daphne process agrees; local memory in the
  embedded single process) under ``PAUSED_KEY`` with no expiry. Losing the key (cache flush, eviction) means
  "open": the switch fails towards normal service, never towards a stuck pause.
* ``sockets_pause`` sets the flag, then tells every socket of every process (the ``realtime.all`` broadcast group)
  to close with ``CLOSE_PAUSED`` (4503); the consumer refuses new sockets while the flag is set.
* ``sockets_resume`` clears the flag; pages notice on their next poll (``"sockets": "open"`` in the HTTP fallback
  snapshot) and reconnect at once.
* Only staff may call these (the view checks); both are logged at INFO with the acting user's id.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal, TypedDict

from asgiref.sync import sync_to_async
from django.core.cache import cache
from django.utils import timezone

from accounts.models import User
from axisor_bus.publish import SocketsPausedEvent, broadcast_group, group_send

logger = logging.getLogger(__name__)

PAUSED_KEY = "realtime:sockets_paused"

SocketsMode = Literal["open", "paused"]


class SocketsState(TypedDict):
    """What the operations page shows."""

    paused: bool
    by: str | None  # the username of the staff user who paused
    since: datetime | None  # aware, UTC


def sockets_paused() -> bool:
    """Are live sockets paused (for every process)?"""
    return cache.get(PAUSED_KEY) is not None


async def sockets_paused_async() -> bool:
    """``sockets_paused`` for the consumer's event loop. Read in a pool thread, not in the one thread that runs
    every socket's database work (``cache.aget`` would queue it there behind snapshots during a connect storm)."""
    return await sync_to_async(sockets_paused, thread_sensitive=False)()


def mode_of(value: object) -> SocketsMode:
    """``"paused"`` or ``"open"`` (the ``sockets`` field of the HTTP fallback snapshot) from the cached value of
    ``PAUSED_KEY``, which the fallback reads with its other keys at once."""
    return "paused" if value is not None else "open"


def sockets_state() -> SocketsState:
    """The flag with who set it and when (``None`` for both when open, or when the stored value is unreadable)."""
    value = cache.get(PAUSED_KEY)
    if value is None:
        return {"paused": False, "by": None, "since": None}
    by = value.get("by") if isinstance(value, dict) else None
    raw = value.get("since") if isinstance(value, dict) else None
    since: datetime | None = None
    if isinstance(raw, str):
        try:
            since = datetime.fromisoformat(raw)
        except ValueError:
            logger.warning("unreadable pause time in %s", PAUSED_KEY)
    return {"paused": True, "by": by if isinstance(by, str) else None, "since": since}


def sockets_pause(*, by: User) -> None:
    """Pause live sockets everywhere: set the flag, then close every open dashboard socket (4503).

    Idempotent: pausing again keeps the original time and still closes any socket that slipped through.
    """
    cache.add(PAUSED_KEY, {"by": by.get_username(), "since": timezone.now().isoformat()}, timeout=None)
    event: SocketsPausedEvent = {"type": "sockets.paused"}
    group_send(broadcast_group(), event)
    logger.info("live dashboard sockets paused by user %s", by.pk)


def sockets_resume(*, by: User) -> None:
    """Let sockets connect again; polling pages reconnect on their next poll."""
    cache.delete(PAUSED_KEY)
    logger.info("live dashboard sockets resumed by user %s", by.pk)
