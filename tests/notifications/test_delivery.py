"""From an automation's outcome to one message per channel: derivation, delivery, idempotency, retries, floods."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from automations.models import AuditEntry, OrderIntent
from automations.services.exchange_events import trade_event_apply
from automations.services.trades import account_reconcile, trade_closed_said
from lnmarkets.schemas import StreamTradeEvent
from notifications.delivery import notification_deliver
from notifications.derive import notifications_create
from notifications.models import Channel, DeliveryLog, Notification
from tests.automations.conftest import margin_guard
from tests.automations.test_execution import _run, _tick
from tests.notifications.conftest import BOT_TOKEN, CHAT_ID, WEBHOOK_SECRET, WEBHOOK_URL_TOKEN
from tests.notifications.test_bot import _running_trade

pytestmark = pytest.mark.django_db


def _deliver_all() -> list[str]:
    return [
        notification_deliver(notification_id=pk).status
        for pk in Notification.objects.order_by("id").values_list("pk", flat=True)
    ]


def _guard_acts(paper, sim, exchange) -> OrderIntent:
    exchange.isolated_trade_create(type="market", side="buy", quantity=100, leverage=Decimal(10), client_id="n-open-1")
    OrderIntent.objects.create(account=paper, action="open", client_id="n-open-1", state="reconciled")
    account_reconcile(account_id=paper.pk)
    margin_guard(paper, threshold="5")
    (intent_id,) = _tick(sim, 95000)
    return _run(intent_id)


def test_a_guard_that_acts_sends_one_message_per_channel(paper, sim, exchange, telegram, receiver, channels, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    intent = _guard_acts(paper, sim, exchange)
    assert intent.state == OrderIntent.State.RECONCILED
    rows = Notification.objects.filter(event="automation_acted")
    assert rows.count() == 3
    assert _deliver_all() == ["sent", "sent", "sent"]

    (message,) = telegram.sent(CHAT_ID)
    assert "“guard” acted: close trade on trade" in message["text"]
    assert intent.trade_id in message["text"]
    assert "\nPrice: 95000" in message["text"], message["text"]
    assert "\nPnL: -" in message["text"]  # a long closed at a loss
    assert "Account: paper (PAPER)" in message["text"]
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["alice@example.com"]
    assert intent.trade_id in mail.outbox[0].subject
    (hook,) = receiver.requests
    timestamp = hook.headers["X-Axisor-Timestamp"]
    expected = hmac.new(WEBHOOK_SECRET.encode(), timestamp.encode() + b"." + hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["X-Axisor-Signature"] == f"sha256={expected}"
    assert hook.payload["event"] == "automation_acted"
    assert hook.headers["X-Axisor-Idempotency-Key"] == hook.payload["idempotency_key"]

    # a redelivered task (or a second derivation) sends nothing twice
    assert set(_deliver_all()) == {"sent"}
    assert len(telegram.sent()) == 1
    assert len(mail.outbox) == 1
    assert len(receiver.requests) == 1
    entry = AuditEntry.objects.filter(intent=intent, event="reconcile", outcome="ok").get()
    from notifications.derive import notifications_from_audit

    assert notifications_from_audit(entry) == []
    # and no secret in any message, log line or row
    everything = [message["text"], mail.outbox[0].body, hook.body.decode()]
    everything += [d.detail for d in DeliveryLog.objects.all()]
    assert not any(WEBHOOK_SECRET in text or BOT_TOKEN in text or WEBHOOK_URL_TOKEN in text for text in everything)
    assert hook.token == f"/hook?token={WEBHOOK_URL_TOKEN}"  # the full URL was used
    assert WEBHOOK_SECRET not in Channel.objects.get(kind="webhook").secret_encrypted


def _closed(account, trade_id: str, reason: str, *, exit_price: str = "1", pnl: int = 0) -> AuditEntry:
    """The audit entry of a trade that closed without Axisor, as the reconciliation and the stream write it."""
    message, inputs = trade_closed_said(trade_id, reason, exit_price, pnl)
    return AuditEntry.objects.create(account=account, event="reconcile", outcome="info", message=message, inputs=inputs)


@pytest.mark.parametrize(
    ("event", "trade_fields", "title"),
    [
        ("stoploss", {"pl": -900, "exitPrice": 95000}, "Trade closed by its stop-loss: ev-1"),
        ("takeprofit", {"pl": 700, "exitPrice": 105000}, "Trade closed by its take-profit: ev-1"),
        ("liquidation", {"exitPrice": 90909}, "Trade liquidated: ev-1"),
        ("closed", {"pl": 5, "exitPrice": 100010}, "Trade closed outside Axisor: ev-1"),
    ],
)
def test_an_exchange_event_that_closes_a_trade_is_told_once(paper, channels, event, trade_fields, title):
    """The private stream's close (automations.services.exchange_events) reaches every channel, once."""
    _running_trade(paper, "ev-1")
    payload = {"pair": "btc_usd", "event": event, "trade": {"id": "ev-1", "closedAt": 1, "closingFee": 0}}
    payload["trade"].update(trade_fields)
    stream_event = StreamTradeEvent.model_validate(payload)
    assert trade_event_apply(paper.pk, stream_event) == "closed"
    assert trade_event_apply(paper.pk, stream_event) == "already"
    rows = Notification.objects.filter(event="trade_closed")
    assert sorted(rows.values_list("channel__kind", flat=True)) == ["email", "telegram", "webhook"]
    assert set(rows.values_list("title", "protective")) == {(title, True)}


