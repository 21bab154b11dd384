"""The automations' door to the exchange gateway: one REST client per exchange account and process.

Credentials are decrypted by ``accounts.services.credentials_for_signing`` at signing time, through the provider
handed to the client; nothing here holds plaintext.
"""

from __future__ import annotations

import os
import threading

from django.conf import settings

from accounts.services import credentials_for_signing
from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, CredentialsProvider

_clients: dict[tuple[int, int, str], RestClient] = {}
_guard = threading.Lock()


def _provider(account_id: int) -> CredentialsProvider:
    def provide() -> Credentials:
        return credentials_for_signing(account_id=account_id)

    return provide


def rest_url_for(network: str) -> str:
    return str(settings.LNMARKETS_URLS[network]["rest"])


def client_for_account(account_id: int, network: str) -> RestClient:
    """The process-wide REST client of one exchange account (pooled connections, shared rate limiter)."""
    key = (os.getpid(), account_id, rest_url_for(network))
    with _guard:
        client = _clients.get(key)
        if client is None:
            client = RestClient(key[2], _provider(account_id), timeout=settings.LNMARKETS_HTTP_TIMEOUT)
            _clients[key] = client
        return client


def public_client(network: str) -> RestClient:
    """A client for public calls (ticker) of ``network``."""
    key = (os.getpid(), 0, rest_url_for(network))
    with _guard:
        client = _clients.get(key)
        if client is None:
            client = RestClient(key[2], None, timeout=settings.LNMARKETS_HTTP_TIMEOUT, max_retries=1)
            _clients[key] = client
        return client


def clients_reset() -> None:
    """Forget every cached client (tests switch exchange URLs between cases)."""
    with _guard:
        for client in _clients.values():
            client.close()
        _clients.clear()
