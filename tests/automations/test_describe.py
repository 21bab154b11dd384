"""Automations in words: the one-sentence summaries, and trigger prices that agree with the engine's decisions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from automations.describe import summary, triggers_now
from automations.engine import AutoEntryConfig, MarginGuardConfig, TpSlConfig, evaluate
from automations.models import TrackedTrade
from automations.services import management
from automations.specs import AccountState, AutomationSpec, MarketSnapshot, TradeState
from lnmarkets.maths import TICK

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _market(price: D) -> MarketSnapshot:
    return MarketSnapshot(last_price=price, index=price, bid=price, ask=price, time=NOW)


def _trade(side: str = "buy") -> TradeState:
    long = side == "buy"
    return TradeState(
        id="trade-0001",
        side=side,  # type: ignore[arg-type]
        quantity=100,
        entry_price=D(100000),
        margin=10000,
        leverage=D(10),
        liquidation=D("90909.0") if long else D("111111.0"),
        stoploss=D(0),
        takeprofit=D(0),
        maintenance_margin=110,
        opening_fee=100,
        client_id="ax-1",
        managed=True,
    )


def _decides(config, trade: TradeState, price: D) -> bool:
    spec = AutomationSpec(id=1, kind="margin_guard" if isinstance(config, MarginGuardConfig) else "tpsl", config=config)
    account = AccountState(balance=10**8, trades=(trade,), entries_halted=False, kill_switch=False)
    return bool(evaluate(spec, _market(price), account, NOW).decisions)


def _trigger_price(text: str) -> D:
    return D(text.rsplit("at a price of ", 1)[1].split(" USD")[0].replace(",", ""))


def test_margin_guard_sentence():
    config = MarginGuardConfig(trigger="liquidation_distance", threshold=D(5), action="close", cooldown_seconds=60)
    assert summary(config) == (
        "Closes the trade at market when the distance to liquidation falls to 5 %, on every running trade it "
        "manages; then waits 60 seconds before acting on that trade again."
    )


def test_tpsl_and_entry_sentences():
    tpsl = TpSlConfig(direction="profit", trigger_percent=D(20), action="set_takeprofit", price=D("110000"))
    assert summary(tpsl) == (
        "When a trade's profit reaches 20 % of its margin, sets its take-profit to 110,000 USD (once per trade), "
        "on every running trade it manages."
    )
    entry = AutoEntryConfig(
        side="buy",
        leverage=D(10),
        quantity=100,
        margin=None,
        trigger="price_below",
        trigger_price=D(95000),
        stoploss_percent=D(2),
        repeat_count=3,
        repeat_cooldown_seconds=60,
    )
    assert summary(entry) == (
        "Opens a long of 100 USD at 10× leverage when the last price falls to 95,000 USD or below, with a stop-loss "
        "2 % from the fill; then up to 3 more times, at least 60 seconds apart."
    )


def test_numbers_follow_the_locale():
    config = MarginGuardConfig(trigger="liquidation_distance", threshold=D("2.5"), action="close", cooldown_seconds=5)
    with translation.override("pt-br"):
        text = triggers_now(config, _market(D("95450")), (_trade(),))[0].text
    assert "95.450" not in text  # the trigger price, not the market price, is shown
    assert "," in text  # decimal comma


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("trigger", ["liquidation_distance", "margin_ratio"])
def test_guard_trigger_price_is_where_the_engine_starts_acting(side, trigger):
    threshold = D(5) if trigger == "liquidation_distance" else D(40)
    config = MarginGuardConfig(trigger=trigger, threshold=threshold, action="close", cooldown_seconds=60)
    trade = _trade(side)
    start = D(100000)
    row = triggers_now(config, _market(start), (trade,))[0]
    assert not row.met
    price = _trigger_price(row.text)
    toward_liquidation = -TICK if side == "buy" else TICK
    # Within two ticks of the computed price the engine flips from nothing to acting.
    assert not _decides(config, trade, price - 2 * toward_liquidation)
    assert _decides(config, trade, price + 2 * toward_liquidation)


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("direction", ["profit", "loss"])
def test_tpsl_trigger_price_is_where_the_engine_fires(side, direction):
    config = TpSlConfig(direction=direction, trigger_percent=D(30), action="close")
    trade = _trade(side)
    row = triggers_now(config, _market(D(100000)), (trade,))[0]
    price = _trigger_price(row.text)
    up = TICK if (side == "buy") == (direction == "profit") else -TICK
    assert not _decides(config, trade, price - 2 * up)
    assert _decides(config, trade, price + 2 * up)


def test_entry_distance_to_its_trigger():
    config = AutoEntryConfig(
        side="buy", leverage=D(10), quantity=100, margin=None, trigger="price_below", trigger_price=D(95000)
    )
    row = triggers_now(config, _market(D(100000)), ())[0]
    assert row.text == "Last price now 100,000 USD, 5 % away from the trigger at 95,000 USD."
    assert not row.met


# --- pages ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def account(alice, make_account):
    return make_account(alice, label="paper")


def _long(account) -> None:
    TrackedTrade.objects.create(
        account=account,
        trade_id="t-long",
        client_id="ax-test",
        origin=TrackedTrade.Origin.AXISOR,
        managed=True,
        state=TrackedTrade.State.RUNNING,
        side="buy",
        quantity=100,
        entry_price=D(100000),
        margin=10000,
        leverage=D(10),
        liquidation=D("90909.0"),
        maintenance_margin=110,
        opening_fee=100,
        last_seen_at=timezone.now(),
    )


def test_form_shows_only_the_chosen_actions_fields_without_javascript(client, alice, account):
    client.force_login(alice)
    url = reverse("automations:create", args=["margin_guard"])
    body = client.get(url).content.decode()
    assert 'name="_refresh"' in body
    # Close is chosen: the reduce field is on the page but hidden.
    assert 'data-when="action=reduce" hidden' in body
    refreshed = client.post(
        url,
        {"name": "G", "account": account.pk, "trigger": "liquidation_distance", "action": "reduce", "_refresh": "1"},
    )
    page = refreshed.content.decode()
    assert refreshed.status_code == 200
    assert 'data-when="action=reduce" hidden' not in page
    assert "Please fix" not in page  # a refresh is not a submit


def test_describe_endpoint_gives_the_sentence_and_the_distance(client, alice, account, monkeypatch):
    _long(account)
    monkeypatch.setattr(management, "preview_market", lambda network: _market(D(95000)))
    client.force_login(alice)
    data = {
        "name": "G",
        "account": account.pk,
        "trigger": "liquidation_distance",
        "threshold": "3",
        "action": "close",
        "cooldown_seconds": "60",
        "max_price_age_seconds": "15",
    }
    body = client.post(reverse("automations:describe", args=["margin_guard"]), data).content.decode()
    assert "Closes the trade at market when the distance to liquidation falls to 3 %" in body
    assert "Distance to liquidation now 4.3 %; it triggers at a price of 93,720.5 USD." in body


def test_describe_endpoint_survives_garbage(client, alice, account):
    client.force_login(alice)
    response = client.post(reverse("automations:describe", args=["tpsl"]), {"trigger_percent": "NaN"})
    assert response.status_code == 200
    assert "Fill in the settings" in response.content.decode()
    assert client.post(reverse("automations:describe", args=["nope"]), {}).status_code == 404
    assert client.get(reverse("automations:describe", args=["tpsl"])).status_code == 405


def test_preview_says_how_far_each_trigger_is(client, alice, account, monkeypatch):
    _long(account)
    monkeypatch.setattr(management, "preview_market", lambda network: _market(D(95000)))
    config = MarginGuardConfig(trigger="liquidation_distance", threshold=D(3), action="close", cooldown_seconds=60)
    automation = management.automation_create(account=account, name="Guard", kind="margin_guard", config=config)
    client.force_login(alice)
    body = client.get(reverse("automations:preview", args=[automation.pk])).content.decode()
    assert "How far each trigger is now" in body
    assert "it triggers at a price of 93,720.5 USD" in body


def test_list_summarises_each_automation_and_chips_name_them(client, alice, account):
    _long(account)
    config = MarginGuardConfig(trigger="liquidation_distance", threshold=D(3), action="close", cooldown_seconds=60)
    management.automation_create(account=account, name="Night guard", kind="margin_guard", config=config)
    client.force_login(alice)
    body = client.get(reverse("automations:list")).content.decode()
    assert "Closes the trade at market when the distance to liquidation falls to 3 %" in body
    positions = client.get(reverse("realtime:positions")).content.decode()
    assert ">Night guard</a>" in positions
