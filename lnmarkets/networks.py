"""Base URLs per network (docs/protocol.md §1.2), read lazily from ``settings.LNMARKETS_URLS`` when Django is set up.

The rest of the package takes explicit URLs; only this module (and the process-wide accessors that call it) reads
Django settings, and only these URLs and the HTTP timeout. Without Django the built-in defaults apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Network = Literal["mainnet", "signet", "simulator"]

DEFAULT_URLS: dict[str, dict[str, str]] = {
    "mainnet": {"rest": "https://api.lnmarkets.com/v3", "stream": "wss://stream.lnmarkets.com/v1"},
    "signet": {"rest": "https://api.signet.lnmarkets.com/v3", "stream": "wss://stream.signet.lnmarkets.com/v1"},
    "simulator": {"rest": "http://127.0.0.1:8765/v3", "stream": "ws://127.0.0.1:8765/v1"},
}
DEFAULT_HTTP_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class NetworkUrls:
    """The REST v3 base URL (ending in ``/v3``) and the Stream v1 URL of one network."""

    rest: str
    stream: str


def _settings_value(name: str) -> object:
    from django.conf import settings  # lazy: importing lnmarkets must not require Django

    if not settings.configured:
        return None
    return getattr(settings, name, None)


def network_urls(network: str) -> NetworkUrls:
    """URLs for ``network`` from ``settings.LNMARKETS_URLS`` (or the defaults); ``ValueError`` if unknown."""
    configured = _settings_value("LNMARKETS_URLS")
    table = configured if isinstance(configured, dict) else DEFAULT_URLS
    entry = table.get(network) or DEFAULT_URLS.get(network)
    if entry is None:
        raise ValueError(f"unknown LN Markets network {network!r}")
    return NetworkUrls(rest=str(entry["rest"]).rstrip("/"), stream=str(entry["stream"]))


def http_timeout() -> float:
    """``settings.LNMARKETS_HTTP_TIMEOUT`` or 10 s."""
    value = _settings_value("LNMARKETS_HTTP_TIMEOUT")
    return float(value) if isinstance(value, int | float) else DEFAULT_HTTP_TIMEOUT
