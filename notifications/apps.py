"""Notifications: Telegram, e-mail and signed webhooks, derived from what automations already writes."""

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self) -> None:
        from notifications import signals

        signals.connect()
