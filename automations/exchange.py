"""The one door to the exchange (docs/exchange-events.md): everything Axisor says to or hears from LN Markets goes
through here.

* Requests: ``client_for_account`` (one REST client per exchange account and process: orders, reconciliation) and
  ``public_client`` (the ticker), both ``lnmarkets.client.RestClient``.
* Prices: the market feed (``lnmarkets.feed.get_market_feed``), started by the feed process.
* The account's own events: the private trade streams (``stream_target`` → ``lnmarkets.private_streams``), run by
  ``automations.stream_manager`` in the feed process and applied by ``services.exchange_events``.

Credentials are decrypted by ``accounts.services.credentials_for_signing`` at signing time, through the provider
handed to the client or socket; nothing here holds plaintext. A delivery that has just read its account's row
(``signing_from``) has them decrypted from that row instead of read again (issue #14: the read was a tenth of a
crash tick's delivery CPU).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.conf import settings
from django.db import connection

from accounts.models import ExchangeAccount
from accounts.services import credentials_for_signing
from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, CredentialsProvider
from lnmarkets.private_streams import StreamTarget

_clients: dict[tuple[int, int, str], RestClient] = {}
_guard = threading.Lock()
# The account row a delivery read moments ago (its encrypted columns), for this thread's requests only.
_row_in_hand: ContextVar[ExchangeAccount | None] = ContextVar("axisor_account_row_in_hand", default=None)


@contextmanager
def signing_from(row: ExchangeAccount) -> Iterator[None]:
    """Within this block, requests of ``row``'s account signed in this thread (or task) take the credentials from
    ``row`` (decrypted at signing time, as always) rather than from a new read of the same row."""
    token = _row_in_hand.set(row)
    try:
        yield
    finally:
        _row_in_hand.reset(token)


def credentials_provider(account_id: int) -> CredentialsProvider:
    def provide() -> Credentials:
        return credentials_for_signing(account_id=account_id, row=_row_in_hand.get())

    return provide


def rest_url_for(network: str) -> str:
    return str(settings.LNMARKETS_URLS[network]["rest"])


def stream_url_for(network: str) -> str:
    return str(settings.LNMARKETS_URLS[network]["stream"])


def _stream_credentials(account_id: int) -> CredentialsProvider:
    """The socket's provider runs in a short-lived worker thread of the streams' loop: it hands its database
    connection back to the pool at once (a kept one per worker thread exhausted the pool)."""

    def provide() -> Credentials:
        try:
            return credentials_for_signing(account_id=account_id)
        finally:
            connection.close()

    return provide


def stream_target(account_id: int, network: str, version: str) -> StreamTarget:
    """What the private stream of one account needs (``version`` restarts its socket when it changes)."""
    return StreamTarget(stream_url_for(network), _stream_credentials(account_id), version)


def _cached(account_id: int, network: str, make: Callable[[str], RestClient]) -> RestClient:
    """One client per (process, account, URL): a forked worker child builds its own connection pool."""
    key = (os.getpid(), account_id, rest_url_for(network))
    with _guard:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = make(key[2])
        return client


def client_for_account(account_id: int, network: str) -> RestClient:
    """The process-wide REST client of one exchange account (pooled connections, shared rate limiter)."""
    return _cached(
        account_id,
        network,
        lambda url: RestClient(url, credentials_provider(account_id), timeout=settings.LNMARKETS_HTTP_TIMEOUT),
    )


def public_client(network: str) -> RestClient:
    """A client for public calls (ticker) of ``network`` (account id 0 in the cache)."""
    return _cached(
        0, network, lambda url: RestClient(url, None, timeout=settings.LNMARKETS_HTTP_TIMEOUT, max_retries=1)
    )


def clients_reset() -> None:
    """Forget every cached client (tests switch exchange URLs between cases)."""
    with _guard:
        for client in _clients.values():
            client.close()
        _clients.clear()
