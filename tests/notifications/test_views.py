"""The notifications settings page: channels, events, test message, link code, delivery log, and the bot webhook."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from notifications.delivery import notification_deliver
from notifications.models import Channel, DeliveryLog, Notification, TelegramLinkCode
from tests.notifications.conftest import CHAT_ID

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_alice(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def test_the_page_lists_channels_in_english_and_portuguese(client_alice, channels):
    page = client_alice.get(reverse("notifications:list"))
    assert page.status_code == 200
    assert b"Send a test message" in page.content
    assert b"alice@example.com" in page.content
    client_alice.cookies["django_language"] = "pt-br"
    page = client_alice.get(reverse("notifications:list"), HTTP_ACCEPT_LANGUAGE="pt-br")
    assert page.status_code == 200
    assert "Enviar uma mensagem de teste" in page.content.decode()
    assert "Uma automação agiu" in page.content.decode()


def test_a_webhook_channel_gets_a_secret_shown_once_and_stored_encrypted(client_alice, alice):
    url = "https://discord.example/api/webhooks/123/TOKEN-abcdef"
    response = client_alice.post(reverse("notifications:create"), {"kind": "webhook", "name": "hook", "address": url})
    assert response.status_code == 200
    channel = Channel.objects.get(owner=alice)
    # the URL may be a bearer secret: encrypted, and only its host is shown
    assert channel.address == "https://discord.example/…"
    assert "TOKEN-abcdef" not in channel.target_encrypted
    assert b"TOKEN-abcdef" not in client_alice.get(reverse("notifications:list")).content
    secret = response.context["secret"]
    assert len(secret) >= 32
    assert secret.encode() in response.content
    assert secret not in channel.secret_encrypted
    # the list page never shows it again
    assert secret.encode() not in client_alice.get(reverse("notifications:list")).content


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "email", "name": "m", "address": "not-an-address"}, "address"),
        ({"kind": "webhook", "name": "w", "address": "ftp://example.com"}, "address"),
        ({"kind": "webhook", "name": "w", "address": "https://user:pw@example.com/"}, "address"),
        ({"kind": "sms", "name": "s", "address": "1"}, "kind"),
    ],
)
def test_invalid_channels_are_refused(client_alice, data, field):
    response = client_alice.post(reverse("notifications:create"), data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Channel.objects.exists()


def test_a_telegram_channel_is_created_unlinked_with_a_code(client_alice, alice):
    response = client_alice.post(
        reverse("notifications:create"), {"kind": "telegram", "name": "phone", "address": "12345"}
    )
    assert response.status_code == 302
    channel = Channel.objects.get(owner=alice)
    assert channel.address == ""  # a chat id is never typed
    assert not channel.verified
    code = TelegramLinkCode.objects.get(channel=channel)
    assert f"/start {code.code}".encode() in client_alice.get(reverse("notifications:list")).content
    client_alice.post(reverse("notifications:link", args=[channel.pk]))
    assert TelegramLinkCode.objects.filter(channel=channel).count() == 1
    assert TelegramLinkCode.objects.get(channel=channel).code != code.code


def test_events_and_enabled_are_saved(client_alice, channels):
    channel = channels["email"]
    prefix = f"c{channel.pk}"
    client_alice.post(
        reverse("notifications:events", args=[channel.pk]),
        {f"{prefix}-events": ["trade_closed"], f"{prefix}-is_enabled": "on"},
    )
    channel.refresh_from_db()
    assert channel.events == ["trade_closed"]
    assert channel.is_enabled
    client_alice.post(reverse("notifications:events", args=[channel.pk]), {f"{prefix}-events": ["bogus"]})
    channel.refresh_from_db()
    assert channel.events == ["trade_closed"]


def test_send_a_test_message_and_see_it_in_the_log(client_alice, channels, telegram):
    channel = channels["telegram"]
    client_alice.post(reverse("notifications:test", args=[channel.pk]))
    row = Notification.objects.get(channel=channel, event="test")
    assert notification_deliver(notification_id=row.pk).status == "sent"
    assert telegram.sent(CHAT_ID)[0]["text"].startswith("Test message from Axisor")
    log = client_alice.get(reverse("notifications:log", args=[channel.pk]))
    assert log.status_code == 200
    assert b"Test message from Axisor" in log.content
    assert DeliveryLog.objects.filter(channel=channel, status="sent").count() == 1


def test_other_users_channels_are_not_found(client_alice, bob):
    theirs = Channel.objects.create(owner=bob, kind="email", name="b", address="bob@example.com", events=["test"])
    for name in ("log", "delete"):
        assert client_alice.get(reverse(f"notifications:{name}", args=[theirs.pk])).status_code == 404
    for name in ("test", "events", "link", "delete"):
        assert client_alice.post(reverse(f"notifications:{name}", args=[theirs.pk])).status_code == 404
    assert client_alice.get(f"/notifications/channels/{2**70}/log/").status_code == 404
    assert Channel.objects.filter(pk=theirs.pk).exists()
    assert not Notification.objects.exists()


def test_delete_a_channel(client_alice, channels):
    channel = channels["email"]
    assert client_alice.get(reverse("notifications:delete", args=[channel.pk])).status_code == 200
    client_alice.post(reverse("notifications:delete", args=[channel.pk]))
    assert not Channel.objects.filter(pk=channel.pk).exists()


def test_the_bot_webhook_needs_its_secret_and_handles_an_update_once(settings, alice, telegram):
    url = reverse("notifications:telegram-webhook")
    update = {"update_id": 77, "message": {"chat": {"id": CHAT_ID}, "text": "/help"}}
    Channel.objects.create(owner=alice, kind="telegram", name="tg", address=str(CHAT_ID), verified=True)
    client = Client()
    assert client.post(url, json.dumps(update), content_type="application/json").status_code == 404
    settings.TELEGRAM_WEBHOOK_SECRET = "hook-secret-123"
    headers = {"X-Telegram-Bot-Api-Secret-Token": "wrong"}
    assert client.post(url, json.dumps(update), content_type="application/json", headers=headers).status_code == 404
    headers = {"X-Telegram-Bot-Api-Secret-Token": "hook-secret-123"}
    for _ in range(2):
        assert client.post(url, json.dumps(update), content_type="application/json", headers=headers).status_code == 200
    assert len(telegram.sent(CHAT_ID)) == 1
    assert client.post(url, "{not json", content_type="application/json", headers=headers).status_code == 400
    assert client.post(url, "[1]", content_type="application/json", headers=headers).status_code == 400


def test_the_margin_warning_level_is_saved_and_bounded(client_alice, alice):
    from notifications.models import Preference

    client_alice.post(reverse("notifications:preferences"), {"margin_warning_percent": "12.5"})
    assert str(Preference.objects.get(user=alice).margin_warning_percent) == "12.50"
    for bad in ("0", "99", "x", ""):
        client_alice.post(reverse("notifications:preferences"), {"margin_warning_percent": bad})
    assert str(Preference.objects.get(user=alice).margin_warning_percent) == "12.50"
    assert b'value="12.50"' in client_alice.get(reverse("notifications:list")).content
