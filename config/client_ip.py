"""The client's address, as the login throttle (django-axes) and /metrics see it.

Behind ``TRUSTED_PROXY_COUNT`` reverse proxies, each appending the address it received the request from to
``X-Forwarded-For`` (nginx ``$proxy_add_x_forwarded_for``, Caddy, Traefik), the client is the entry that many places
from the right; anything further left was written by the client itself and is ignored, so it cannot be spoofed.
With no proxy counted (the default), the socket's peer address; ``X-Forwarded-For`` is not read at all.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address of ``request`` (``None`` when none can be read: axes stores no address then)."""
    if request is None:
        return None
    meta = getattr(request, "META", {})
    proxies: int = settings.TRUSTED_PROXY_COUNT
    peer = _valid(str(meta.get("REMOTE_ADDR") or ""))
    if proxies <= 0:
        return peer
    hops = [h for h in str(meta.get("HTTP_X_FORWARDED_FOR") or "").split(",") if h.strip()]
    if len(hops) < proxies:
        return peer
    return _valid(hops[-proxies])


def is_direct_loopback(request: HttpRequest) -> bool:
    """Did the request come straight from this machine (peer on loopback, no proxy header)?"""
    if request.META.get("HTTP_X_FORWARDED_FOR") or request.META.get("HTTP_FORWARDED"):
        return False
    peer = _valid(str(request.META.get("REMOTE_ADDR") or ""))
    return peer is not None and ipaddress.ip_address(peer).is_loopback
