"""WebSocket URL patterns (the dashboard consumer is added by the realtime issue)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

websocket_urlpatterns: list[URLPattern | URLResolver] = []
