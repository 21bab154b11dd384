"""Benchmark: 1,000 guards act on one tick → every notification delivered at a (fake, local) Telegram Bot API.

Setup (PostgreSQL + Redis on loopback, as in production): a bench database ``axisor_bench_notify``, the simulator in
its own process, a real ``celery worker -Q protective,celery,notify`` process, and in this process the fake Bot
API server of the tests (real HTTP). N users each own one exchange account with one running 10x long (liquidation
90 909) under a Margin Guard that closes at 5 % from liquidation, and one linked Telegram channel; one of them (the
whale) holds ``BENCH_FLOOD_TRADES`` (40) trades instead of one. One tick at 95 000 makes every guard act:
N − 1 + 40 close intents on the protective queue, then as many notifications on the notify queue. The whale's
channel gets ``NOTIFY_BURST`` (3) messages at once and the other 37 in one summary when its minute is over (the
flood rule); the bench checks that the messages name every one of its trades.

Latency of a notification = its arrival at the fake server − the moment the exchange's answer was recorded (the
``reconcile``/``ok`` audit entry the notification is derived from; both clocks are this machine's). Each user has
one message except the whale; the p99 is over the messages sent on their own (the summary's delay is printed).

Run: ``.venv/bin/python bench/notify.py`` (last line ``RESULT accounts=1000 notify_p99_ms=… delivered=… lost=0``).
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._postgres import PG, recreate_database  # noqa: E402 - needs the project root on sys.path
from bench._stack import (  # noqa: E402
    HOST,
    TOKEN,
    bench_environ,
    free_port,
    start_simulator,
    start_worker,
    stop,
    wait,
    wait_for_simulator,
)

BOT_TOKEN = "999:bench-bot-token"  # noqa: S105 - the fake Bot API's token
DB_NAME = os.environ.get("BENCH_NOTIFY_DB", "axisor_bench_notify")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
SIZE = int(os.environ.get("BENCH_ACCOUNTS", "1000"))
CONCURRENCY = os.environ.get("BENCH_WORKER_CONCURRENCY", "4")
# One of the accounts ("the whale") holds this many trades: its channel gets a flood, grouped by the flood rule.
FLOOD = int(os.environ.get("BENCH_FLOOD_TRADES", "40"))


def main() -> None:  # noqa: C901, PLR0915 - a linear script
    from tests.notifications.fakes import FakeTelegram

    telegram = FakeTelegram(BOT_TOKEN)
    telegram.start()
    sim_port = free_port()
    bench_environ(f"{PG}/{DB_NAME}", REDIS, sim_port, TELEGRAM_API_BASE_URL=telegram.url, TELEGRAM_BOT_TOKEN=BOT_TOKEN)
    recreate_database(DB_NAME)
    sim = start_simulator(sim_port)
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    from accounts import services as account_services
    from accounts.models import ExchangeAccount, User
    from automations.configs import config_to_json
    from automations.engine import MarginGuardConfig
    from automations.exchange import public_client
    from automations.models import Automation, OrderIntent, TrackedTrade
    from automations.services.evaluation import automations_evaluate_network, market_from_ticker
    from lnmarkets.client import RestClient
    from lnmarkets.credentials import Credentials, static_provider
    from lnmarkets.ratelimit import NullRateLimiter
    from lnmarkets.simulator.client import ControlClient
    from notifications.models import Channel, Notification

    control = ControlClient(f"http://{HOST}:{sim_port}", TOKEN)
    wait_for_simulator(control)
    worker = start_worker("protective,celery,notify", CONCURRENCY)
    try:
        control.freeze(True)
        control.set_price(100000)
        sim_accounts = [control.create_account(balance=10_000_000) for _ in range(SIZE)]

        def open_trades(item):  # noqa: ANN001, ANN202
            index, sim_account = item
            creds = Credentials(sim_account.key, sim_account.secret, sim_account.passphrase)
            client = RestClient(
                f"http://{HOST}:{sim_port}/v3", static_provider(creds), rate_limiter=NullRateLimiter(), timeout=10
            )
            trades = [
                client.isolated_trade_create(type="market", side="buy", quantity=100, leverage=Decimal(10))
                for _ in range(FLOOD if index == 0 else 1)
            ]
            client.close()
            return trades

        with ThreadPoolExecutor(8) as pool:
            trades_per_account = list(pool.map(open_trades, enumerate(sim_accounts)))
        User.objects.bulk_create(User(username=f"trader-{i}", password="!") for i in range(SIZE))  # noqa: S106
        users = list(User.objects.filter(username__startswith="trader-").order_by("id"))
        accounts = [
            account_services.exchange_account_create(
                owner=user,
                label="main",
                network="simulator",
                api_key=sim_account.key,
                api_secret=sim_account.secret,
                passphrase=sim_account.passphrase,
                verification=account_services.Verification(permissions=tuple(sim_account.scopes)),
            )
            for user, sim_account in zip(users, sim_accounts, strict=True)
        ]
        ExchangeAccount.objects.update(balance=10_000_000)
        TrackedTrade.objects.bulk_create(
            TrackedTrade(
                account=account,
                trade_id=t.id,
                origin="axisor",
                managed=True,
                state="running",
                side=t.side,
                quantity=int(t.quantity),
                entry_price=t.entry_price or t.price,
                margin=int(t.margin),
                leverage=t.leverage,
                liquidation=t.liquidation,
                maintenance_margin=int(t.maintenance_margin),
                opening_fee=int(t.opening_fee),
                last_seen_at=timezone.now(),
            )
            for account, trades in zip(accounts, trades_per_account, strict=True)
            for t in trades
        )
        config = config_to_json(
            MarginGuardConfig(trigger="liquidation_distance", threshold=Decimal(5), action="close", cooldown_seconds=0)
        )
        Automation.objects.bulk_create(
            Automation(account=account, name="guard", kind="margin_guard", config=config) for account in accounts
        )
        Channel.objects.bulk_create(
            Channel(
                owner=user, kind="telegram", name="tg", address=str(user.pk), verified=True, events=["automation_acted"]
            )
            for user in users
        )

        control.set_price(95000)
        market = market_from_ticker(public_client("simulator").futures_ticker_get())
        assert market is not None
        started = time.monotonic()
        intents = automations_evaluate_network(network="simulator", market=market, now=timezone.now())
        print(f"tick: {len(intents)} close intents in {time.monotonic() - started:.1f} s", flush=True)
        closes = SIZE - 1 + FLOOD
        wait(
            lambda: OrderIntent.objects.filter(state="reconciled", action="close").count() >= closes, 600, "the closes"
        )
        print(f"{closes} closes reconciled after {time.monotonic() - started:.1f} s", flush=True)
        wait(lambda: len({m["chat_id"] for m in telegram.sent()}) >= SIZE, 300, "the notifications")
        whale = str(users[0].pk)
        # the whale's held notifications go out as one summary when its minute is over
        wait(lambda: len(telegram.sent(whale)) >= 4, 150, "the whale's summary")
        time.sleep(2)  # anything sent twice would arrive now
        by_chat: dict[str, list[float]] = {}
        for record in telegram.sent_records():
            by_chat.setdefault(str(record.payload["chat_id"]), []).append(record.at)
        rows = list(Notification.objects.filter(event="automation_acted", status="sent").select_related("channel"))
        latencies = sorted(
            (min(by_chat[row.channel.address]) - row.source_at.timestamp()) * 1000
            for row in rows
            if row.channel.address != whale and row.channel.address in by_chat
        )
        whale_texts = [m["text"] for m in telegram.sent(whale)]
        told = [t.id for t in trades_per_account[0] if any(t.id in text for text in whale_texts)]
        grouped = Notification.objects.filter(status="grouped").count()
        summaries = list(Notification.objects.filter(event="digest", status="sent"))
        summary_delay = max(((d.sent_at or d.created_at) - d.source_at).total_seconds() for d in summaries or [])
        delivered = sum(1 for chat in by_chat if chat != whale) + len(told)
        expected = SIZE - 1 + FLOOD
        duplicates = sum(len(times) - 1 for chat, times in by_chat.items() if chat != whale)
        lost = expected - delivered
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(
            f"accounts={SIZE} notifications={expected} sent_alone={len(rows)} grouped={grouped} "
            f"summaries={len(summaries)} whale_messages={len(whale_texts)} summary_delay_s={summary_delay:.0f} "
            f"notify_p50_ms={p50:.0f} max_ms={latencies[-1]:.0f} duplicates={duplicates}",
            flush=True,
        )
        print(f"RESULT accounts={SIZE} notify_p99_ms={p99:.0f} delivered={delivered} lost={lost}")
    finally:
        stop(worker, sim)
        telegram.stop()


if __name__ == "__main__":
    main()
