"""WebSocket URL patterns: the dashboard consumer (wrapped by ``config.asgi`` in the origin check and session auth)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from realtime.consumers import DashboardConsumer

websocket_urlpatterns: list[URLPattern | URLResolver] = [
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
]
