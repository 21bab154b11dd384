"""The Telegram bot through the fake Bot API: linking with a one-time code, read-only commands, actions, limits."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.models import AuditEntry, Automation, OrderIntent, TrackedTrade
from notifications.bot import poll_once
from notifications.models import BotCommandLog, BotState, Channel, TelegramLinkCode
from tests.automations.conftest import margin_guard

pytestmark = pytest.mark.django_db

CHAT = 5550001
STRANGER = 5550002


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()


@pytest.fixture
def linked(alice) -> Channel:
    return Channel.objects.create(
        owner=alice, kind="telegram", name="phone", address=str(CHAT), verified=True, events=["kill_switch"]
    )


def _say(telegram, chat: int, text: str) -> list[str]:
    before = len(telegram.sent(chat))
    telegram.feed_text(chat, text)
    poll_once(timeout=0)
    return [m["text"] for m in telegram.sent(chat)[before:]]


def _running_trade(account, trade_id: str = "t-1") -> TrackedTrade:
    return TrackedTrade.objects.create(
        account=account,
        trade_id=trade_id,
        origin="axisor",
        managed=True,
        state="running",
        side="buy",
        quantity=100,
        entry_price=Decimal(100000),
        margin=10000,
        leverage=Decimal(10),
        liquidation=Decimal(90909),
        pl=-120,
        last_seen_at=timezone.now(),
    )


def test_a_chat_is_linked_by_a_one_time_code_only(alice, telegram):
    channel = Channel.objects.create(owner=alice, kind="telegram", name="phone", events=["kill_switch"])
    link = TelegramLinkCode.objects.create(channel=channel)
    assert _say(telegram, STRANGER, "/start wrong-code") == []
    (reply,) = _say(telegram, CHAT, f"/start {link.code}")
    assert reply.startswith("Linked to Axisor as alice")
    channel.refresh_from_db()
    assert channel.address == str(CHAT)
    assert channel.verified
    # the code is spent: another chat cannot take the channel over
    assert _say(telegram, STRANGER, f"/start {link.code}") == []
    channel.refresh_from_db()
    assert channel.address == str(CHAT)
    # no link code is ever written to the command log
    assert not BotCommandLog.objects.filter(command__contains=link.code).exists()
    assert BotState.objects.get(pk=1).update_offset == telegram.next_update_id


def test_an_expired_code_links_nothing(alice, telegram):
    channel = Channel.objects.create(owner=alice, kind="telegram", name="phone")
    link = TelegramLinkCode.objects.create(channel=channel, expires_at=timezone.now() - timedelta(seconds=1))
    assert _say(telegram, CHAT, f"/start {link.code}") == []
    channel.refresh_from_db()
    assert not channel.verified


def test_an_unlinked_chat_gets_nothing(paper, telegram):
    _running_trade(paper)
    for command in ("/help", "/status", "/positions", "/close t-1", "/stopentries"):
        assert _say(telegram, STRANGER, command) == []
    telegram.feed_button(STRANGER, f"close:{TrackedTrade.objects.get().pk}:{int(timezone.now().timestamp())}")
    poll_once(timeout=0)
    assert telegram.sent() == []
    assert not OrderIntent.objects.exists()
    paper.refresh_from_db()
    assert not paper.kill_switch
    assert BotCommandLog.objects.filter(result="ignored: chat not linked").count() == 6


def test_read_only_commands(paper, linked, telegram):
    ExchangeAccount.objects.filter(pk=paper.pk).update(balance=123456)
    _running_trade(paper)
    guard = margin_guard(paper)
    closed = _running_trade(paper, "t-0")
    TrackedTrade.objects.filter(pk=closed.pk).update(state="closed", closed_at=timezone.now(), pl=500, opening_fee=7)
    (status,) = _say(telegram, CHAT, "/status")
    assert status == "paper [simulator]: 1 running trade(s), 1 active automation(s); entries allowed"
    (positions,) = _say(telegram, CHAT, "/positions")
    assert positions.startswith("t-1 paper: long 100 USD @ 100000")
    (balance,) = _say(telegram, CHAT, "/balance")
    assert balance.startswith("paper: 123456 sats")
    (pnl,) = _say(telegram, CHAT, "/pnl 7")
    assert pnl == "Last 7 day(s):\npaper: 1 closed, realised PnL 500 sats, opening fees 7 sats"
    assert _say(telegram, CHAT, "/pnl lots") == ["Usage: /pnl [days], days from 1 to 365."]
    (automations,) = _say(telegram, CHAT, "/automations")
    assert automations == f"#{guard.pk} guard (Margin Guard, paper): Active"
    (help_text,) = _say(telegram, CHAT, "/help")
    assert "/closeall" in help_text
    assert _say(telegram, CHAT, "/bogus") == ["Unknown command. /help lists them."]


def test_pause_resume_and_the_kill_switch(paper, linked, telegram, bob, make_account):
    guard = margin_guard(paper)
    bobs = margin_guard(make_account(bob, label="bobs"))
    assert _say(telegram, CHAT, f"/pause {guard.pk}") == [f"Automation #{guard.pk} “guard” paused."]
    assert Automation.objects.get(pk=guard.pk).status == "paused"
    assert _say(telegram, CHAT, f"/resume {guard.pk}") == [f"Automation #{guard.pk} “guard” resumed."]
    # someone else's automation is not found
    assert _say(telegram, CHAT, f"/pause {bobs.pk}")[0].startswith("Usage: /pause ID")
    assert Automation.objects.get(pk=bobs.pk).status == "active"
    (reply,) = _say(telegram, CHAT, "/stopentries")
    assert reply.startswith("Kill switch ON for 1 account(s)")
    paper.refresh_from_db()
    assert paper.kill_switch
    assert AuditEntry.objects.filter(account=paper, inputs__kill_switch=True).count() == 1
    _say(telegram, CHAT, "/startentries")
    paper.refresh_from_db()
    assert not paper.kill_switch


def test_close_asks_first_and_the_button_creates_one_protective_intent(paper, linked, telegram):
    trade = _running_trade(paper)
    (question,) = _say(telegram, CHAT, "/close t-1")
    assert question.startswith("Close trade t-1 on paper")
    assert not OrderIntent.objects.exists()
    data = telegram.sent(CHAT)[-1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    telegram.feed_button(CHAT, data)
    telegram.feed_button(CHAT, data)
    poll_once(timeout=0)
    intent = OrderIntent.objects.get()
    assert (intent.action, intent.trade_id, intent.protective, intent.account_id) == ("close", "t-1", True, paper.pk)
    texts = [m["text"] for m in telegram.sent(CHAT)]
    assert "Closing trade t-1: order queued." in texts
    assert "Trade t-1 is already being closed." in texts
    assert trade.pk


def test_a_portuguese_speaker_is_answered_in_portuguese(alice, paper, linked, telegram):
    alice.language = "pt-br"
    alice.save(update_fields=["language"])
    _running_trade(paper)
    (help_text,) = _say(telegram, CHAT, "/help")
    assert help_text.startswith("Comandos do bot Axisor:")
    (question,) = _say(telegram, CHAT, "/close t-1")
    assert question == "Fechar a operação t-1 em paper (long 100 USD @ 100000.0, PnL -120 sats)?"
    buttons = telegram.sent(CHAT)[-1]["reply_markup"]["inline_keyboard"][0]
    assert [b["text"] for b in buttons] == ["Confirmar", "Cancelar"]
    telegram.feed_button(CHAT, buttons[0]["callback_data"])
    poll_once(timeout=0)
    assert telegram.sent(CHAT)[-1]["text"] == "Fechando a operação t-1: ordem enfileirada."
    (unknown,) = _say(telegram, CHAT, "/nope")
    assert unknown == "Comando desconhecido. /help lista os comandos."
    # the request is audited like the web UI's, and shown in the reader's language
    entry = AuditEntry.objects.get(intent__trade_id="t-1", event="status")
    assert entry.message == "Close trade of trade t-1 requested (telegram)."
    assert entry.inputs["source"] == "telegram"


def test_an_expired_confirmation_does_nothing(paper, linked, telegram):
    trade = _running_trade(paper)
    telegram.feed_button(CHAT, f"close:{trade.pk}:{int(timezone.now().timestamp()) - 3600}")
    poll_once(timeout=0)
    assert not OrderIntent.objects.exists()
    assert telegram.sent(CHAT)[-1]["text"].startswith("This confirmation expired")


def test_closeall_closes_every_running_trade_once(paper, linked, telegram):
    _running_trade(paper, "t-1")
    _running_trade(paper, "t-2")
    (question,) = _say(telegram, CHAT, "/closeall")
    assert question == "Close all 2 running trade(s) on every account?"
    telegram.feed_button(CHAT, telegram.sent(CHAT)[-1]["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
    poll_once(timeout=0)
    assert sorted(OrderIntent.objects.values_list("trade_id", flat=True)) == ["t-1", "t-2"]


def test_commands_are_rate_limited(paper, linked, telegram, settings):
    settings.TELEGRAM_COMMANDS_PER_MINUTE = 3
    for _ in range(5):
        telegram.feed_text(CHAT, "/help")
    poll_once(timeout=0)
    assert len(telegram.sent(CHAT)) == 3
    assert BotCommandLog.objects.filter(result="rate limited").count() == 2


def test_malformed_updates_are_ignored(linked, telegram):
    from notifications.bot import handle_update

    for update in (
        {},
        {"message": "x"},
        {"message": {"chat": 1}},
        {"callback_query": {"data": 3}},
        {"message": {"chat": {"id": CHAT}, "text": 5}},
    ):
        handle_update(update)
    assert telegram.sent() == []


def test_the_bot_token_is_stored_encrypted_and_used(telegram, settings, monkeypatch, capsys):
    import io

    from django.core.management import call_command

    from notifications.senders import bot_token
    from tests.notifications.conftest import BOT_TOKEN

    settings.TELEGRAM_BOT_TOKEN = ""
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{BOT_TOKEN}\n"))
    call_command("telegram_bot", "--set-token")
    stored = BotState.objects.get(pk=1).token_encrypted
    assert stored
    assert BOT_TOKEN not in stored
    assert bot_token() == BOT_TOKEN
    assert BOT_TOKEN not in capsys.readouterr().out
    telegram.feed_text(STRANGER, "/help")
    call_command("telegram_bot", "--once")  # polls the fake server with the stored token
    assert BotState.objects.get(pk=1).update_offset == telegram.next_update_id
