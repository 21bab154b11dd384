"""Automation pages: create/edit/pause/resume/delete per kind, owner scoping (404), bad input never saved, the preview
on a given market, the audit log's filters and pagination, and the kill-switch and external-trade toggles."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from automations.configs import config_from_json
from automations.engine import MarginGuardConfig, TpSlConfig
from automations.models import AuditEntry, Automation, GlobalSwitch, OrderIntent, TrackedTrade
from automations.services import management
from automations.specs import MarketSnapshot
from lnmarkets.exceptions import TemporaryError
from tests.automations.test_forms import BAD_INPUT, BASE

D = Decimal


@pytest.fixture
def account(alice, make_account):
    return make_account(alice, label="alice-paper")


@pytest.fixture
def bobs_account(bob, make_account):
    return make_account(bob, label="bob-main", network="mainnet")


def _guard(account, *, name="guard", threshold="5", action="close", **extra) -> Automation:
    config = MarginGuardConfig(
        trigger="liquidation_distance", threshold=D(threshold), action=action, cooldown_seconds=60, **extra
    )
    return management.automation_create(account=account, name=name, kind="margin_guard", config=config)


def _data(kind: str, account_id: int, **changes: str) -> dict[str, str]:
    return {**BASE[kind], "account": str(account_id), **changes}


def _market(last: str = "91000", *, age: float = 1.0) -> MarketSnapshot:
    price = D(last)
    return MarketSnapshot(
        last_price=price,
        index=price,
        bid=price - D("0.5"),
        ask=price + D("0.5"),
        time=timezone.now() - timedelta(seconds=age),
    )


def _running_long(account, trade_id="t-near-liq") -> TrackedTrade:
    """100 USD long at 10x from 100 000: margin 10 000 sats, liquidation 90 909."""
    return TrackedTrade.objects.create(
        account=account,
        trade_id=trade_id,
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


# --- access ---------------------------------------------------------------------------------------------------------


def test_pages_need_login(client, account):
    automation = _guard(account)
    for url in (
        reverse("automations:list"),
        reverse("automations:log"),
        reverse("automations:choose-kind"),
        reverse("automations:create", args=["margin_guard"]),
        reverse("automations:edit", args=[automation.pk]),
        reverse("automations:preview", args=[automation.pk]),
        reverse("automations:account", args=[account.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert reverse("accounts:login") in response["Location"]


def test_list_shows_own_automations_with_paper_badge_and_nav(client, alice, account, bobs_account):
    _guard(account, name="alice-guard")
    _guard(bobs_account, name="bob-guard")
    client.force_login(alice)
    body = client.get(reverse("automations:list")).content.decode()
    assert "alice-guard" in body
    assert "bob-guard" not in body
    assert "bob-main" not in body
    assert "PAPER" in body
    assert reverse("automations:log") in body
    assert "Active" in body


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("get", "edit"),
        ("post", "edit"),
        ("get", "preview"),
        ("post", "pause"),
        ("post", "resume"),
        ("get", "delete"),
        ("post", "delete"),
    ],
)
def test_alice_cannot_touch_bobs_automation(client, alice, bobs_account, method, name, monkeypatch):
    monkeypatch.setattr(management, "preview_market", lambda network: _market())
    automation = _guard(bobs_account, name="bob-guard")
    Automation.objects.filter(pk=automation.pk).update(status=Automation.Status.PAUSED)
    client.force_login(alice)
    url = reverse(f"automations:{name}", args=[automation.pk])
    response = getattr(client, method)(url, _data("margin_guard", bobs_account.pk, threshold="7"))
    assert response.status_code == 404
    automation.refresh_from_db()
    assert automation.status == Automation.Status.PAUSED
    assert automation.config["threshold"] == "5"


@pytest.mark.parametrize(
    ("method", "name"),
    [("get", "account"), ("post", "account-kill-switch"), ("post", "account-external")],
)
def test_alice_cannot_see_or_switch_bobs_account(client, alice, bobs_account, method, name):
    client.force_login(alice)
    response = getattr(client, method)(reverse(f"automations:{name}", args=[bobs_account.pk]), {"state": "on"})
    assert response.status_code == 404
    bobs_account.refresh_from_db()
    assert not bobs_account.kill_switch
    assert not bobs_account.manage_external_trades


def test_alice_cannot_create_on_bobs_account(client, alice, account, bobs_account):
    client.force_login(alice)
    response = client.post(reverse("automations:create", args=["margin_guard"]), _data("margin_guard", bobs_account.pk))
    assert response.status_code == 200
    assert "account" in response.context["form"].errors
    assert not Automation.objects.exists()
    preselect = client.get(reverse("automations:create", args=["margin_guard"]) + f"?account={bobs_account.pk}")
    assert preselect.status_code == 404


def test_unknown_kind_is_404(client, alice):
    client.force_login(alice)
    assert client.get(reverse("automations:create", args=["martingale"])).status_code == 404


# --- create, edit, pause, resume, delete ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["margin_guard", "tpsl", "auto_entry"])
def test_create_each_kind(client, alice, account, kind):
    client.force_login(alice)
    page = client.get(reverse("automations:create", args=[kind]) + f"?account={account.pk}")
    assert page.status_code == 200
    response = client.post(reverse("automations:create", args=[kind]), _data(kind, account.pk))
    assert response.status_code == 302
    automation = Automation.objects.get()
    assert automation.kind == kind
    assert automation.account == account
    assert automation.status == Automation.Status.ACTIVE
    assert automation.memory == {}
    config_from_json(kind, automation.config)  # stored config is valid
    entry = AuditEntry.objects.get(automation=automation)
    assert entry.event == AuditEntry.Event.STATUS
    assert entry.outcome == AuditEntry.Outcome.INFO
    assert "created" in entry.message


# A browser cannot send a lone surrogate (the form test covers it); everything else goes through the real page.
VIEW_BAD_INPUT = [case for case in BAD_INPUT if "\ud800" not in case[1].get("name", "")]


@pytest.mark.parametrize(("kind", "changes", "field"), VIEW_BAD_INPUT)
def test_bad_input_is_shown_on_its_field_and_nothing_is_saved(client, alice, account, kind, changes, field):
    client.force_login(alice)
    response = client.post(reverse("automations:create", args=[kind]), _data(kind, account.pk, **changes))
    assert response.status_code == 200
    assert field in response.context["form"].errors, response.context["form"].errors
    assert f'id="{field}-error"' in response.content.decode()
    assert not Automation.objects.exists()
    assert not AuditEntry.objects.exists()


def test_reduce_form_explains_that_there_is_no_partial_close(client, alice, account):
    client.force_login(alice)
    body = client.get(reverse("automations:create", args=["margin_guard"])).content.decode()
    assert "no partial close" in body
    assert "reopens the remaining quantity" in body


@pytest.mark.parametrize("kind", ["margin_guard", "tpsl", "auto_entry"])
def test_edit_each_kind(client, alice, account, kind):
    client.force_login(alice)
    client.post(reverse("automations:create", args=[kind]), _data(kind, account.pk))
    automation = Automation.objects.get()
    version = automation.version
    changes = {"margin_guard": {"threshold": "7"}, "tpsl": {"trigger_percent": "20"}, "auto_entry": {"leverage": "5"}}
    response = client.post(
        reverse("automations:edit", args=[automation.pk]), _data(kind, account.pk, name="renamed", **changes[kind])
    )
    assert response.status_code == 302
    automation.refresh_from_db()
    assert automation.name == "renamed"
    field, value = next(iter(changes[kind].items()))
    assert automation.config[field] == value
    assert automation.version == version + 1
    assert AuditEntry.objects.filter(automation=automation, message__contains="edited").exists()


def test_edit_with_bad_input_changes_nothing(client, alice, account):
    automation = _guard(account)
    client.force_login(alice)
    response = client.post(
        reverse("automations:edit", args=[automation.pk]), _data("margin_guard", account.pk, threshold="NaN")
    )
    assert response.status_code == 200
    assert "threshold" in response.context["form"].errors
    automation.refresh_from_db()
    assert automation.config["threshold"] == "5"


def test_edit_keeps_margin_guard_memory_but_resets_a_changed_tpsl_rule(account):
    # given: memories with a cooldown, a margin addition and a fired TP/SL
    guard = _guard(account)
    memory = {
        "v": 1,
        "trades": {"t1": {"last_action_at": timezone.now().isoformat(), "added_margin": 500, "skip": "cap"}},
    }
    Automation.objects.filter(pk=guard.pk).update(memory=memory)
    guard.refresh_from_db()
    tpsl = management.automation_create(
        account=account,
        name="tp",
        kind="tpsl",
        config=TpSlConfig(direction="profit", trigger_percent=D(10), action="set_takeprofit", price=D(110000)),
    )
    Automation.objects.filter(pk=tpsl.pk).update(memory={"v": 1, "trades": {"t1": {"fired": True}}})
    tpsl.refresh_from_db()
    # when
    management.automation_update(
        automation=guard,
        name="guard",
        config=MarginGuardConfig(trigger="liquidation_distance", threshold=D(8), action="close", cooldown_seconds=60),
        max_price_age_seconds=15,
    )
    management.automation_update(
        automation=tpsl,
        name="tp",
        config=TpSlConfig(direction="profit", trigger_percent=D(10), action="set_takeprofit", price=D(120000)),
        max_price_age_seconds=15,
    )
    # then: the guard still counts its addition and cooldown (only the skip code is cleared); the TP/SL starts fresh
    assert guard.memory["trades"]["t1"]["added_margin"] == 500
    assert "skip" not in guard.memory["trades"]["t1"]
    assert tpsl.memory == {"v": 1, "trades": {}}


def test_pause_resume_delete(client, alice, account):
    automation = _guard(account)
    client.force_login(alice)
    assert client.get(reverse("automations:pause", args=[automation.pk])).status_code == 405
    assert client.post(reverse("automations:pause", args=[automation.pk])).status_code == 302
    automation.refresh_from_db()
    assert automation.status == Automation.Status.PAUSED
    Automation.objects.filter(pk=automation.pk).update(status=Automation.Status.ERROR, status_message="boom")
    assert client.post(reverse("automations:resume", args=[automation.pk])).status_code == 302
    automation.refresh_from_db()
    assert automation.status == Automation.Status.ACTIVE
    assert automation.status_message == ""
    confirm = client.get(reverse("automations:delete", args=[automation.pk]))
    assert confirm.status_code == 200
    assert Automation.objects.filter(pk=automation.pk).exists()
    assert client.post(reverse("automations:delete", args=[automation.pk])).status_code == 302
    assert not Automation.objects.filter(pk=automation.pk).exists()
    messages = list(AuditEntry.objects.filter(account=account).values_list("message", flat=True))
    assert any("paused" in m for m in messages)
    assert any("resumed" in m for m in messages)
    assert any("deleted" in m for m in messages)


def test_resume_of_active_or_completed_is_refused_with_a_message(client, alice, account):
    automation = _guard(account)
    client.force_login(alice)
    response = client.post(reverse("automations:resume", args=[automation.pk]), follow=True)
    assert "cannot be resumed" in response.content.decode()
    Automation.objects.filter(pk=automation.pk).update(status=Automation.Status.COMPLETED)
    client.post(reverse("automations:resume", args=[automation.pk]))
    client.post(reverse("automations:pause", args=[automation.pk]))
    automation.refresh_from_db()
    assert automation.status == Automation.Status.COMPLETED


def test_pause_bumps_the_version_so_an_inflight_evaluation_loses(account):
    automation = _guard(account)
    stale_version = automation.version
    management.automation_pause(automation=automation)
    assert automation.version == stale_version + 1


# --- preview ----------------------------------------------------------------------------------------------------------


def test_preview_shows_a_close_for_a_trade_near_liquidation_and_stores_nothing(client, alice, account, monkeypatch):
    # given: a 1 % distance guard and a long whose liquidation (90 909) is 0.1 % under the price
    automation = _guard(account, threshold="1")
    _running_long(account)
    monkeypatch.setattr(management, "preview_market", lambda network: _market("91000", age=2))
    audit_before = AuditEntry.objects.count()
    client.force_login(alice)
    # when
    response = client.get(reverse("automations:preview", args=[automation.pk]))
    # then
    assert response.status_code == 200
    body = response.content.decode()
    rows = response.context["preview"].decision_rows
    assert [row.kind for row in rows] == ["close"]
    assert rows[0].details == [("trade_id", "t-near-liq")]
    assert 'data-kind="close"' in body
    assert "91000" in body
    assert "Nothing is sent" in body
    assert "distance" in rows[0].reason.lower() or any("distance" in k for k, _ in rows[0].inputs)
    automation.refresh_from_db()
    assert automation.memory == {}
    assert AuditEntry.objects.count() == audit_before
    assert not OrderIntent.objects.exists()


def test_preview_far_from_liquidation_decides_nothing(client, alice, account, monkeypatch):
    automation = _guard(account, threshold="1")
    _running_long(account)
    monkeypatch.setattr(management, "preview_market", lambda network: _market("100000"))
    client.force_login(alice)
    body = client.get(reverse("automations:preview", args=[automation.pk])).content.decode()
    assert "Nothing to do right now" in body


def test_preview_without_a_price_says_so(client, alice, account, monkeypatch):
    automation = _guard(account)
    monkeypatch.setattr(management, "preview_market", lambda network: None)
    client.force_login(alice)
    response = client.get(reverse("automations:preview", args=[automation.pk]))
    assert response.status_code == 200
    assert "No live price available" in response.content.decode()


def test_preview_of_invalid_stored_settings_is_explained(client, alice, account, monkeypatch):
    automation = _guard(account)
    Automation.objects.filter(pk=automation.pk).update(config={"trigger": "liquidation_distance"})
    monkeypatch.setattr(management, "preview_market", lambda network: _market())
    client.force_login(alice)
    response = client.get(reverse("automations:preview", args=[automation.pk]))
    assert response.status_code == 200
    assert "stored settings are invalid" in response.content.decode()


class _FakeFeed:
    def __init__(self, latest, state):
        self._latest = latest
        self.state = state

    def latest(self):
        return self._latest


class _FailingClient:
    def futures_ticker_get(self):
        raise TemporaryError("exchange down")


def test_preview_market_falls_back_to_rest_and_to_none(monkeypatch):
    monkeypatch.setattr(management, "get_market_feed", lambda network: _FakeFeed(None, "stale"))
    monkeypatch.setattr(management, "public_client", lambda network: _FailingClient())
    assert management.preview_market("simulator") is None


def test_preview_market_uses_a_fresh_feed_ticker(monkeypatch):
    from lnmarkets.feed import TickerSnapshot
    from lnmarkets.schemas import PriceBucket

    now = timezone.now()
    snapshot = TickerSnapshot(
        last_price=D(95000),
        index=D(95010),
        bid=D("94999.5"),
        ask=D("95000.5"),
        buckets=(PriceBucket(min_size=D(1), max_size=D(1000), bid_price=D("94999.5"), ask_price=D("95000.5")),),
        funding_rate=None,
        exchange_time=now,
        received_at=now,
        received_monotonic=0.0,
        source="stream",
    )
    monkeypatch.setattr(management, "get_market_feed", lambda network: _FakeFeed(snapshot, "live"))
    monkeypatch.setattr(management, "public_client", lambda network: _FailingClient())
    market = management.preview_market("simulator")
    assert market is not None
    assert market.last_price == D(95000)
    assert market.bid == D("94999.5")


# --- audit log --------------------------------------------------------------------------------------------------------


def _entry(account, automation=None, *, outcome=AuditEntry.Outcome.OK, kind="margin_guard", message="m"):
    return AuditEntry.objects.create(
        account=account,
        automation=automation,
        kind=kind,
        event=AuditEntry.Event.DECISION,
        outcome=outcome,
        message=message,
    )


def test_audit_log_filters(client, alice, account, make_account, bobs_account):
    other = make_account(alice, label="alice-second")
    guard = _guard(account, name="g1")
    AuditEntry.objects.all().delete()
    _entry(account, guard, message="guard-ok")
    _entry(account, guard, outcome=AuditEntry.Outcome.SKIPPED, message="guard-skipped")
    _entry(account, None, kind="auto_entry", message="entry-ok")
    _entry(other, None, kind="tpsl", outcome=AuditEntry.Outcome.ERROR, message="other-error")
    _entry(bobs_account, None, message="bob-secret")
    client.force_login(alice)
    url = reverse("automations:log")

    def messages(**params):
        response = client.get(url, params)
        assert response.status_code == 200
        return sorted(e.message for e in response.context["page"].object_list)

    assert messages() == ["entry-ok", "guard-ok", "guard-skipped", "other-error"]
    assert messages(account=other.pk) == ["other-error"]
    assert messages(automation=guard.pk) == ["guard-ok", "guard-skipped"]
    assert messages(kind="auto_entry") == ["entry-ok"]
    assert messages(outcome="skipped") == ["guard-skipped"]
    assert messages(account=account.pk, outcome="ok") == ["entry-ok", "guard-ok"]
    # a filter on bob's account is refused, and bob's rows never appear
    response = client.get(url, {"account": bobs_account.pk})
    assert "account" in response.context["form"].errors
    assert "bob-secret" not in response.content.decode()
    assert client.get(url, {"account": "x" * 10_000, "page": "abc"}).status_code == 200


def test_audit_log_paginates_by_50_and_keeps_filters(client, alice, account):
    AuditEntry.objects.bulk_create(
        AuditEntry(account=account, kind="tpsl", event="decision", outcome="ok", message=f"e{i}") for i in range(120)
    )
    client.force_login(alice)
    url = reverse("automations:log")
    first = client.get(url, {"kind": "tpsl"})
    assert len(first.context["page"].object_list) == 50
    assert first.context["page"].paginator.num_pages == 3
    assert "kind=tpsl" in first.content.decode()
    assert "page=2" in first.content.decode()
    assert len(client.get(url, {"kind": "tpsl", "page": 3}).context["page"].object_list) == 20
    assert client.get(url, {"page": 999}).context["page"].number == 3


# --- switches ---------------------------------------------------------------------------------------------------------


def test_account_kill_switch_on_and_off(client, alice, account):
    client.force_login(alice)
    url = reverse("automations:account-kill-switch", args=[account.pk])
    assert client.get(url).status_code == 405
    client.post(url, {"state": "on"})
    account.refresh_from_db()
    assert account.kill_switch
    assert "KILL SWITCH ON" in client.get(reverse("automations:account", args=[account.pk])).content.decode()
    response = client.post(url, {"state": "off"}, follow=True)
    account.refresh_from_db()
    assert not account.kill_switch
    assert "after the next reconciliation" in response.content.decode()
    assert AuditEntry.objects.filter(account=account, event="status", message__contains="Kill switch").count() == 2
    client.post(url, {"state": "maybe"})
    account.refresh_from_db()
    assert not account.kill_switch


def test_manage_external_trades_toggle_and_trade_list(client, alice, account):
    trade = _running_long(account, trade_id="ext-1")
    TrackedTrade.objects.filter(pk=trade.pk).update(origin=TrackedTrade.Origin.EXTERNAL, managed=False)
    client.force_login(alice)
    page = client.get(reverse("automations:account", args=[account.pk])).content.decode()
    assert "ext-1" in page
    assert "opened outside Axisor" in page
    assert "never managed" in page
    client.post(reverse("automations:account-external", args=[account.pk]), {"state": "on"})
    account.refresh_from_db()
    assert account.manage_external_trades
    client.post(reverse("automations:account-external", args=[account.pk]), {"state": "off"})
    account.refresh_from_db()
    assert not account.manage_external_trades


def test_global_kill_switch_is_staff_only(client, alice, bob, account, bobs_account):
    client.force_login(alice)
    url = reverse("automations:global-kill-switch")
    assert client.post(url, {"state": "on"}).status_code == 403
    assert not GlobalSwitch.is_on()
    assert "Global kill switch (staff)" not in client.get(reverse("automations:list")).content.decode()
    alice.is_staff = True
    alice.save()
    client.post(url, {"state": "on", "reason": "exchange incident"})
    assert GlobalSwitch.is_on()
    # every user sees it in their own log
    assert AuditEntry.objects.filter(account=bobs_account, message__contains="exchange incident").exists()
    client.force_login(bob)
    assert "global kill switch is ON" in client.get(reverse("automations:list")).content.decode()
    client.force_login(alice)
    client.post(url, {"state": "off"})
    assert not GlobalSwitch.is_on()


def test_choose_kind_links_each_kind_with_the_account(client, alice, account):
    client.force_login(alice)
    response = client.get(reverse("automations:choose-kind"), {"account": account.pk})
    body = response.content.decode()
    for kind in ("margin_guard", "tpsl", "auto_entry"):
        assert f"{reverse('automations:create', args=[kind])}?account={account.pk}" in body


def test_preview_marks_a_stale_price(client, alice, account, monkeypatch):
    automation = _guard(account)
    monkeypatch.setattr(management, "preview_market", lambda network: _market(age=120))
    client.force_login(alice)
    body = client.get(reverse("automations:preview", args=[automation.pk])).content.decode()
    assert "120.0 s" in body
    assert ">stale<" in body


BAD_STORED_CONFIGS = [
    {"trigger": "liquidation_distance", "threshold": 5.5, "action": "close"},  # a float
    {"trigger": "liquidation_distance", "threshold": "NaN", "action": "close"},
    {"trigger": "liquidation_distance", "threshold": "5", "action": "close", "cooldown_seconds": True},
    {"trigger": "liquidation_distance", "threshold": "5", "action": "close", "surprise": 1},
    {"trigger": "sideways", "threshold": "5", "action": "close"},
    {"trigger": "liquidation_distance", "threshold": "5", "action": "close", "trade_ids": "abc"},
    ["not", "an", "object"],
]


@pytest.mark.parametrize("stored", BAD_STORED_CONFIGS)
def test_a_bad_stored_config_is_a_clear_message_on_every_page_never_a_500(client, alice, account, monkeypatch, stored):
    automation = _guard(account)
    Automation.objects.filter(pk=automation.pk).update(config=stored)
    monkeypatch.setattr(management, "preview_market", lambda network: _market())
    client.force_login(alice)
    preview = client.get(reverse("automations:preview", args=[automation.pk]))
    assert preview.status_code == 200
    assert "stored settings are invalid" in preview.content.decode()
    assert client.get(reverse("automations:edit", args=[automation.pk])).status_code == 200
    assert client.get(reverse("automations:list")).status_code == 200
    assert client.get(reverse("automations:log")).status_code == 200