def test_a_close_is_told_from_its_typed_fields_not_its_wording(paper, channels):
    """An entry that only reads like a stop-loss (no ``closed_reason``) is no trade close."""
    AuditEntry.objects.create(
        account=paper, event="reconcile", outcome="info", message="Trade abc-1 hit its stop-loss (exit 1, PnL 0 sats)."
    )
    assert not Notification.objects.exists()
    AuditEntry.objects.create(
        account=paper,
        event="reconcile",
        outcome="info",
        message="Something else entirely",
        inputs={"trade_id": "abc-2", "closed_reason": "takeprofit", "exit_price": "99000", "pnl": 12},
    )
    assert set(Notification.objects.values_list("title", flat=True)) == {"Trade closed by its take-profit: abc-2"}


def test_a_portuguese_speaker_is_told_in_portuguese(alice, paper, channels, telegram):
    alice.language = "pt-br"
    alice.save(update_fields=["language"])
    _closed(paper, "abc-3", "liquidation", exit_price="90909", pnl=-10000)
    row = Notification.objects.filter(event="trade_closed").first()
    assert row is not None
    assert row.title == "Operação liquidada: abc-3"
    assert row.body.splitlines() == [
        "Operação liquidada: abc-3",
        "Conta: paper (SIMULADA)",
        "A operação abc-3 foi liquidada (saída 90909, PnL -10000 sats).",
    ]
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id="r-2", protective=True)
    AuditEntry.objects.create(account=paper, intent=intent, event="order", outcome="rejected", message="400: no")
    assert Notification.objects.filter(event="action_failed").values_list("title", flat=True).first() == (
        "Ação falhou: fechar operação na operação r-2"
    )


def test_skips_and_decisions_notify_nobody(paper, channels):
    AuditEntry.objects.create(account=paper, event="skip", outcome="skipped", message="price too old")
    AuditEntry.objects.create(account=paper, event="decision", outcome="pending", message="close")
    assert not Notification.objects.exists()


def test_trade_closed_by_its_stoploss_is_told(paper, channels, telegram):
    _closed(paper, "abc-1", "stoploss", exit_price="90000", pnl=-5)
    rows = Notification.objects.filter(event="trade_closed")
    assert rows.count() == 3
    first = rows.first()
    assert first is not None
    assert first.title == "Trade closed by its stop-loss: abc-1"
    assert first.protective


def test_channel_preferences_filter_events(paper, channels):
    Channel.objects.filter(kind="email").update(events=["trade_closed"])
    AuditEntry.objects.create(
        account=paper, event="status", outcome="info", message="kill", inputs={"kill_switch": True}
    )
    assert sorted(Notification.objects.values_list("channel__kind", flat=True)) == ["telegram", "webhook"]


def test_an_unlinked_telegram_channel_gets_nothing(alice, paper):
    Channel.objects.create(owner=alice, kind="telegram", name="tg", address="", verified=False, events=["kill_switch"])
    AuditEntry.objects.create(account=paper, event="status", outcome="info", message="k", inputs={"kill_switch": True})
    assert not Notification.objects.exists()


