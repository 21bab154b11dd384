"""The Telegram bot: linking a chat with ``/start CODE`` and the commands of a linked chat.

Only chats linked to a user (``Channel.kind == telegram``, ``verified``) are answered; any other chat gets nothing
(not even an error). Commands are rate limited per chat and every one is recorded in ``BotCommandLog`` (the command
name and its result, never a link code). Trade actions go through the same path as the web UI and the engine: an
``OrderIntent`` (``close``, protective) queued with ``automations.tasks.order_intent_enqueue``; the kill switch and
pause/resume through ``automations.services.management``. ``/close`` and ``/closeall`` ask first, with an inline
button whose data expires after ``CONFIRM_TTL`` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import ExchangeAccount, User
from accounts.preferences import user_language
from automations.models import Automation, OrderIntent, TrackedTrade
from automations.services import intents, management
from config.params import parse_id
from notifications import senders
from notifications.models import BotCommandLog, BotState, Channel, TelegramLinkCode

logger = logging.getLogger(__name__)

CONFIRM_TTL = 300
HELP = gettext_noop(
    "Axisor bot commands:\n"
    "/status: accounts, switches and counts\n"
    "/positions: running trades\n"
    "/balance: balances\n"
    "/pnl [days]: realised PnL (default 1 day)\n"
    "/automations: your automations and their ids\n"
    "/pause ID, /resume ID: pause or resume an automation\n"
    "/stopentries, /startentries: every account's kill switch on or off\n"
    "/close TRADE: close one trade (asks first)\n"
    "/closeall: close every running trade (asks first)\n"
    "/help: this list"
)
NO_ACCOUNT = gettext_noop("No exchange account yet.")


@dataclass(frozen=True)
class Reply:
    text: str
    markup: dict[str, Any] | None = None


def _linked_user(chat_id: str) -> User | None:
    channel = (
        Channel.objects.filter(kind=Channel.Kind.TELEGRAM, address=chat_id, verified=True, is_enabled=True)
        .select_related("owner")
        .order_by("id")
        .first()
    )
    return channel.owner if channel is not None else None


def _rate_limited(chat_id: str) -> bool:
    key = f"notifications:bot:rate:{chat_id}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        count = cache.incr(key)
    except ValueError:
        count = 1
    return count > settings.TELEGRAM_COMMANDS_PER_MINUTE


def _record(chat_id: str, user: User | None, command: str, result: str) -> None:
    BotCommandLog.objects.create(chat_id=chat_id[:40], user=user, command=command[:100], result=result[:300])


def link_chat(chat_id: str, code: str) -> Channel | None:
    """Link ``chat_id`` to the channel of an unused, unexpired one-time ``code`` (compare-and-set on ``used_at``)."""
    now = timezone.now()
    with transaction.atomic():
        link = TelegramLinkCode.objects.select_for_update().filter(code=code, used_at__isnull=True).first()
        if link is None or link.expires_at < now:
            return None
        if not TelegramLinkCode.objects.filter(pk=link.pk, used_at__isnull=True).update(used_at=now):
            return None
        Channel.objects.filter(pk=link.channel_id).update(address=chat_id, verified=True)
        return Channel.objects.get(pk=link.channel_id)


# --- read-only commands ---


def _accounts(user: User) -> list[ExchangeAccount]:
    return list(ExchangeAccount.objects.filter(owner=user).order_by("label"))


def cmd_status(user: User, args: list[str]) -> Reply:
    lines = []
    for account in _accounts(user):
        running = TrackedTrade.objects.filter(account=account, state=TrackedTrade.State.RUNNING).count()
        active = Automation.objects.filter(account=account, status=Automation.Status.ACTIVE).count()
        flags = []
        if account.kill_switch:
            flags.append(_("kill switch ON"))
        if account.entries_halted:
            flags.append(_("entries halted (%(reason)s)") % {"reason": account.halt_reason})
        if not account.is_enabled:
            flags.append(_("disabled"))
        state = ", ".join(flags) or _("entries allowed")
        lines.append(
            _("%(account)s [%(network)s]: %(running)s running trade(s), %(active)s active automation(s); %(state)s")
            % {
                "account": account.label,
                "network": account.network,
                "running": running,
                "active": active,
                "state": state,
            }
        )
    return Reply("\n".join(lines) or _(NO_ACCOUNT))


def cmd_positions(user: User, args: list[str]) -> Reply:
    trades = TrackedTrade.objects.filter(account__owner=user, state=TrackedTrade.State.RUNNING).select_related(
        "account"
    )
    lines = [
        _("%(trade)s %(account)s: %(side)s %(quantity)s USD @ %(entry)s, liq %(liquidation)s, PnL %(pnl)s sats")
        % {
            "trade": t.trade_id,
            "account": t.account.label,
            "side": _("long") if t.side == "buy" else _("short"),
            "quantity": t.quantity,
            "entry": t.entry_price,
            "liquidation": t.liquidation,
            "pnl": t.pl,
        }
        for t in trades.order_by("account__label", "first_seen_at")[:30]
    ]
    return Reply("\n".join(lines) or _("No running trade."))


def cmd_balance(user: User, args: list[str]) -> Reply:
    lines = [
        f"{a.label}: {'—' if a.balance is None else _('%(n)s sats') % {'n': a.balance}}"
        + (
            " " + _("(at %(time)s UTC)") % {"time": f"{a.balance_updated_at:%Y-%m-%d %H:%M}"}
            if a.balance_updated_at
            else ""
        )
        for a in _accounts(user)
    ]
    return Reply("\n".join(lines) or _(NO_ACCOUNT))


def cmd_pnl(user: User, args: list[str]) -> Reply:
    days = 1
    if args:
        if not args[0].isdigit() or not 1 <= int(args[0]) <= 365:
            return Reply(_("Usage: /pnl [days], days from 1 to 365."))
        days = int(args[0])
    since = timezone.now() - timedelta(days=days)
    lines = []
    for account in _accounts(user):
        totals = TrackedTrade.objects.filter(
            account=account, state=TrackedTrade.State.CLOSED, closed_at__gte=since
        ).aggregate(pnl=Coalesce(Sum("pl"), 0), fees=Coalesce(Sum("opening_fee"), 0), n=Count("id"))
        lines.append(
            _("%(account)s: %(n)s closed, realised PnL %(pnl)s sats, opening fees %(fees)s sats")
            % {"account": account.label, "n": totals["n"], "pnl": totals["pnl"], "fees": totals["fees"]}
        )
    head = _("Last %(days)s day(s):") % {"days": days}
    return Reply(head + "\n" + ("\n".join(lines) or _(NO_ACCOUNT)))


def cmd_automations(user: User, args: list[str]) -> Reply:
    rows = Automation.objects.filter(account__owner=user).select_related("account").order_by("account__label", "id")
    lines = [
        f"#{a.pk} {a.name} ({_(a.get_kind_display())}, {a.account.label}): {_(a.get_status_display())}"
        for a in rows[:50]
    ]
    return Reply("\n".join(lines) or _("No automation yet."))


# --- actions ---


def _automation_arg(user: User, args: list[str]) -> Automation | None:
    automation_id = parse_id(args[0].lstrip("#")) if len(args) == 1 else None
    if automation_id is None:
        return None
    return Automation.objects.filter(pk=automation_id, account__owner=user).first()


def _set_automation(user: User, args: list[str], *, pause: bool) -> Reply:
    automation = _automation_arg(user, args)
    if automation is None:
        return Reply(_("Usage: /%(command)s ID (ids from /automations).") % {"command": "pause" if pause else "resume"})
    try:
        if pause:
            management.automation_pause(automation=automation)
        else:
            management.automation_resume(automation=automation)
    except management.AutomationStateError as exc:
        return Reply(str(exc))
    template = _("Automation #%(id)s “%(name)s” paused.") if pause else _("Automation #%(id)s “%(name)s” resumed.")
    return Reply(template % {"id": automation.pk, "name": automation.name})


def cmd_pause(user: User, args: list[str]) -> Reply:
    return _set_automation(user, args, pause=True)


def cmd_resume(user: User, args: list[str]) -> Reply:
    return _set_automation(user, args, pause=False)


def _kill_switch(user: User, *, on: bool) -> Reply:
    accounts = _accounts(user)
    for account in accounts:
        if account.kill_switch != on:
            management.account_kill_switch_set(account=account, on=on)
    if not accounts:
        return Reply(_(NO_ACCOUNT))
    if on:
        text = _("Kill switch ON for %(n)s account(s): no new entries; closes and protection still run.")
    else:
        text = _("Kill switch off for %(n)s account(s): entries resume after the next reconciliation.")
    return Reply(text % {"n": len(accounts)})


def cmd_stopentries(user: User, args: list[str]) -> Reply:
    return _kill_switch(user, on=True)


def cmd_startentries(user: User, args: list[str]) -> Reply:
    return _kill_switch(user, on=False)


def _confirm_markup(action: str, target: str) -> dict[str, Any]:
    data = f"{action}:{target}:{int(time.time())}"
    return {
        "inline_keyboard": [
            [{"text": _("Confirm"), "callback_data": data}, {"text": _("Cancel"), "callback_data": "cancel"}],
        ]
    }


def cmd_close(user: User, args: list[str]) -> Reply:
    if len(args) != 1:
        return Reply(_("Usage: /close TRADE (trade ids from /positions)."))
    # trade ids are UUIDs or simulator ids: plain text, bounded
    trade = (
        TrackedTrade.objects.filter(account__owner=user, trade_id=args[0][:64], state=TrackedTrade.State.RUNNING)
        .select_related("account")
        .first()
    )
    if trade is None:
        return Reply(_("No running trade with that id."))
    text = _("Close trade %(trade)s on %(account)s (%(side)s %(quantity)s USD @ %(entry)s, PnL %(pnl)s sats)?") % {
        "trade": trade.trade_id,
        "account": trade.account.label,
        "side": _("long") if trade.side == "buy" else _("short"),
        "quantity": trade.quantity,
        "entry": trade.entry_price,
        "pnl": trade.pl,
    }
    return Reply(text, _confirm_markup("close", str(trade.pk)))


def cmd_closeall(user: User, args: list[str]) -> Reply:
    count = TrackedTrade.objects.filter(account__owner=user, state=TrackedTrade.State.RUNNING).count()
    if count == 0:
        return Reply(_("No running trade."))
    text = _("Close all %(n)s running trade(s) on every account?") % {"n": count}
    return Reply(text, _confirm_markup("closeall", str(user.pk)))


def close_trade(user: User, tracked_trade_id: int, *, chat_id: str) -> tuple[str, int | None]:
    """Ask for (at most one) close of a running trade of ``user``, exactly as the web UI does
    (``automations.services.intents.request``: the intent, its audit entry, the enqueue after the commit)."""
    with transaction.atomic():
        trade = (
            TrackedTrade.objects.select_for_update()
            .filter(pk=tracked_trade_id, account__owner=user)
            .select_related("account")
            .first()
        )
        if trade is None or trade.state != TrackedTrade.State.RUNNING:
            return _("That trade is no longer running."), None
        busy = (
            OrderIntent.objects.filter(account=trade.account, action=OrderIntent.Action.CLOSE, trade_id=trade.trade_id)
            .exclude(state=OrderIntent.State.REJECTED)
            .exists()
        )
        if busy:
            return _("Trade %(trade)s is already being closed.") % {"trade": trade.trade_id}, None
        intent = intents.request(
            trade.account, OrderIntent.Action.CLOSE, {}, trade_id=trade.trade_id, origin="telegram"
        )
    logger.info("close of trade %s requested from Telegram chat %s", trade.trade_id, chat_id)
    return _("Closing trade %(trade)s: order queued.") % {"trade": trade.trade_id}, intent.pk


def _callback(user: User, data: str, chat_id: str) -> str:
    if data == "cancel":
        return _("Cancelled.")
    parts = data.split(":")
    target = parse_id(parts[1]) if len(parts) == 3 else None
    stamp = parse_id(parts[2]) if len(parts) == 3 else None
    if target is None or stamp is None:
        return _("Unknown button.")
    action = parts[0]
    if time.time() - stamp > CONFIRM_TTL:
        return _("This confirmation expired: send the command again.")
    if action == "close":
        return close_trade(user, target, chat_id=chat_id)[0]
    if action == "closeall" and target == user.pk:
        ids = list(
            TrackedTrade.objects.filter(account__owner=user, state=TrackedTrade.State.RUNNING).values_list(
                "pk", flat=True
            )
        )
        results = [close_trade(user, pk, chat_id=chat_id) for pk in ids]
        queued = sum(1 for _, intent_id in results if intent_id is not None)
        text = _("Closing %(n)s trade(s): orders queued.") % {"n": queued}
        if len(ids) - queued:
            text += " " + _("%(n)s already closing or closed.") % {"n": len(ids) - queued}
        return text
    return _("Unknown button.")


COMMANDS: dict[str, Callable[[User, list[str]], Reply]] = {
    "/help": lambda user, args: Reply(_(HELP)),
    "/status": cmd_status,
    "/positions": cmd_positions,
    "/balance": cmd_balance,
    "/pnl": cmd_pnl,
    "/automations": cmd_automations,
    "/pause": cmd_pause,
    "/resume": cmd_resume,
    "/stopentries": cmd_stopentries,
    "/startentries": cmd_startentries,
    "/close": cmd_close,
    "/closeall": cmd_closeall,
}


def _reply(chat_id: str, reply: Reply) -> None:
    try:
        senders.send_telegram(chat_id, reply.text, reply_markup=reply.markup)
    except senders.DeliveryError as exc:
        logger.warning("bot reply to a chat not sent: %s", exc)


def handle_update(update: dict[str, Any]) -> None:
    """Process one Bot API update (a message or an inline button press)."""
    if not isinstance(update, dict):
        return
    callback = update.get("callback_query")
    if isinstance(callback, dict):
        _handle_callback(callback)
        return
    message = update.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
        return
    chat_id = str(message["chat"].get("id", ""))[:40]
    text = message.get("text")
    if not chat_id or not isinstance(text, str) or not text.startswith("/"):
        return
    words = "".join(c for c in text[:500] if c.isprintable() or c.isspace()).strip().split()
    if not words:
        return
    command = words[0].split("@", 1)[0].lower()[:40]
    args = words[1:6]
    if _rate_limited(chat_id):
        _record(chat_id, None, command, "rate limited")
        return
    if command == "/start":
        channel = link_chat(chat_id, args[0]) if len(args) == 1 else None
        if channel is None:
            _record(chat_id, None, command, "ignored: no valid link code")
            return
        _record(chat_id, channel.owner, command, f"linked to channel {channel.pk}")
        with translation.override(user_language(channel.owner)):
            linked = _("Linked to Axisor as %(user)s (channel “%(channel)s”).") % {
                "user": channel.owner.get_username(),
                "channel": channel.name,
            }
            _reply(chat_id, Reply(f"{linked}\n\n{_(HELP)}"))
        return
    user = _linked_user(chat_id)
    if user is None:
        _record(chat_id, None, command, "ignored: chat not linked")
        return
    handler = COMMANDS.get(command)
    with translation.override(user_language(user)):
        reply = handler(user, args) if handler is not None else Reply(_("Unknown command. /help lists them."))
    _record(chat_id, user, " ".join([command, *args]), reply.text.splitlines()[0] if reply.text else "")
    _reply(chat_id, reply)


def _handle_callback(callback: dict[str, Any]) -> None:
    message = callback.get("message")
    chat = message.get("chat") if isinstance(message, dict) else None
    if not isinstance(chat, dict):
        return
    chat_id = str(chat.get("id", ""))[:40]
    data = callback.get("data")
    if not chat_id or not isinstance(data, str):
        return
    if _rate_limited(chat_id):
        _record(chat_id, None, "button", "rate limited")
        return
    user = _linked_user(chat_id)
    if user is None:
        _record(chat_id, None, "button", "ignored: chat not linked")
        return
    with translation.override(user_language(user)):
        result = _callback(user, data[:64], chat_id)
    _record(chat_id, user, f"button {data[:40]}", result)
    try:
        senders.telegram_call("answerCallbackQuery", {"callback_query_id": str(callback.get("id", ""))[:64]})
    except senders.DeliveryError as exc:
        logger.warning("callback answer not sent: %s", exc)
    _reply(chat_id, Reply(result))


def poll_once(*, timeout: int = 25) -> int:
    """One long-polling round (``getUpdates``): process each update, then move the stored offset past it. An
    update is processed at least once; a crash before the offset is saved replays it (a close is guarded)."""
    state, _ = BotState.objects.get_or_create(pk=1)
    updates = senders.telegram_call(
        "getUpdates",
        {"offset": state.update_offset, "timeout": timeout, "allowed_updates": ["message", "callback_query"]},
        timeout=timeout + 10,
    )
    handled = 0
    for update in updates if isinstance(updates, list) else []:
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int):
            continue
        if update_id < state.update_offset:
            continue
        handle_update(update)
        state.update_offset = update_id + 1
        BotState.objects.filter(pk=1).update(update_offset=state.update_offset)
        handled += 1
    return handled
