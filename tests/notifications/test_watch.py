"""Feed stale/recovered transitions, margin warnings, the daily summary and the sweep of lost deliveries."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.models import TrackedTrade
from notifications.delivery import notifications_due
from notifications.derive import notifications_create
from notifications.models import Channel, Notification, Preference
from notifications.summary import daily_summaries_send
from notifications.watch import feed_watch, margin_watch
from realtime.market import _empty, store_market_state

pytestmark = pytest.mark.django_db


def _tick(network: str, last: str, *, age_s: float = 0) -> None:
    data = _empty(network)
    data.update({"last": last, "received_at": (timezone.now() - timedelta(seconds=age_s)).isoformat(), "state": "live"})
    store_market_state(data)


@pytest.fixture
def account(alice, make_account) -> ExchangeAccount:
    created: ExchangeAccount = make_account(alice, label="paper", network="simulator")
    return created


def test_feed_stale_and_recovered_notify_on_transitions_only(account, channels):
    now = timezone.now()
    _tick("simulator", "100000")
    assert feed_watch(now=now) == 0  # first observation: recorded, not told
    _tick("simulator", "100000", age_s=120)
    assert feed_watch(now=now) == 3
    assert feed_watch(now=now) == 0  # still stale: nothing new
    _tick("simulator", "100100")
    assert feed_watch(now=now) == 3
    titles = list(Notification.objects.order_by("id").values_list("title", flat=True))
    assert titles == ["Exchange feed stale (simulator)"] * 3 + ["Exchange feed recovered (simulator)"] * 3


def _trade(account, side: str, liquidation: str) -> TrackedTrade:
    return TrackedTrade.objects.create(
        account=account,
        trade_id=f"{side}-{liquidation}",
        origin="axisor",
        managed=True,
        state="running",
        side=side,
        quantity=100,
        entry_price=Decimal(100000),
        margin=10000,
        leverage=Decimal(10),
        liquidation=Decimal(liquidation),
        last_seen_at=timezone.now(),
    )


def test_margin_warning_at_the_users_level_once_a_day(alice, account, channels):
    Channel.objects.exclude(kind="telegram").update(is_enabled=False)
    Preference.objects.create(user=alice, margin_warning_percent=Decimal(8))
    _trade(account, "buy", "93000")  # 7 % away at 100 000: warned
    _trade(account, "buy", "90000")  # 10 % away: not yet
    _trade(account, "sell", "106000")  # 6 % away: warned
    _tick("simulator", "100000")
    now = timezone.now()
    assert margin_watch(now=now) == 2
    assert margin_watch(now=now) == 0
    titles = sorted(Notification.objects.values_list("title", flat=True))
    assert titles == [
        "Margin warning: trade buy-93000 is 7.00 % from liquidation",
        "Margin warning: trade sell-106000 is 6.00 % from liquidation",
    ]
    # a stale price warns nobody
    Notification.objects.all().delete()
    _tick("simulator", "91000", age_s=600)
    assert margin_watch(now=now + timedelta(days=1)) == 0


def test_daily_summary_once_per_day(alice, account, channels, settings):
    settings.NOTIFY_DAILY_SUMMARY_HOUR = 0
    Channel.objects.exclude(kind="email").update(is_enabled=False)
    ExchangeAccount.objects.filter(pk=account.pk).update(balance=5000)
    closed = _trade(account, "buy", "90000")
    TrackedTrade.objects.filter(pk=closed.pk).update(state="closed", closed_at=timezone.now(), pl=321, opening_fee=9)
    now = timezone.now()
    assert daily_summaries_send(now=now) == 1
    assert daily_summaries_send(now=now) == 0
    (row,) = Notification.objects.all()
    assert "paper: balance 5000 sats; 1 trade(s) closed, realised PnL 321 sats, opening fees 9 sats" in row.body


def test_the_sweep_finds_lost_and_abandoned_deliveries(alice, channels, settings):
    ids = notifications_create(owner_id=alice.pk, event="kill_switch", title="t", body="b", source="s")
    now = timezone.now()
    assert notifications_due(now=now) == []
    late = now + timedelta(seconds=settings.NOTIFY_SWEEP_SECONDS + 1)
    assert sorted(notifications_due(now=late)) == sorted(ids)
    Notification.objects.filter(pk=ids[0]).update(status="sending", claimed_at=now)
    Notification.objects.filter(pk__in=ids[1:]).update(status="sent")
    assert notifications_due(now=late) == []
    assert notifications_due(now=now + timedelta(seconds=settings.NOTIFY_LEASE_SECONDS + 1)) == [ids[0]]
