"""ASGI entry point: HTTP through Django (the polling fallback's snapshot through ``realtime.fast_snapshot``, the same
view and security middleware on a pool thread), WebSockets through the origin check and session auth (looked up on a
pool thread, ``realtime.socket_auth``); both behind the process's admission control (``realtime.admission``: bounded
work in flight, deliberate shedding when saturated)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from realtime.admission import AdmissionMiddleware  # noqa: E402
from realtime.fast_snapshot import SnapshotFastPath  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.socket_auth import socket_auth_stack  # noqa: E402

application = AdmissionMiddleware(
    ProtocolTypeRouter(
        {
            "http": SnapshotFastPath(django_asgi_app),  # the polling fallback's snapshot without Django's handler
            "websocket": AllowedHostsOriginValidator(socket_auth_stack(URLRouter(websocket_urlpatterns))),
        }
    )
)
