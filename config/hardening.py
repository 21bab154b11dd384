"""Production start-up refusals and the HTTPS-proxy setting (issue #12).

``refuse_unsafe_production`` is called by ``config.settings`` in production mode (``DATABASE_URL`` or ``REDIS_URL``
set): an unsafe value stops the process with ``ImproperlyConfigured`` instead of serving with it.
"""

from __future__ import annotations

import re

from django.core.exceptions import ImproperlyConfigured

_HEADER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")


def proxy_ssl_header(value: str) -> tuple[str, str] | None:
    """``SECURE_PROXY_SSL_HEADER`` from the header the TLS proxy sets, e.g. ``X-Forwarded-Proto`` (its value must
    be ``https``); ``""`` means no proxy header. Raises ``ImproperlyConfigured`` on a malformed header name."""
    name = value.strip()
    if not name:
        return None
    if not _HEADER_RE.match(name):
        raise ImproperlyConfigured(f"SECURE_PROXY_SSL_HEADER must be a header name such as X-Forwarded-Proto: {name!r}")
    return "HTTP_" + name.upper().replace("-", "_"), "https"


def refuse_unsafe_production(
    *, debug: bool, allowed_hosts: list[str], ssl_redirect: bool, proxy_header: tuple[str, str] | None
) -> None:
    """Refuse the values that are unsafe on a server reachable from a network."""
    if debug:
        raise ImproperlyConfigured(
            "DEBUG=true is refused in production mode (DATABASE_URL or REDIS_URL set): the debug page shows "
            "settings, source and local variables to anyone who triggers an error."
        )
    if "*" in allowed_hosts or not allowed_hosts:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list this server's host names in production mode ('*' or empty is refused: a "
            "wildcard also switches off the WebSocket origin check)."
        )
    if ssl_redirect and proxy_header is None:
        raise ImproperlyConfigured(
            "SECURE_SSL_REDIRECT is on but SECURE_PROXY_SSL_HEADER is not set. Behind the TLS proxy set "
            "SECURE_PROXY_SSL_HEADER=X-Forwarded-Proto (and make the proxy overwrite that header); if the ASGI "
            "server terminates TLS itself, set SECURE_SSL_REDIRECT=false explicitly."
        )
