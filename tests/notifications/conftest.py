"""Fixtures for notifications: the fake Bot API, a webhook receiver, channels for alice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifications.crypto import secret_encrypt
from notifications.models import DEFAULT_EVENTS, Channel
from notifications.services import webhook_display
from tests.automations.conftest import margin_guard  # noqa: F401
from tests.notifications.fakes import FakeTelegram, WebhookReceiver

BOT_TOKEN = "123456:FAKE-bot-token-abcdefghijklmnop"
WEBHOOK_SECRET = "whsec-CANARY-5b1f0c2d9e"
CHAT_ID = 424242
WEBHOOK_URL_TOKEN = "urltoken-CANARY-77aa"


@pytest.fixture
def telegram(settings) -> Iterator[FakeTelegram]:
    server = FakeTelegram(BOT_TOKEN)
    server.start()
    settings.TELEGRAM_API_BASE_URL = server.url
    settings.TELEGRAM_BOT_TOKEN = BOT_TOKEN
    yield server
    server.stop()


@pytest.fixture
def receiver(settings) -> Iterator[WebhookReceiver]:
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    server = WebhookReceiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def channels(alice, receiver) -> dict[str, Channel]:
    events = list(DEFAULT_EVENTS)
    return {
        "telegram": Channel.objects.create(
            owner=alice, kind="telegram", name="tg", address=str(CHAT_ID), verified=True, events=events
        ),
        "email": Channel.objects.create(
            owner=alice, kind="email", name="mail", address="alice@example.com", events=events
        ),
        "webhook": Channel.objects.create(
            owner=alice,
            kind="webhook",
            name="hook",
            address=webhook_display(f"{receiver.url}/hook?token={WEBHOOK_URL_TOKEN}"),
            target_encrypted=secret_encrypt(f"{receiver.url}/hook?token={WEBHOOK_URL_TOKEN}"),
            secret_encrypted=secret_encrypt(WEBHOOK_SECRET),
            events=events,
        ),
    }
