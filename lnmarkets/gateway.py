"""Per-account exchange gateway: one per LN Markets account per process, shared by every automation of that account
and by the dashboard (lnmarkets-v3.md §4.4, §7.1; reliability.md §1).

It owns:

* a ``RestClient`` whose credentials provider (supplied by the accounts app, which alone decrypts) is called at
  signing time only; this module never touches the ORM;
* the private Stream subscription ``futures/inverse/btc_usd/isolated/trades`` in a daemon thread with its own loop
  (``start_stream``/``stop``), re-authenticated and re-subscribed after every reconnect;
* an ``AccountStateCache`` (balance, running and open trades) kept fresh by three things: a REST ``refresh()``, the
  trade events (a closed/canceled/liquidated trade leaves the cache at once, a funding event updates the margin),
  and a debounced REST refresh after each event and after each (re)connect, because the events carry only part of
  a trade and nothing is pushed for add-margin, cash-in or SL/TP edits;
* the order calls, delegated to the ``RestClient`` with the same names and errors, updating the cache on success.

``AmbiguousOutcomeError`` from an order call leaves the cache unchanged and marks it ``dirty``: reconcile with
``client.find_trade_by_client_id`` and ``refresh()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from lnmarkets.client import RestClient, StoplossMode
from lnmarkets.credentials import CredentialsProvider
from lnmarkets.exceptions import AmbiguousOutcomeError, LNMarketsError
from lnmarkets.networks import http_timeout, network_urls
from lnmarkets.ratelimit import Priority, RateLimiter
from lnmarkets.schemas import TOPIC_ISOLATED_TRADES, OrderType, Side, StreamEvent, StreamTradeEvent, Trade
from lnmarkets.stream import StreamClient, StreamState
from lnmarkets.subscribers import Subscribers

logger = logging.getLogger(__name__)

CacheSource = Literal["empty", "rest", "stream", "order"]
TradeEventCallback = Callable[[StreamTradeEvent], None]


@dataclass(frozen=True, slots=True)
class AccountStateCache:
    """What the gateway knows about the account. ``fetched_at`` is the last full REST refresh; ``updated_at`` the
    last change from any source; ``dirty`` means a change happened that the cache could not apply exactly (an
    event with partial data, an ambiguous order) and a refresh is due or running."""

    balance: int | None
    running: tuple[Trade, ...]
    open: tuple[Trade, ...]
    fetched_at: datetime | None
    updated_at: datetime | None
    source: CacheSource
    dirty: bool = False

    def trade(self, trade_id: str) -> Trade | None:
        """The running or open trade with ``trade_id``, if cached."""
        for trade in (*self.running, *self.open):
            if trade.id == trade_id:
                return trade
        return None


EMPTY_STATE = AccountStateCache(None, (), (), None, None, "empty")


def _without(trades: tuple[Trade, ...], trade_id: str) -> tuple[Trade, ...]:
    return tuple(t for t in trades if t.id != trade_id)


def _upsert(trades: tuple[Trade, ...], trade: Trade) -> tuple[Trade, ...]:
    return (*_without(trades, trade.id), trade)


class AccountGateway:
    """See the module docstring. ``account_ref`` is an opaque id for logs and the registry (never a secret)."""

    def __init__(
        self,
        account_ref: str,
        network: str,
        credentials: CredentialsProvider,
        *,
        rest_url: str | None = None,
        stream_url: str | None = None,
        rate_limiter: RateLimiter | None = None,
        rest_client: RestClient | None = None,
        timeout: float | None = None,
        heartbeat_interval: float = 5.0,
        silence_timeout: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        refresh_debounce: float = 0.5,
    ) -> None:
        urls = network_urls(network) if rest_url is None or stream_url is None else None
        self.account_ref = account_ref
        self.network = network
        self.client = rest_client or RestClient(
            rest_url or (urls.rest if urls else ""),
            credentials,
            timeout=timeout if timeout is not None else http_timeout(),
            rate_limiter=rate_limiter,
        )
        self._stream_url = stream_url or (urls.stream if urls else "")
        self._credentials = credentials
        self._stream_options = {
            "heartbeat_interval": heartbeat_interval,
            "silence_timeout": silence_timeout,
            "backoff_initial": backoff_initial,
            "backoff_max": backoff_max,
        }
        self.refresh_debounce = refresh_debounce
        self._lock = threading.Lock()
        self._state = EMPTY_STATE
        self._subscribers: Subscribers[StreamTradeEvent] = Subscribers(logger)
        self.stream: StreamClient | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._refresh_task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self.events = 0
        self.refresh_errors = 0

    # --- cache --------------------------------------------------------------------------------------------------

    def state(self) -> AccountStateCache:
        """The cached account state (never does I/O)."""
        with self._lock:
            return self._state

    def _update(self, change: Callable[[AccountStateCache], AccountStateCache]) -> AccountStateCache:
        with self._lock:
            self._state = change(self._state)
            return self._state

    def refresh(self, priority: Priority = "low") -> AccountStateCache:
        """Fetch balance, running and open trades over REST (3 authenticated calls) and replace the cache.
        Raises the client's errors; the cache is unchanged on failure."""
        account = self.client.account_get(priority=priority)
        running = self.client.isolated_trades_running_list(priority=priority)
        open_ = self.client.isolated_trades_open_list(priority=priority)
        now = datetime.now(UTC)
        fresh = AccountStateCache(account.balance, running, open_, now, now, "rest")
        return self._update(lambda _old: fresh)

    # --- private stream -----------------------------------------------------------------------------------------

    def on_trade_event(self, callback: TradeEventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` (in the gateway's stream thread, after the cache applied it) for every private
        trade event; returns the unsubscribe function. Callbacks must be quick and must not block."""
        return self._subscribers.add(callback)

    @property
    def stream_state(self) -> StreamState:
        """``idle`` before ``start_stream()``, then the stream client's state."""
        return self.stream.state if self.stream is not None else "idle"

    def start_stream(self) -> None:
        """Start the private trade-event stream in a daemon thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self.stream = StreamClient(
            self._stream_url,
            self._credentials,
            (TOPIC_ISOLATED_TRADES,),
            self._on_stream_event,
            on_state=self._on_stream_state,
            heartbeat_interval=self._stream_options["heartbeat_interval"],
            silence_timeout=self._stream_options["silence_timeout"],
            backoff_initial=self._stream_options["backoff_initial"],
            backoff_max=self._stream_options["backoff_max"],
        )
        self._started.clear()
        self._thread = threading.Thread(target=self._thread_main, name=f"gateway-{self.account_ref}", daemon=True)
        self._thread.start()
        self._started.wait(timeout=5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the stream thread (the REST client stays usable)."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        assert self.stream is not None
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._started.set()
        stream_task = asyncio.create_task(self._run_stream(self.stream))
        await self._stop_event.wait()
        self.stream.stop()
        tasks = [stream_task] + ([self._refresh_task] if self._refresh_task else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run_stream(self, stream: StreamClient) -> None:
        try:
            await stream.run()
        except LNMarketsError:
            logger.exception("account %s: private stream stopped", self.account_ref)

    def _on_stream_state(self, state: StreamState) -> None:
        if state == "live":  # after every (re)subscribe: fill the gap with a REST refresh
            self._schedule_refresh()

    def _on_stream_event(self, event: StreamEvent) -> None:
        if not isinstance(event, StreamTradeEvent):
            return
        self.events += 1
        self._update(lambda state: _apply_event(state, event))
        self._schedule_refresh()
        self._subscribers.notify(event, f"account {self.account_ref}: trade-event subscriber")

    def _schedule_refresh(self) -> None:
        """Debounced background REST refresh (runs on the stream loop, in a worker thread)."""
        if self._refresh_task is not None and not self._refresh_task.done():
            return
        self._refresh_task = asyncio.get_running_loop().create_task(self._refresh_later())

    async def _refresh_later(self) -> None:
        await asyncio.sleep(self.refresh_debounce)
        try:
            await asyncio.to_thread(self.refresh, "low")
        except LNMarketsError as exc:
            self.refresh_errors += 1
            logger.warning("account %s: background refresh failed: %s", self.account_ref, exc)

    # --- order calls (same names, arguments and errors as RestClient) -------------------------------------------

    def _apply_order(self, trade: Trade) -> Trade:
        def change(state: AccountStateCache) -> AccountStateCache:
            running = _without(state.running, trade.id)
            open_ = _without(state.open, trade.id)
            if trade.running:
                running = (*running, trade)
            elif trade.open:
                open_ = (*open_, trade)
            return replace(state, running=running, open=open_, updated_at=datetime.now(UTC), source="order")

        self._update(change)
        return trade

    def _guard(self, call: Callable[[], Trade]) -> Trade:
        try:
            return self._apply_order(call())
        except AmbiguousOutcomeError:
            self._update(lambda state: replace(state, dirty=True))
            raise

    def isolated_trade_create(
        self,
        *,
        type: OrderType,  # noqa: A002 - the API's field name
        side: Side,
        leverage: Decimal | int,
        quantity: int | None = None,
        margin: int | None = None,
        price: Decimal | None = None,
        stoploss: Decimal | None = None,
        takeprofit: Decimal | None = None,
        stoploss_mode: StoplossMode | None = None,
        client_id: str | None = None,
        priority: Priority = "normal",
    ) -> Trade:
        """``RestClient.isolated_trade_create``; the new trade joins the cache."""
        return self._guard(
            lambda: self.client.isolated_trade_create(
                type=type,
                side=side,
                leverage=leverage,
                quantity=quantity,
                margin=margin,
                price=price,
                stoploss=stoploss,
                takeprofit=takeprofit,
                stoploss_mode=stoploss_mode,
                client_id=client_id,
                priority=priority,
            )
        )

    def isolated_trade_close(self, trade_id: str, priority: Priority = "high") -> Trade:
        """``RestClient.isolated_trade_close``; the trade leaves the cache."""
        return self._guard(lambda: self.client.isolated_trade_close(trade_id, priority))

    def isolated_trade_cancel(self, trade_id: str, priority: Priority = "high") -> Trade:
        """``RestClient.isolated_trade_cancel``; the order leaves the cache."""
        return self._guard(lambda: self.client.isolated_trade_cancel(trade_id, priority))

    def isolated_trades_cancel_all(self, priority: Priority = "high") -> tuple[Trade, ...]:
        """``RestClient.isolated_trades_cancel_all``; open orders leave the cache."""
        trades = self.client.isolated_trades_cancel_all(priority)
        for trade in trades:
            self._apply_order(trade)
        return trades

    def isolated_trade_stoploss_set(
        self, trade_id: str, value: Decimal, mode: StoplossMode = "fixed", priority: Priority = "high"
    ) -> Trade:
        """``RestClient.isolated_trade_stoploss_set``."""
        return self._guard(lambda: self.client.isolated_trade_stoploss_set(trade_id, value, mode, priority))

    def isolated_trade_stoploss_remove(self, trade_id: str, priority: Priority = "high") -> Trade:
        """``RestClient.isolated_trade_stoploss_remove``."""
        return self._guard(lambda: self.client.isolated_trade_stoploss_remove(trade_id, priority))

    def isolated_trade_takeprofit_set(self, trade_id: str, value: Decimal, priority: Priority = "normal") -> Trade:
        """``RestClient.isolated_trade_takeprofit_set``."""
        return self._guard(lambda: self.client.isolated_trade_takeprofit_set(trade_id, value, priority))

    def isolated_trade_takeprofit_remove(self, trade_id: str, priority: Priority = "normal") -> Trade:
        """``RestClient.isolated_trade_takeprofit_remove``."""
        return self._guard(lambda: self.client.isolated_trade_takeprofit_remove(trade_id, priority))

    def isolated_trade_add_margin(self, trade_id: str, amount: int, priority: Priority = "high") -> Trade:
        """``RestClient.isolated_trade_add_margin``."""
        return self._guard(lambda: self.client.isolated_trade_add_margin(trade_id, amount, priority))

    def isolated_trade_cash_in(self, trade_id: str, amount: int, priority: Priority = "normal") -> Trade:
        """``RestClient.isolated_trade_cash_in``."""
        return self._guard(lambda: self.client.isolated_trade_cash_in(trade_id, amount, priority))


def _apply_event(state: AccountStateCache, event: StreamTradeEvent) -> AccountStateCache:
    """The cache after one trade event; exact where the event allows it, otherwise ``dirty`` (refresh pending)."""
    trade_id = event.trade.id
    now = datetime.now(UTC)
    if event.is_terminal:
        return replace(
            state,
            running=_without(state.running, trade_id),
            open=_without(state.open, trade_id),
            updated_at=now,
            source="stream",
            dirty=True,  # the balance changed by an amount the event does not state exactly
        )
    if event.event == "funding":
        running = state.running
        current = state.trade(trade_id)
        if current is not None and event.trade.margin is not None and event.trade.liquidation_price is not None:
            updated = current.model_copy(
                update={"margin": event.trade.margin, "liquidation": event.trade.liquidation_price}
            )
            running = _upsert(running, updated)
        return replace(state, running=running, updated_at=now, source="stream", dirty=True)
    # open / filled: the payload is partial; the debounced refresh brings the full trade
    return replace(state, updated_at=now, source="stream", dirty=True)


_gateways: dict[str, tuple[int, AccountGateway]] = {}
_gateways_lock = threading.Lock()


def get_account_gateway(account_ref: str, factory: Callable[[], AccountGateway]) -> AccountGateway:
    """The process-wide gateway of ``account_ref``, created with ``factory()`` on first use (one per account per
    process; a forked child builds its own)."""
    with _gateways_lock:
        entry = _gateways.get(account_ref)
        if entry is not None and entry[0] == os.getpid():
            return entry[1]
        gateway = factory()
        _gateways[account_ref] = (os.getpid(), gateway)
        return gateway


def drop_account_gateway(account_ref: str) -> None:
    """Stop and forget the gateway of ``account_ref`` (credentials changed or deleted)."""
    with _gateways_lock:
        entry = _gateways.pop(account_ref, None)
    if entry is not None and entry[0] == os.getpid():
        entry[1].stop()
        entry[1].client.close()
