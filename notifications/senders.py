"""The three ways out: Telegram's Bot API, e-mail (Django's mail backend) and signed webhooks.

Every HTTP call has a timeout. Errors are classified for the delivery service: ``RetryAfterError`` (the receiver
said when: Telegram's ``retry_after``, HTTP 429 ``Retry-After``), ``TemporaryError`` (timeouts, connection errors,
5xx: retried with backoff, bounded) and ``PermanentError`` (any other refusal: not retried). Messages never carry the
request URL (the Bot API URL holds the token): only the status and the receiver's short description.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.mail import EmailMessage

from notifications.crypto import secret_decrypt


class DeliveryError(Exception):
    """A delivery attempt failed; ``str(exc)`` is safe to log and show (no secret, no URL)."""


class TemporaryError(DeliveryError):
    pass


class RetryAfterError(TemporaryError):
    def __init__(self, seconds: float, message: str) -> None:
        super().__init__(message)
        self.seconds = seconds


class PermanentError(DeliveryError):
    pass


# --- Telegram ---


def bot_token() -> str:
    """The bot token: the encrypted one in ``BotState`` when set (``manage.py telegram_bot --set-token``), else the
    ``TELEGRAM_BOT_TOKEN`` setting. Empty when Telegram is not configured."""
    from notifications.models import BotState

    stored = BotState.objects.filter(pk=1).values_list("token_encrypted", flat=True).first()
    if stored:
        return secret_decrypt(stored)
    return str(settings.TELEGRAM_BOT_TOKEN or "")


def telegram_call(method: str, payload: dict[str, Any], *, timeout: float | None = None) -> Any:  # noqa: ANN401
    """One Bot API call; returns its ``result``. Raises the errors above (never with the URL, which holds the token)."""
    token = bot_token()
    if not token:
        raise PermanentError("Telegram is not configured (no bot token).")
    url = f"{settings.TELEGRAM_API_BASE_URL.rstrip('/')}/bot{token}/{method}"
    try:
        response = requests.post(url, json=payload, timeout=timeout or settings.NOTIFY_HTTP_TIMEOUT)
    except requests.Timeout:
        raise TemporaryError(f"Telegram {method}: timed out") from None
    except requests.RequestException as exc:
        raise TemporaryError(f"Telegram {method}: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 200 and body.get("ok"):
        return body.get("result")
    description = str(body.get("description") or response.reason or "")[:150]
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    if response.status_code == 429:
        retry_after = params.get("retry_after") if params else None
        seconds = float(retry_after) if isinstance(retry_after, int | float) else 5.0
        raise RetryAfterError(seconds, f"Telegram {method}: 429 retry after {seconds:g} s")
    if response.status_code >= 500:
        raise TemporaryError(f"Telegram {method}: {response.status_code} {description}")
    raise PermanentError(f"Telegram {method}: {response.status_code} {description}")


def send_telegram(chat_id: str, text: str, *, reply_markup: dict[str, Any] | None = None) -> None:
    """Plain text (no parse mode: nothing to escape), cut to Telegram's 4096 characters."""
    payload: dict[str, Any] = {"chat_id": chat_id, "text": text[:4096], "disable_web_page_preview": True}
    if reply_markup is not None:
        payload["reply_markup"] = reply_markup
    telegram_call("sendMessage", payload)


# --- e-mail ---


def send_email(address: str, subject: str, body: str, *, idempotency_key: str) -> None:
    """Django's mail backend (console in the embedded default, SMTP in production, ``EMAIL_TIMEOUT`` bounded). The
    Message-ID is derived from the idempotency key, so a duplicate after a crash is recognisable by mail clients."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    message = EmailMessage(
        subject=subject[:200],
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"Message-ID": f"<{digest}@axisor.notifications>", "X-Axisor-Idempotency-Key": idempotency_key},
    )
    try:
        message.send(fail_silently=False)
    except (OSError, TimeoutError) as exc:
        raise TemporaryError(f"e-mail: {type(exc).__name__}") from None


# --- webhooks ---

SIGNATURE_HEADER = "X-Axisor-Signature"
TIMESTAMP_HEADER = "X-Axisor-Timestamp"
KEY_HEADER = "X-Axisor-Idempotency-Key"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``{timestamp}.{body}`` under the channel's secret (receivers recompute it and
    reject timestamps older than a few minutes)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _check_destination(url: str) -> None:
    """Refuse a webhook whose host resolves to a loopback, private, link-local or otherwise non-global address
    (a user must not make the server probe its own network), unless ``NOTIFY_WEBHOOK_ALLOW_PRIVATE`` (the embedded
    default, on one machine, allows it). The check runs at every send; a DNS answer that changes between this
    look-up and the connection is the residual risk (docs/notifications.md)."""
    if settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE:
        return
    parts = urlsplit(url)
    if not parts.hostname:
        raise PermanentError("webhook: no host in the URL")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TemporaryError("webhook: host name not resolved") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not address.is_global:
            raise PermanentError("webhook: the host is a private or local address")


def send_webhook(url: str, secret_encrypted: str, payload: dict[str, Any], *, idempotency_key: str) -> None:
    _check_destination(url)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        KEY_HEADER: idempotency_key,
        "User-Agent": "Axisor-Notifications/1",
    }
    if secret_encrypted:
        headers[SIGNATURE_HEADER] = webhook_signature(secret_decrypt(secret_encrypted), timestamp, body)
    try:
        response = requests.post(
            url, data=body, headers=headers, timeout=settings.NOTIFY_HTTP_TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        raise TemporaryError(f"webhook: {type(exc).__name__}") from None
    if 200 <= response.status_code < 300:
        return
    if response.status_code == 429:
        retry_after = response.headers.get("Retry-After", "")
        seconds = float(retry_after) if retry_after.isdigit() else 5.0
        raise RetryAfterError(seconds, f"webhook: 429 retry after {seconds:g} s")
    if response.status_code >= 500:
        raise TemporaryError(f"webhook: {response.status_code}")
    raise PermanentError(f"webhook: {response.status_code}")
