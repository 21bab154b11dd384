"""The private-stream manager of the feed process (``run_automations`` and the embedded default): one authenticated
socket per enabled account, its events applied to the tracked trades at once (docs/exchange-events.md).

* Which accounts: every enabled account of the process's networks whose credentials are not in a rejected-credentials
  backoff, read again every ``sync_interval`` seconds, so accounts added, disabled or re-keyed at runtime are picked
  up (a changed key restarts the socket).
* Sockets: ``lnmarkets.private_streams.PrivateStreams`` (one loop thread, paced connects, backoff with jitter).
* Events and status changes are queued, never handled on the sockets' loop: ``appliers`` threads apply them, each
  account always on the same thread (``account_id % appliers``), so one account's events keep their order.
* Status: each account's ``accounts.stream_status`` (cache, with expiry), rewritten every ``status_interval``.
* Fallback: reconciliation (beat, every 30 s) runs whatever the sockets do; when a socket comes back after a loss,
  one reconciliation of that account is queued at once to fill the gap (events are not replayed).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone

from accounts.models import ExchangeAccount
from accounts.stream_status import StreamStatus, stream_status_set, stream_status_set_many
from automations.exchange import stream_target
from automations.services.exchange_events import Applied, trade_event_apply
from lnmarkets.private_streams import PrivateStreams, StreamTarget
from lnmarkets.schemas import StreamTradeEvent
from lnmarkets.stream import StreamState

logger = logging.getLogger(__name__)

STATUS_OF: dict[StreamState, StreamStatus] = {
    "idle": "connecting",
    "connecting": "connecting",
    "live": "live",
    "backoff": "down",
    "failed": "failed",
    "stopped": "off",
}


@dataclass(frozen=True, slots=True)
class _Event:
    account_id: int
    event: StreamTradeEvent
    received: float  # time.monotonic() when the socket handed it over


@dataclass(frozen=True, slots=True)
class _Status:
    account_id: int
    state: StreamState


AppliedHook = Callable[[int, StreamTradeEvent, Applied, float], None]


def _queue_reconcile(account_id: int) -> None:
    from automations.tasks import account_reconcile_task

    account_reconcile_task.delay(account_id)


def _version(account: ExchangeAccount) -> str:
    """Changes when the stored credentials change (a new key restarts the socket); reveals nothing."""
    digest = hashlib.sha256(f"{account.api_key_encrypted}|{account.passphrase_encrypted}".encode())
    return digest.hexdigest()[:16]


class ExchangeStreamManager:
    """See the module docstring. ``start()``/``stop()`` from the launcher; ``sync()`` may be called at any time."""

    def __init__(
        self,
        networks: Iterable[str],
        *,
        sync_interval: float = 10.0,
        status_interval: float = 30.0,
        appliers: int = 4,
        connects_per_second: float = 20.0,
        reconcile_after_gap: Callable[[int], None] = _queue_reconcile,
        on_applied: AppliedHook | None = None,
        **stream_options: float,
    ) -> None:
        self.networks = tuple(networks)
        self.sync_interval = sync_interval
        self.status_interval = status_interval
        self._reconcile_after_gap = reconcile_after_gap
        self._on_applied = on_applied
        self.streams = PrivateStreams(
            self._on_event, self._on_status, connects_per_second=connects_per_second, **stream_options
        )
        self._queues: list[queue.Queue[_Event | _Status | None]] = [queue.Queue() for _ in range(max(1, appliers))]
        self._lost: set[int] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.applied = 0
        self.errors = 0

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self, *, threads: bool = True) -> None:
        """Start the sockets' loop, and unless ``threads=False`` the sync and applier threads (without them the
        caller drives ``sync()`` and ``pump()``: the tests do, on SQLite's in-memory database)."""
        self.streams.start()
        self._stop.clear()
        if not threads:
            return
        self._threads = [
            threading.Thread(target=self._apply_loop, args=(q,), name=f"stream-apply-{i}", daemon=True)
            for i, q in enumerate(self._queues)
        ]
        self._threads.append(threading.Thread(target=self._sync_loop, name="stream-sync", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.streams.stop()
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join(timeout=10.0)
        self._threads = []

    # --- which accounts -----------------------------------------------------------------------------------------

    def wanted(self) -> dict[int, StreamTarget]:
        """The enabled accounts of the networks, minus those whose credentials are in a rejection backoff."""
        rows = ExchangeAccount.objects.filter(is_enabled=True, network__in=self.networks).filter(
            Q(auth_retry_at__isnull=True) | Q(auth_retry_at__lte=timezone.now())
        )
        return {a.pk: stream_target(a.pk, a.network, _version(a)) for a in rows}

    def sync(self) -> None:
        """Open sockets for new accounts, close those of disabled or deleted accounts (their status goes ``off``)."""
        self.streams.sync(self.wanted())

    def _sync_loop(self) -> None:
        last_status = 0.0
        while not self._stop.is_set():
            try:
                self.sync()
                if time.monotonic() - last_status >= self.status_interval:
                    last_status = time.monotonic()
                    stream_status_set_many({a: STATUS_OF[s] for a, s in self.streams.states().items()})
            except Exception:
                logger.exception("private streams: sync failed (retried in %.0f s)", self.sync_interval)
                close_old_connections()
            self._stop.wait(self.sync_interval)
        close_old_connections()

    # --- from the sockets' loop (quick, non-blocking) -----------------------------------------------------------

    def _queue_for(self, account_id: int) -> queue.Queue[_Event | _Status | None]:
        return self._queues[account_id % len(self._queues)]

    def _on_event(self, account_id: int, event: StreamTradeEvent) -> None:
        self._queue_for(account_id).put(_Event(account_id, event, time.monotonic()))

    def _on_status(self, account_id: int, state: StreamState) -> None:
        self._queue_for(account_id).put(_Status(account_id, state))

    # --- applier threads ----------------------------------------------------------------------------------------

    def _apply_loop(self, items: queue.Queue[_Event | _Status | None]) -> None:
        while (item := items.get()) is not None:
            self._apply(item)
        close_old_connections()

    def pump(self) -> int:
        """Apply every queued event and status change in the calling thread; how many."""
        done = 0
        for items in self._queues:
            while True:
                try:
                    item = items.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    self._apply(item)
                    done += 1
        return done

    def _apply(self, item: _Event | _Status) -> None:
        try:
            if isinstance(item, _Event):
                result = trade_event_apply(item.account_id, item.event)
                self.applied += 1
                if self._on_applied is not None:
                    self._on_applied(item.account_id, item.event, result, item.received)
            else:
                self._status_changed(item)
        except Exception:
            self.errors += 1
            logger.exception("account %s: private stream item not applied", item.account_id)
            close_old_connections()

    def _status_changed(self, item: _Status) -> None:
        status = STATUS_OF[item.state]
        stream_status_set(item.account_id, status)
        if status in ("down", "failed"):
            self._lost.add(item.account_id)
            logger.info("account %s: private stream %s", item.account_id, status)
        elif status == "live" and item.account_id in self._lost:
            self._lost.discard(item.account_id)
            logger.info("account %s: private stream back: reconciling the gap", item.account_id)
            self._reconcile_after_gap(item.account_id)
