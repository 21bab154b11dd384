"""The embedded default in one process: Daphne serves HTTP and WebSockets; the simulator runs in a thread.

Started by ``manage.py run_embedded`` (``make run``). Production runs the same code as separate processes
(Daphne, Celery workers, Celery beat, the market feed) against PostgreSQL and Redis, and a real exchange.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Literal

from django.conf import settings
from django.utils import timezone

from accounts import services as account_services
from accounts.demo import demo_user_ensure
from accounts.models import ExchangeAccount, Network, User
from automations.configs import config_to_json
from automations.engine import MarginGuardConfig
from automations.models import Automation, OrderIntent
from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.ratelimit import InProcessRateLimiter
from lnmarkets.simulator import SimulatorConfig, start_in_thread
from lnmarkets.simulator.client import ControlClient

logger = logging.getLogger(__name__)

DEMO_SIM_USERNAME = "axisor-demo"
DEMO_ACCOUNT_LABEL = "Demo (paper)"
DEMO_BALANCE = 5_000_000
DEMO_TRADES: tuple[tuple[Literal["buy", "sell"], int, int], ...] = (
    ("buy", 500, 10),
    ("sell", 300, 5),
    ("buy", 200, 25),
)


def run(*, host: str, port: int, say: Callable[[str], object]) -> None:
    """Start the simulator, prepare the demo data, then serve until interrupted (Ctrl-C)."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    from config.asgi import application
    from config.var_dir import private_umask, secure_var_dir

    # var/ holds session keys, password hashes and the simulator's state: private to this user (issue #12).
    private_umask()
    secure_var_dir(Path(settings.VAR_DIR))
    if not settings.SIMULATOR_CONTROL_TOKEN:
        settings.SIMULATOR_CONTROL_TOKEN = secrets.token_urlsafe(24)
    sim = start_in_thread(
        SimulatorConfig(
            host=settings.SIMULATOR_HOST,
            port=settings.SIMULATOR_PORT,
            control_token=settings.SIMULATOR_CONTROL_TOKEN,
            rate_limits=True,
            auto_tick=True,
            state_file=str(Path(settings.VAR_DIR) / "simulator_state.json"),
            history_days=7,
        )
    )
    user, password = demo_user_ensure()
    demo_exchange_account_ensure(user=user, control=sim.control, rest_url=sim.rest_url)
    stops = _start_automation_services()
    url = f"http://{host}:{port}/"
    say(
        f"\n  Axisor is running at {url}\n  Demo login: username 'demo', password '{password}'\n"
        f"  Local LN Markets simulator: {sim.rest_url} (paper trading)\n\n"
    )
    try:
        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            # Client frames are small JSON commands (the consumer refuses more than 16 KiB): do not buffer 1 MiB.
            websocket_max_message_size=64 * 1024,
            websocket_max_frame_size=64 * 1024,
        ).run()
    finally:
        for stop in reversed(stops):
            stop()
        sim.stop()


def _start_automation_services() -> list[Callable[[], None]]:
    """Worker and beat threads, start-up reconciliation, then the feed process's parts (``launch.feed_process``)."""
    from automations.inprocess import start_beat_thread, start_worker_thread
    from automations.services.startup import accounts_reconcile_at_startup
    from config.celery import app
    from launch.feed_process import feed_process_start
    from notifications.inprocess import start_bot_thread
    from notifications.tasks import NOTIFY_QUEUE

    stops = [start_worker_thread(app, extra_queues=[NOTIFY_QUEUE])]
    stops.append(start_bot_thread())
    stops.append(start_beat_thread(app, schedule_file=Path(settings.VAR_DIR) / "celerybeat-schedule"))
    logger.info("start-up reconciliation: %s", accounts_reconcile_at_startup())
    stops += feed_process_start([Network.SIMULATOR])
    return stops


def demo_exchange_account_ensure(*, user: User, control: ControlClient, rest_url: str) -> ExchangeAccount:
    """Give the demo user a paper account on the simulator with a balance, a few running trades and a Margin Guard
    (close at 3 % from liquidation).

    Idempotent across restarts: the simulator keeps its state in ``var/simulator_state.json``; if it has forgotten
    the demo account (state file removed), fresh simulator credentials replace the stored ones.
    """
    account = ExchangeAccount.objects.filter(owner=user, label=DEMO_ACCOUNT_LABEL).first()
    known = {str(a.get("username")) for a in control.state().get("accounts", [])}
    if account is not None and DEMO_SIM_USERNAME in known:
        return account
    sim_account = control.create_account(balance=DEMO_BALANCE, username=DEMO_SIM_USERNAME)
    verification = account_services.Verification(permissions=tuple(sim_account.scopes))
    secrets_ = {"api_key": sim_account.key, "api_secret": sim_account.secret, "passphrase": sim_account.passphrase}
    if account is None:
        account = account_services.exchange_account_create(
            owner=user, label=DEMO_ACCOUNT_LABEL, network=Network.SIMULATOR, verification=verification, **secrets_
        )
    else:
        account = account_services.exchange_account_update(
            account=account, label=account.label, network=account.network, verification=verification, **secrets_
        )
    client = RestClient(
        rest_url,
        static_provider(Credentials(key=sim_account.key, secret=sim_account.secret, passphrase=sim_account.passphrase)),
        rate_limiter=InProcessRateLimiter(),
        timeout=5.0,
    )
    try:
        for side, quantity, leverage in DEMO_TRADES:
            # Opened through recorded intents, so Axisor manages them like trades its automations opened.
            intent = OrderIntent.objects.create(
                account=account,
                action=OrderIntent.Action.OPEN,
                protective=False,
                params={"side": side, "quantity": quantity, "leverage": str(leverage)},
            )
            trade = client.isolated_trade_create(
                type="market", side=side, quantity=quantity, leverage=Decimal(leverage), client_id=intent.client_id
            )
            OrderIntent.objects.filter(pk=intent.pk).update(
                state=OrderIntent.State.RECONCILED, trade_id=trade.id, attempts=1, finished_at=timezone.now()
            )
    finally:
        client.close()
    if not Automation.objects.filter(account=account).exists():
        guard = MarginGuardConfig(
            trigger="liquidation_distance", threshold=Decimal(3), action="close", cooldown_seconds=60
        )
        Automation.objects.create(
            account=account, name="Demo Margin Guard", kind="margin_guard", config=config_to_json(guard)
        )
    logger.info("demo paper account ready with %d running trades", len(DEMO_TRADES))
    return account
