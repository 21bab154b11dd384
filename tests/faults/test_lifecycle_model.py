"""docs/reliability.md T15: a stateful model of the order lifecycle. Hypothesis generates whole sequences of new
intents, deliveries (overlapping, repeated, out of order), exchange faults (timeouts after accept, 5xx after accept,
503, 429, requests held past the exchange's signature window), workers that die between claim and send, time passing,
and kill-switch toggles; after every step the exchange itself is checked:

* at most one trade per ``clientId``; never two closes applied to one trade;
* no entry was sent while a kill switch was on (checked at each delivery);
and at the end every intent reaches a terminal state once deliveries go on, and an open that says RECONCILED has its
trade at the exchange.

Runs in process against the simulator with a 1 s signature window (so fences pass in seconds). Slow: it runs in the
PostgreSQL pass with the rest of the battery.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter
from typing import Any

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from automations.exchange import clients_reset
from automations.models import GlobalSwitch, OrderIntent
from automations.services import management
from automations.services.execution import RetryLaterError, attempt_windows, order_intent_execute
from automations.services.intent_machine import claim
from automations.services.trades import account_reconcile
from lnmarkets.exceptions import RateLimitedError
from tests.faults.conftest import FULL, needs_real_services
from tests.fixtures_simulator import exchange_account_for

pytestmark = [needs_real_services, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TRADE = "/v3/futures/isolated/trade"
FAULTS = (
    ("accept_then_delay", {"seconds": 1.0}),
    ("accept_then_status", {"status": 504}),
    ("status", {"status": 503}),
    ("status", {"status": 429, "retry_after": 1}),
    ("hold", {"seconds": 0.8}),  # processed after the 0.5 s client timeout, inside the 1 s window
    ("hold", {"seconds": 1.6}),  # past the window: refused when the exchange gets to it
)


# What a rule acts on (a trade to close, an intent to deliver) depends on how earlier steps raced the exchange, so
# it cannot be drawn from the live lists: Hypothesis replays a failing run draw for draw and calls a run whose
# draws change shape a flaky strategy (FlakyStrategyDefinition). Rules draw a number instead and take it modulo the
# live list; an empty list makes the rule a no-op rather than a precondition that reads the system.
PICK = st.integers(min_value=0, max_value=1_000)


class Lifecycle(RuleBasedStateMachine):
    """One exchange account; the model keeps only ids, the truth is read from the database and the exchange."""

    def __init__(self) -> None:
        super().__init__()
        self.intents: list[int] = []

    @initialize()
    def start(self) -> None:
        fixture = _CURRENT
        self.sim, self.account, self.exchange = fixture["sim"], fixture["account"], fixture["exchange"]
        self.sim.control.reset()
        self.sim.control.set_rate_limits(False)
        self.sim.control.set_price(100000)
        sim_account = self.sim.control.create_account(balance=20_000_000)
        self.account = fixture["make_account"](sim_account)
        self.exchange = fixture["make_client"](sim_account)
        OrderIntent.objects.all().delete()
        management.global_kill_switch_set(on=False)
        _reconcile(self.account.pk)

    # --- rules ---------------------------------------------------------------------------------------------------

    @rule(quantity=st.integers(1, 30))
    def new_entry(self, quantity: int) -> None:
        intent = OrderIntent.objects.create(
            account=self.account,
            action="open",
            protective=False,
            params={"side": "buy", "leverage": "10", "quantity": quantity},
        )
        self.intents.append(intent.pk)

    @rule(pick=PICK)
    def new_close(self, pick: int) -> None:
        closable = self._closable()
        if not closable:
            return
        trade_id = closable[pick % len(closable)]
        intent = OrderIntent.objects.create(account=self.account, action="close", trade_id=trade_id, protective=True)
        self.intents.append(intent.pk)

    @rule(pick=PICK)
    def deliver(self, pick: int) -> None:
        if not self.intents:
            return
        intent = OrderIntent.objects.get(pk=self.intents[pick % len(self.intents)])
        guarded = intent.action == "open" and intent.state == "created" and GlobalSwitch.is_on()
        before = self.sim.control.requests_for_client_id(intent.client_id)
        with contextlib.suppress(RetryLaterError):  # the model delivers again whenever it likes: that is the point
            order_intent_execute(intent_id=intent.pk)
        if guarded:
            assert self.sim.control.requests_for_client_id(intent.client_id) == before, "entry sent under kill switch"

    @rule(fault=st.sampled_from(FAULTS))
    def exchange_fault(self, fault: tuple[str, dict[str, object]]) -> None:
        kind, options = fault
        self.sim.control.inject_fault(kind, method="POST", **options)

    @rule(pick=PICK)
    def worker_dies_between_claim_and_send(self, pick: int) -> None:
        created = list(
            OrderIntent.objects.filter(pk__in=self.intents, state="created").order_by("pk").values_list("pk", flat=True)
        )
        if not created:
            return
        intent = OrderIntent.objects.get(pk=created[pick % len(created)])
        moment = timezone.now()
        deadline, fence = attempt_windows(moment)
        claim(intent, now=moment, send_deadline=deadline, fence_at=fence)  # … and nothing is ever sent for it

    @rule(seconds=st.sampled_from([0.3, 1.0, 3.0]))
    def time_passes(self, seconds: float) -> None:
        time.sleep(seconds)

    @rule(on=st.booleans())
    def kill_switch(self, on: bool) -> None:
        management.global_kill_switch_set(on=on)
        if not on:
            _reconcile(self.account.pk)  # entries resume after a fresh reconciliation

    # --- invariants ----------------------------------------------------------------------------------------------

    @invariant()
    def at_most_one_trade_per_client_id(self) -> None:
        if not hasattr(self, "sim"):
            return
        trades = [t for a in self.sim.control.state()["accounts"] for t in a["trades"]]
        per_client = Counter(t.get("clientId") for t in trades if t.get("clientId"))
        assert all(count == 1 for count in per_client.values()), per_client
        closes = Counter(t["id"] for t in trades if t.get("closed"))
        assert all(count == 1 for count in closes.values())

    def teardown(self) -> None:
        if not hasattr(self, "sim"):
            return
        self.sim.control.clear_faults()
        management.global_kill_switch_set(on=False)
        _reconcile(self.account.pk)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            open_ids = list(
                OrderIntent.objects.filter(pk__in=self.intents)
                .exclude(state__in=["reconciled", "rejected"])
                .values_list("pk", flat=True)
            )
            if not open_ids:
                break
            for intent_id in open_ids:
                try:
                    order_intent_execute(intent_id=intent_id)
                except RetryLaterError:
                    time.sleep(0.2)
        left = OrderIntent.objects.filter(pk__in=self.intents).exclude(state__in=["reconciled", "rejected"])
        assert not left.exists(), list(left.values_list("pk", "state", "error"))
        trades = {t.get("clientId"): t for a in self.sim.control.state()["accounts"] for t in a["trades"]}
        for intent in OrderIntent.objects.filter(pk__in=self.intents, action="open", state="reconciled"):
            assert intent.client_id in trades, f"intent {intent.pk} reconciled without its trade"
        self.exchange.close()

    def _closable(self) -> list[str]:
        if not hasattr(self, "exchange"):
            return []
        return [t.id for t in self.exchange.isolated_trades_running_list()]


def _reconcile(account_id: int) -> None:
    """Reconcile, waiting out Axisor's own per-key rate limit (the model calls the exchange a lot)."""
    for _ in range(20):
        try:
            account_reconcile(account_id=account_id)
        except RateLimitedError:
            time.sleep(0.5)
        else:
            return
    raise AssertionError("the account could not be reconciled in 10 s")