def test_telegram_retry_after_is_honoured_and_bounded(alice, telegram, channels, settings):
    (pk,) = notifications_create(
        owner_id=alice.pk, event="kill_switch", title="t", body="b", source="x", channel_ids=[channels["telegram"].pk]
    )
    telegram.fail_next("sendMessage", 429, retry_after=7)
    outcome = notification_deliver(notification_id=pk)
    assert outcome.status == "pending"
    assert outcome.retry_in == 7
    row = Notification.objects.get(pk=pk)
    assert row.next_attempt_at > timezone.now() + timedelta(seconds=5)
    assert notification_deliver(notification_id=pk).status == "not_due"
    Notification.objects.filter(pk=pk).update(next_attempt_at=timezone.now())
    assert notification_deliver(notification_id=pk).status == "sent"
    assert len(telegram.sent()) == 1
    assert list(DeliveryLog.objects.order_by("id").values_list("status", flat=True)) == ["pending", "sent"]

    # a failing receiver is retried a bounded number of times, then the row fails
    settings.NOTIFY_MAX_ATTEMPTS = 3
    (pk2,) = notifications_create(
        owner_id=alice.pk, event="kill_switch", title="t", body="b", source="y", channel_ids=[channels["telegram"].pk]
    )
    telegram.fail_next("sendMessage", 500, count=5)
    statuses = []
    for _ in range(5):
        Notification.objects.filter(pk=pk2).update(next_attempt_at=timezone.now())
        statuses.append(notification_deliver(notification_id=pk2).status)
    assert statuses == ["pending", "pending", "failed", "failed", "failed"]
    assert Notification.objects.get(pk=pk2).attempts == 3


def test_a_crash_mid_send_is_claimed_again_only_after_the_lease(alice, telegram, channels, settings):
    (pk,) = notifications_create(
        owner_id=alice.pk, event="kill_switch", title="t", body="b", source="z", channel_ids=[channels["telegram"].pk]
    )
    # a claimant that died after its claim
    Notification.objects.filter(pk=pk).update(status="sending", attempts=1, claimed_at=timezone.now())
    assert notification_deliver(notification_id=pk).status == "in_flight"
    assert telegram.sent() == []
    Notification.objects.filter(pk=pk).update(
        claimed_at=timezone.now() - timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1)
    )
    assert notification_deliver(notification_id=pk).status == "sent"
    assert Notification.objects.get(pk=pk).attempts == 2
    assert len(telegram.sent()) == 1


def test_a_flood_is_grouped_into_one_summary_and_nothing_is_lost(alice, paper, telegram, channels, settings):
    Channel.objects.exclude(kind="telegram").update(is_enabled=False)
    for n in range(40):
        _closed(paper, f"t-{n}", "liquidation", pnl=-1)
    statuses = _deliver_all()
    assert statuses.count("sent") == settings.NOTIFY_BURST
    assert statuses.count("held") == 40 - settings.NOTIFY_BURST
    assert len(telegram.sent()) == settings.NOTIFY_BURST
    # a minute later the held ones go out as one summary that lists every one of them
    Notification.objects.filter(held=True).update(next_attempt_at=timezone.now())
    Notification.objects.filter(status="sent").update(claimed_at=timezone.now() - timedelta(seconds=61))
    statuses = _deliver_all()
    assert statuses.count("sent") >= 1
    messages = telegram.sent()
    assert len(messages) == settings.NOTIFY_BURST + 1
    summary = messages[-1]["text"]
    assert summary.startswith(f"{40 - settings.NOTIFY_BURST} notifications in the last minute")
    for n in range(settings.NOTIFY_BURST, 40):
        assert f"Trade liquidated: t-{n}\n" in summary + "\n"
    assert Notification.objects.filter(status="grouped").count() == 40 - settings.NOTIFY_BURST
    assert not Notification.objects.filter(status__in=["pending", "sending", "failed"]).exists()


def test_held_rows_schedule_one_summary_task_per_channel(alice, paper, telegram, channels, monkeypatch):
    from django.core.cache import cache

    from notifications import tasks

    cache.clear()
    Channel.objects.exclude(kind="telegram").update(is_enabled=False)
    scheduled: list[tuple[list[int], float]] = []
    monkeypatch.setattr(tasks, "notifications_enqueue", lambda ids, countdown=0: scheduled.append((ids, countdown)))
    for n in range(10):
        _closed(paper, f"z-{n}", "liquidation")
    for pk in Notification.objects.order_by("id").values_list("pk", flat=True):
        tasks.notification_deliver_task.apply(args=(pk,))
    assert len(telegram.sent()) == 3
    assert Notification.objects.filter(held=True, status="pending").count() == 7
    (only,) = scheduled  # one delayed task for the channel's summary, not one per held row
    assert 55 <= only[1] <= 61


