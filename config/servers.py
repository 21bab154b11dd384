"""The production ASGI server's command line, in one place: the README shows it, ``bench/realtime.py`` runs it and
``tests/security/test_uvicorn_hardening.py`` checks the WebSocket hardening through it (docs/adr/0006-uvicorn.md).

Uvicorn with ``uvicorn[standard]`` (httptools, uvloop, websockets). The flags that matter:

* ``--lifespan off``: the application has no lifespan handlers (Django's ASGI handler rejects lifespan events).
* ``--no-proxy-headers``: the client address comes from the socket; the application itself trusts
  ``TRUSTED_PROXY_COUNT`` proxies in ``X-Forwarded-For`` (``config.client_ip``), so a client cannot choose its address.
* ``--ws-max-size 65536``: a frame over 64 KiB is refused by the server (close 1009); up to it the application
  answers ``too_large`` and closes with 4009 (docs/security.md).
* ``--ws-ping-interval 20 --ws-ping-timeout 30``: a dead socket goes within 50 s (T19).
* ``--timeout-graceful-shutdown 10``: a restart waits at most 10 s for open connections.

Daphne (``DAPHNE_ARGS``) stays the server of the embedded default (``manage.py run_embedded``) and a documented
alternative; ``bench/realtime.py --server daphne,uvicorn`` measures both side by side (T18).
"""

from __future__ import annotations

from typing import Final

APPLICATION: Final = "config.asgi:application"
UVICORN_ARGS: Final[tuple[str, ...]] = (
    "--lifespan", "off",
    "--no-proxy-headers",
    "--ws-max-size", "65536",
    "--ws-ping-interval", "20",
    "--ws-ping-timeout", "30",
    "--timeout-graceful-shutdown", "10",
)  # fmt: skip
DAPHNE_ARGS: Final[tuple[str, ...]] = (
    "--websocket-max-message-size", "65536",
    "--websocket_connect_timeout", "10",
)  # fmt: skip
