"""The realtime app: the dashboard WebSocket, its publishers, pages and HTTP fallback."""

from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from realtime import signals

        signals.connect()