@pytest.mark.parametrize(
    ("fields", "event", "title"),
    [
        (
            {"event": "error", "outcome": "error", "message": "LN Markets refused the credentials."},
            "credentials",
            "Credentials rejected: automations of “paper (PAPER)” paused",
        ),
        (
            {"event": "status", "outcome": "error", "message": "3 consecutive order failures: new entries halted."},
            "action_failed",
            "New entries halted on “paper (PAPER)”",
        ),
        (
            {"event": "status", "outcome": "info", "message": "Kill switch…", "inputs": {"kill_switch": False}},
            "kill_switch",
            "Kill switch off for “paper (PAPER)”",
        ),
        (
            {
                "event": "reconcile",
                "outcome": "info",
                "message": "Trade q-1 was closed outside Axisor (exit —, PnL 0).",
                "inputs": {"trade_id": "q-1", "closed_reason": "outside", "exit_price": None, "pnl": 0},
            },
            "trade_closed",
            "Trade closed outside Axisor: q-1",
        ),
    ],
)
def test_account_level_outcomes_are_told(paper, channels, fields, event, title):
    AuditEntry.objects.create(account=paper, **fields)
    assert set(Notification.objects.values_list("event", "title")) == {(event, title)}


def test_a_rejected_action_is_told_and_an_acceptance_alone_is_not(paper, channels):
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id="r-1", protective=True)
    AuditEntry.objects.create(account=paper, intent=intent, event="order", outcome="ok", message="accepted")
    AuditEntry.objects.create(account=paper, intent=intent, event="order", outcome="unknown", message="unknown")
    assert not Notification.objects.exists()
    AuditEntry.objects.create(account=paper, intent=intent, event="order", outcome="rejected", message="400: no")
    titles = set(Notification.objects.values_list("title", "protective"))
    assert titles == {("Action failed: close trade on trade r-1", True)}


def test_a_summary_never_cuts_a_line_off(alice, paper, telegram, channels, settings):
    Channel.objects.exclude(kind="telegram").update(is_enabled=False)
    long_id = "x" * 150
    for n in range(40):
        _closed(paper, f"{long_id}{n:02d}", "liquidation")
    _deliver_all()
    for _ in range(3):  # each window, a summary of what fits in one message
        Notification.objects.filter(held=True, status="pending").update(next_attempt_at=timezone.now())
        Notification.objects.filter(status="sent").update(claimed_at=timezone.now() - timedelta(seconds=61))
        for pk in Notification.objects.filter(held=True, status="pending").values_list("pk", flat=True)[:1]:
            notification_deliver(notification_id=pk)
    texts = [m["text"] for m in telegram.sent()]
    assert all(len(text) <= 4096 for text in texts)
    for n in range(40):
        assert sum(f"{long_id}{n:02d}\n" in text + "\n" for text in texts) == 1
    assert not Notification.objects.filter(status="pending").exists()


def test_a_channel_disabled_after_the_fact_gets_nothing(alice, telegram, channels):
    (pk,) = notifications_create(
        owner_id=alice.pk, event="kill_switch", title="t", body="b", source="d", channel_ids=[channels["telegram"].pk]
    )
    Channel.objects.filter(pk=channels["telegram"].pk).update(is_enabled=False)
    assert notification_deliver(notification_id=pk).status == "failed"
    assert telegram.sent() == []
    assert DeliveryLog.objects.get(notification_id=pk).detail == "channel disabled or not linked"


def test_the_global_kill_switch_is_told_to_every_user(alice, bob, paper, make_account, channels):
    from automations.services.management import global_kill_switch_set

    make_account(bob, label="bobs")
    Channel.objects.create(owner=bob, kind="email", name="b", address="bob@example.com", events=["kill_switch"])
    global_kill_switch_set(on=True, reason="exchange incident")
    rows = Notification.objects.filter(event="kill_switch")
    assert rows.count() == 4  # alice's three channels and bob's one
    assert {r.title for r in rows} == {"Global kill switch ON"}
    assert all("Reason: exchange incident" in r.body for r in rows)
    global_kill_switch_set(on=False)
    assert Notification.objects.filter(title="Global kill switch off").count() == 4


def test_a_webhook_to_a_private_address_is_refused_unless_allowed(alice, receiver, channels, settings):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    ids = notifications_create(
        owner_id=alice.pk, event="kill_switch", title="t", body="b", source="p", channel_ids=[channels["webhook"].pk]
    )
    assert notification_deliver(notification_id=ids[0]).status == "failed"
    assert receiver.requests == []
    assert DeliveryLog.objects.get().detail == "webhook: the host is a private or local address"