_CURRENT: dict[str, Any] = {}


@pytest.fixture
def model_world(sim, alice, settings_fixture):
    from lnmarkets.client import RestClient
    from lnmarkets.credentials import Credentials, static_provider
    from lnmarkets.ratelimit import InProcessRateLimiter

    def make_account(sim_account):
        return exchange_account_for(alice, sim_account, f"model {time.monotonic_ns()}")

    def make_client(sim_account):
        creds = Credentials(key=sim_account.key, secret=sim_account.secret, passphrase=sim_account.passphrase)
        return RestClient(sim.rest_url, static_provider(creds), rate_limiter=InProcessRateLimiter(), timeout=5)

    ctx = sim.server.ctx
    original = ctx.config
    ctx.config = dataclasses.replace(original, timestamp_window_ms=1000)
    _CURRENT.update(sim=sim, account=None, exchange=None, make_account=make_account, make_client=make_client)
    yield
    ctx.config = original
    _CURRENT.clear()


@pytest.fixture
def settings_fixture(settings, sim):
    settings.LNMARKETS_URLS = {**settings.LNMARKETS_URLS, "simulator": {"rest": sim.rest_url, "stream": sim.stream_url}}
    settings.LNMARKETS_HTTP_TIMEOUT = 0.5
    settings.LNMARKETS_TIMESTAMP_WINDOW_SECONDS = 1
    settings.ORDER_SEND_WINDOW_SECONDS = 0.5
    clients_reset()
    yield settings
    clients_reset()


def test_t15_order_lifecycle_model(model_world):
    Lifecycle.TestCase.settings = settings(
        max_examples=60 if FULL else 8,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    Lifecycle.TestCase().runTest()
