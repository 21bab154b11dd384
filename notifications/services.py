"""Channel management for the pages (thin views call these)."""

from __future__ import annotations

import secrets
import uuid
from urllib.parse import urlsplit

from django.db import transaction

from accounts.models import User
from notifications.crypto import secret_encrypt
from notifications.derive import notifications_create
from notifications.models import DEFAULT_EVENTS, Channel, Event, TelegramLinkCode


def channel_create(*, owner: User, kind: str, name: str, address: str, secret: str = "") -> tuple[Channel, str]:
    """Create a channel with every event on. Returns it and, for a webhook whose secret was generated, that secret
    (to be shown once; only its ciphertext is stored)."""
    generated = ""
    secret_encrypted = target_encrypted = ""
    if kind == Channel.Kind.WEBHOOK:
        if not secret:
            secret = generated = secrets.token_urlsafe(32)
        secret_encrypted = secret_encrypt(secret)
        target_encrypted = secret_encrypt(address)
        address = webhook_display(address)
    channel = Channel.objects.create(
        owner=owner,
        kind=kind,
        name=name,
        address=address,
        secret_encrypted=secret_encrypted,
        target_encrypted=target_encrypted,
        events=list(DEFAULT_EVENTS),
        verified=kind != Channel.Kind.TELEGRAM,
    )
    return channel, generated


def webhook_display(url: str) -> str:
    """What the pages show of a webhook URL: its scheme and host (the path or query may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}/…"


def link_code_create(*, channel: Channel) -> TelegramLinkCode:
    """A fresh one-time code for a Telegram channel (earlier unused codes are withdrawn)."""
    with transaction.atomic():
        TelegramLinkCode.objects.filter(channel=channel, used_at__isnull=True).delete()
        return TelegramLinkCode.objects.create(channel=channel)


def test_message_send(*, channel: Channel) -> int | None:
    """Queue a test message to ``channel`` (its own key each time). None when the channel cannot receive yet."""
    if not channel.is_ready:
        return None
    ids = notifications_create(
        owner_id=channel.owner_id,
        event=Event.TEST,
        title="Test message from Axisor",
        body="Test message from Axisor: this channel works.",
        source=uuid.uuid4().hex,
        channel_ids=[channel.pk],
    )
    return ids[0] if ids else None