def test_no_token_in_any_log_line_or_delivery_detail_when_telegram_fails(alice, channels, telegram, settings, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    settings.NOTIFY_MAX_ATTEMPTS = 1
    (pk,) = notifications_create(
        owner_id=alice.pk, event="kill_switch", title="t", body="b", source="c", channel_ids=[channels["telegram"].pk]
    )
    settings.TELEGRAM_API_BASE_URL = "http://127.0.0.1:9"  # nothing listens: the error text would hold the URL
    assert notification_deliver(notification_id=pk).status == "failed"
    detail = DeliveryLog.objects.get(notification_id=pk).detail
    assert detail == "Telegram sendMessage: ConnectionError"
    assert BOT_TOKEN not in caplog.text
    assert BOT_TOKEN not in Notification.objects.get(pk=pk).error


# --- batches (issue #14: a crash's notifications leave as fast as its closes) ---------------------------------------


def test_notifications_queued_together_leave_in_batches_and_later_ones_alone(monkeypatch, settings):
    from axisor_bus.side_by_side import sends_grouped
    from notifications import tasks

    settings.DELIVERY_BATCH = 3  # the order batches' size: a batch of closes, then the batch of their notifications
    settings.DELIVERY_THREADS = 2
    sent: list[tuple[str, object, float]] = []

    def recorder(name: str):  # noqa: ANN202
        def apply_async(*, args, queue, countdown=0, **options):  # noqa: ANN001, ANN202, ARG001
            assert queue == tasks.NOTIFY_QUEUE
            sent.append((name, args[0], countdown))

        return apply_async

    monkeypatch.setattr(tasks.notification_deliver_task, "apply_async", recorder("one"))
    monkeypatch.setattr(tasks.notifications_deliver_task, "apply_async", recorder("batch"))
    tasks.notifications_enqueue([1, 2, 3, 4])
    assert sent == [("batch", [1, 2, 3], 0), ("one", 4, 0)]
    sent.clear()
    with sends_grouped():  # a batch of closes queues each close's notification as its transaction commits
        for pk in (5, 6, 7):
            tasks.notifications_enqueue([pk])
        tasks.notifications_enqueue([8], countdown=30)  # a later one is not held
        assert sent == [("one", 8, 30)]
    assert sent == [("one", 8, 30), ("batch", [5, 6, 7], 0)]


def test_a_batch_of_notifications_retries_each_alone_and_fails_when_one_raised(alice, paper, telegram, monkeypatch):
    from notifications import tasks

    scheduled: list[tuple[list[int], float]] = []
    monkeypatch.setattr(tasks, "notifications_enqueue", lambda ids, countdown=0: scheduled.append((ids, countdown)))
    outcomes = {1: None, 2: 4.0, 3: RuntimeError("boom"), 4: None}
    delivered: list[int] = []

    def deliver(notification_id: int) -> float | None:
        outcome = outcomes[notification_id]
        if isinstance(outcome, Exception):
            raise outcome
        delivered.append(notification_id)
        return outcome

    monkeypatch.setattr(tasks, "_deliver", deliver)
    with pytest.raises(tasks.NotificationsBatchError, match=r"\[3\]"):
        tasks.notifications_deliver_task.run([1, 2, 3, 4])
    assert sorted(delivered) == [1, 2, 4]
    assert scheduled == [([2], 4.0)]


def test_a_batch_delivers_real_notifications_once(alice, paper, telegram, channels):
    from notifications import tasks

    Channel.objects.exclude(kind="telegram").update(is_enabled=False)
    for n in range(3):
        _closed(paper, f"b-{n}", "liquidation")
    ids = list(Notification.objects.order_by("id").values_list("pk", flat=True))
    assert len(ids) == 3
    tasks.notifications_deliver_task.run([*ids, ids[0]])
    tasks.notifications_deliver_task.run(ids)  # redelivered: nothing is sent twice
    assert len(telegram.sent()) == 3
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}


def test_a_failed_read_of_the_channels_fails_the_writers_transaction_and_a_wording_error_does_not(
    paper, channels, monkeypatch, caplog
):
    from django.db import DatabaseError, transaction

    from notifications import derive

    def broken_read(*args, **kwargs):
        raise DatabaseError("the channels' read failed")

    # the read is a statement of the writer's transaction: swallowed, PostgreSQL would roll the COMMIT back silently
    monkeypatch.setattr(derive, "channels_wanting", broken_read)
    with pytest.raises(DatabaseError), transaction.atomic():
        _closed(paper, "db-1", "stoploss")
    assert not AuditEntry.objects.filter(inputs__trade_id="db-1").exists()
    monkeypatch.undo()

    # the wording runs in its savepoint: its error is logged and the outcome it reports is kept
    def broken_wording(entry):
        raise ValueError("wording failed")

    monkeypatch.setattr(derive, "classify", broken_wording)
    with transaction.atomic():
        entry = _closed(paper, "py-1", "stoploss")
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert not Notification.objects.filter(idempotency_key__contains=f"audit{entry.pk}").exists()
    assert f"notifications for audit entry {entry.pk} not derived" in caplog.text
