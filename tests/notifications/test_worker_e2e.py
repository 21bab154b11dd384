"""End to end on PostgreSQL + Redis with a real Celery worker process (``-Q protective,celery,notify``): a guard
acts → one Telegram message at the fake Bot API, one e-mail in the (file) outbox, one signed webhook; a redelivered
task sends nothing twice; a bot ``/close`` with its confirm button closes exactly one trade; an unlinked chat gets
nothing. Skipped on the embedded default (its in-process transport cannot reach another process)."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from automations.models import OrderIntent, TrackedTrade
from notifications.bot import poll_once
from notifications.derive import notifications_create
from notifications.models import Channel, DeliveryLog, Notification
from notifications.tasks import notifications_enqueue
from tests.automations.conftest import margin_guard
from tests.automations.test_execution import _tick
from tests.automations.test_worker import _guarded_long
from tests.celery_worker import celery_worker
from tests.celery_worker import children as _children
from tests.celery_worker import wait_for as _wait_for
from tests.notifications.conftest import BOT_TOKEN, CHAT_ID, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: a worker process cannot share memory://"),
]


@pytest.fixture
def mail_dir(tmp_path: Path) -> Path:
    path = tmp_path / "mail"
    path.mkdir()
    return path


@pytest.fixture
def worker(sim, sim_network, telegram, mail_dir, tmp_path) -> Iterator[subprocess.Popen[bytes]]:
    """A worker on every queue, with the fake Bot API, a file outbox and short notification leases."""
    with celery_worker(
        sim,
        tmp_path,
        queues="protective,celery,notify",
        name="notify",
        TELEGRAM_API_BASE_URL=telegram.url,
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(mail_dir),
        NOTIFY_LEASE_SECONDS="8",
        NOTIFY_WEBHOOK_ALLOW_PRIVATE="true",  # the receiver listens on loopback
        NOTIFY_HTTP_TIMEOUT="6",
    ) as proc:
        yield proc


def _mails(mail_dir: Path) -> list[str]:
    return [p.read_text() for p in sorted(mail_dir.iterdir())]


def test_a_guard_that_acts_reaches_every_channel_once(
    paper, sim, exchange, telegram, receiver, channels, mail_dir, worker
):
    trade = _guarded_long(paper, exchange, "e2e-open-1")
    margin_guard(paper, threshold="5")
    (intent_id,) = _tick(sim, 95000)
    _wait_for(lambda: OrderIntent.objects.filter(pk=intent_id, state=OrderIntent.State.RECONCILED).exists())
    _wait_for(lambda: Notification.objects.filter(event="automation_acted", status="sent").count() == 3)

    (message,) = telegram.sent(CHAT_ID)
    assert trade.id in message["text"]
    (mail,) = _mails(mail_dir)
    assert "To: alice@example.com" in mail
    assert trade.id in mail
    (hook,) = receiver.requests
    stamp = hook.headers["X-Axisor-Timestamp"]
    expected = hmac.new(WEBHOOK_SECRET.encode(), stamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Axisor-Signature"] == f"sha256={expected}"

    # every task redelivered: nothing is sent twice
    notifications_enqueue(list(Notification.objects.values_list("pk", flat=True)))
    notifications_enqueue(list(Notification.objects.values_list("pk", flat=True)))
    time.sleep(3)
    assert len(telegram.sent()) == 1
    assert len(_mails(mail_dir)) == 1
    assert len(receiver.requests) == 1
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}


def test_bot_close_with_confirmation_closes_exactly_one_trade(paper, sim, exchange, telegram, channels, worker):
    trade = _guarded_long(paper, exchange, "e2e-open-2")
    other = _guarded_long(paper, exchange, "e2e-open-3")
    stranger = 999_001

    telegram.feed_text(stranger, f"/close {trade.id}")
    telegram.feed_text(stranger, "/positions")
    telegram.feed_text(CHAT_ID, f"/close {trade.id}")
    poll_once(timeout=0)
    assert telegram.sent(stranger) == []
    (question,) = telegram.sent(CHAT_ID)
    button = question["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    assert button.startswith("close:")

    # the stranger cannot press it; the owner presses it twice
    telegram.feed_button(stranger, button)
    telegram.feed_button(CHAT_ID, button)
    telegram.feed_button(CHAT_ID, button)
    poll_once(timeout=0)
    assert telegram.sent(stranger) == []

    _wait_for(lambda: TrackedTrade.objects.filter(trade_id=trade.id, state=TrackedTrade.State.CLOSED).exists())
    intents = OrderIntent.objects.filter(action="close", trade_id=trade.id)
    assert intents.count() == 1
    _wait_for(lambda: intents.filter(state=OrderIntent.State.RECONCILED).exists())
    assert [t.id for t in exchange.isolated_trades_running_list()] == [other.id]
    texts = [m["text"] for m in telegram.sent(CHAT_ID)]
    assert any(t.startswith(f"Closing trade {trade.id}") for t in texts)
    assert any(t == f"Trade {trade.id} is already being closed." for t in texts)
    # the close's outcome is then notified like any other (a manual action)
    _wait_for(lambda: any("A manual action acted" in m["text"] for m in telegram.sent(CHAT_ID)))


def test_a_worker_killed_mid_send_sends_at_most_once_per_attempt(alice, telegram, channels, worker):
    Channel.objects.exclude(kind="telegram").update(is_enabled=False)
    telegram.delay = 3.0  # the Bot API answers slowly: the worker dies with the request in flight
    (pk,) = notifications_create(owner_id=alice.pk, event="kill_switch", title="t", body="crash test", source="k")
    notifications_enqueue([pk])
    _wait_for(lambda: Notification.objects.filter(pk=pk, status="sending").exists())
    time.sleep(0.5)
    for child in _children(worker.pid):
        os.kill(child, signal.SIGKILL)
    telegram.delay = 0.0
    # redelivered at once (reject on worker lost), it waits for the lease, then claims attempt 2 and sends
    row = _wait_for(lambda: Notification.objects.filter(pk=pk, status="sent").first(), timeout=60)
    time.sleep(3)  # the first attempt's request, if it reached the server, is recorded by now
    assert row.attempts == 2
    copies = len(telegram.sent(CHAT_ID))
    assert 1 <= copies <= row.attempts  # docs/notifications.md: Telegram may show it twice, once per attempt
    (log,) = DeliveryLog.objects.filter(notification_id=pk)
    assert (log.attempt, log.status) == (2, "sent")
