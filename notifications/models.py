"""Channels a user links, the notifications derived for them (the outbox) and the delivery log.

A ``Notification`` row is written in the same transaction as the audit entry it comes from, with a unique
``idempotency_key`` (``{event}:{source}:{channel}``): a second derivation of the same outcome, or a redelivered task,
finds the row already there. Delivery claims it with a compare-and-set (docs/notifications.md).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Event(models.TextChoices):
    AUTOMATION_ACTED = "automation_acted", _("An automation acted")
    ACTION_FAILED = "action_failed", _("An action failed or was rejected")
    TRADE_CLOSED = "trade_closed", _("A trade closed by its TP, SL, a liquidation or outside Axisor")
    MARGIN_WARNING = "margin_warning", _("Margin warning")
    CREDENTIALS = "credentials", _("Credentials rejected, automations paused")
    FEED = "feed", _("Exchange feed stale or recovered")
    KILL_SWITCH = "kill_switch", _("Kill switch turned on or off")
    DAILY_SUMMARY = "daily_summary", _("Daily summary")
    TEST = "test", _("Test message")
    DIGEST = "digest", _("Summary of held notifications")


# Outcomes of protective work: never dropped, never folded away without being listed.
PROTECTIVE_EVENTS = frozenset({Event.AUTOMATION_ACTED, Event.ACTION_FAILED, Event.TRADE_CLOSED})
DEFAULT_EVENTS = [e.value for e in Event if e not in (Event.TEST, Event.DIGEST)]


class Channel(models.Model):
    """One destination of a user. ``address`` is the e-mail address, the webhook URL's scheme and host (the full
    URL is in ``target_encrypted``) or the Telegram chat id (set by the bot when the user sends ``/start CODE``, never
    typed). ``secret_encrypted`` holds the webhook's signing secret (MultiFernet, like exchange keys)."""

    class Kind(models.TextChoices):
        TELEGRAM = "telegram", "Telegram"
        EMAIL = "email", _("E-mail")
        WEBHOOK = "webhook", "Webhook"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_channels")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100)
    address = models.CharField(max_length=500, blank=True)
    secret_encrypted = models.TextField(blank=True)
    # A webhook's URL, encrypted: Discord, Slack and ntfy URLs are bearer secrets. ``address`` shows its host only.
    target_encrypted = models.TextField(blank=True)
    events = models.JSONField(default=list, blank=True, help_text="Event names this channel receives.")
    is_enabled = models.BooleanField(default=True)
    verified = models.BooleanField(default=False, help_text="Telegram: the chat was linked with a one-time code.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["owner_id", "name", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["owner", "name"], name="unique_channel_name_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def is_ready(self) -> bool:
        return self.is_enabled and bool(self.address) and (self.kind != self.Kind.TELEGRAM or self.verified)

    def wants(self, event: str) -> bool:
        return event == Event.TEST or event in (self.events or [])


class Preference(models.Model):
    """Per user: the margin warning level (distance to liquidation, %) that sends a warning before a guard acts."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_pref")
    margin_warning_percent = models.DecimalField(max_digits=5, decimal_places=2, default=10)

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class Notification(models.Model):
    """One message for one channel (the outbox row)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        GROUPED = "grouped", "Sent in a summary"
        FAILED = "failed", "Failed"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event = models.CharField(max_length=20, choices=Event.choices)
    idempotency_key = models.CharField(max_length=200, unique=True)
    protective = models.BooleanField(default=False)
    held = models.BooleanField(default=False, help_text="Held by the flood rule, to be listed in a summary.")
    title = models.CharField(max_length=200)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    source_at = models.DateTimeField(default=timezone.now, help_text="When the outcome it reports was recorded.")
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="grouped")
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["channel", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel_id} ({self.status})"


class DeliveryLog(models.Model):
    """One delivery attempt's result, per channel (the page shows the last 100)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    notification = models.ForeignKey(Notification, on_delete=models.SET_NULL, null=True, related_name="deliveries")
    attempt = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12)
    detail = models.CharField(max_length=300, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["channel", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.channel_id} #{self.attempt} {self.status}"


def new_link_code() -> str:
    return secrets.token_urlsafe(12)


def link_code_expiry() -> datetime:
    return timezone.now() + timedelta(minutes=15)


class TelegramLinkCode(models.Model):
    """A one-time code the user sends to the bot (``/start CODE``) to link the chat to ``channel``."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="link_codes")
    code = models.CharField(max_length=40, unique=True, default=new_link_code)
    expires_at = models.DateTimeField(default=link_code_expiry)
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"link code for channel {self.channel_id}"


class BotState(models.Model):
    """The long-polling offset (a single row, id 1), and the bot token, encrypted, when set from the admin/command."""

    update_offset = models.BigIntegerField(default=0)
    token_encrypted = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"bot state (offset {self.update_offset})"


class BotCommandLog(models.Model):
    """Every command a chat sent to the bot: who, what, and what came of it (audit)."""

    chat_id = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    command = models.CharField(max_length=100)
    result = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.chat_id}: {self.command}"


class FeedStatus(models.Model):
    """The exchange feed's last observed state per network, for stale/recovered notifications on transitions only.
    ``episode`` counts stale spells (it is in the notification's idempotency key)."""

    network = models.CharField(max_length=16, unique=True)
    stale = models.BooleanField(default=False)
    episode = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.network}: {'stale' if self.stale else 'live'}"
