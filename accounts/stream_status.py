"""Each exchange account's private-stream status, written by the feed process's stream manager
(``automations.stream_manager``) and read by the pages: kept in the Django cache (Redis in production, so every
process agrees) with an expiry, so a feed process that died leaves ``off``, never a stale ``live``.

Statuses: ``live`` (the exchange's trade events arrive within a second), ``connecting``, ``down`` (the socket is lost
and reconnecting with backoff: reconciliation every 30 s is the fallback), ``failed`` (the exchange refused the
credentials on the socket), ``off`` (no stream: the account is disabled or no feed process runs).
"""

from __future__ import annotations

from typing import Literal

from django.core.cache import cache
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

StreamStatus = Literal["live", "connecting", "down", "failed", "off"]
STATUS_TTL_SECONDS = 90  # the manager rewrites every status at least every 30 s
_KEY = "exchange-stream:{}"
# The account page's badge: what the status means for the user.
STATUS_LABELS: dict[StreamStatus, Promise] = {
    "live": _("Exchange events live"),
    "connecting": _("Connecting to exchange events"),
    "down": _("Exchange events down: checked every 30 s"),
    "failed": _("Exchange events refused this key"),
    "off": _("Exchange events off"),
}


def stream_status_set(account_id: int, status: StreamStatus) -> None:
    cache.set(_KEY.format(int(account_id)), status, timeout=STATUS_TTL_SECONDS)


def stream_status_set_many(statuses: dict[int, StreamStatus]) -> None:
    cache.set_many({_KEY.format(int(a)): s for a, s in statuses.items()}, timeout=STATUS_TTL_SECONDS)


def stream_status(account_id: int) -> StreamStatus:
    value = cache.get(_KEY.format(int(account_id)))
    return value if value in ("live", "connecting", "down", "failed") else "off"


def stream_status_label(account_id: int) -> tuple[StreamStatus, Promise]:
    """The status and its words (for the account page's badge)."""
    status = stream_status(account_id)
    return status, STATUS_LABELS[status]
