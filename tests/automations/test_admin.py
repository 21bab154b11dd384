"""Admin: intents and the audit log are read-only records, automations show config/memory read-only, of a tracked
trade only ``managed`` changes, the global switch is editable (and audited), staff see only their own rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from automations.engine import MarginGuardConfig
from automations.models import AuditEntry, Automation, GlobalSwitch, OrderIntent, TrackedTrade
from automations.services import management

D = Decimal


@pytest.fixture
def superuser(alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    return alice


@pytest.fixture
def account(alice, make_account):
    return make_account(alice, label="alice-paper")


def _guard(account, name="guard") -> Automation:
    config = MarginGuardConfig(trigger="liquidation_distance", threshold=D(5), action="close")
    return management.automation_create(account=account, name=name, kind="margin_guard", config=config)


def _intent(account) -> OrderIntent:
    return OrderIntent.objects.create(account=account, action=OrderIntent.Action.CLOSE, trade_id="t1")


def _trade(account, trade_id="t1") -> TrackedTrade:
    return TrackedTrade.objects.create(
        account=account,
        trade_id=trade_id,
        origin=TrackedTrade.Origin.EXTERNAL,
        managed=False,
        state=TrackedTrade.State.RUNNING,
        side="buy",
        quantity=100,
        entry_price=D(100000),
        margin=10000,
        leverage=D(10),
        liquidation=D("90909.0"),
        last_seen_at=timezone.now(),
    )


@pytest.mark.parametrize("model", ["orderintent", "auditentry"])
def test_intents_and_audit_entries_are_read_only(client, superuser, account, model):
    intent = _intent(account)
    entry = AuditEntry.objects.create(account=account, event="decision", outcome="ok", message="closed", intent=intent)
    obj = intent if model == "orderintent" else entry
    client.force_login(superuser)
    assert client.get(reverse(f"admin:automations_{model}_changelist")).status_code == 200
    assert client.get(reverse(f"admin:automations_{model}_add")).status_code == 403
    change_url = reverse(f"admin:automations_{model}_change", args=[obj.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change_url, {"message": "rewritten", "state": "acked"}).status_code == 403
    assert client.post(reverse(f"admin:automations_{model}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    intent.refresh_from_db()
    entry.refresh_from_db()
    assert intent.state == OrderIntent.State.CREATED
    assert entry.message == "closed"


def test_intent_changelist_columns(client, superuser, account):
    intent = _intent(account)
    client.force_login(superuser)
    body = client.get(reverse("admin:automations_orderintent_changelist")).content.decode()
    assert intent.client_id in body
    assert "alice-paper" in body


def test_automation_config_and_memory_are_read_only(client, superuser, account):
    automation = _guard(account)
    client.force_login(superuser)
    assert client.get(reverse("admin:automations_automation_add")).status_code == 403
    url = reverse("admin:automations_automation_change", args=[automation.pk])
    body = client.get(url).content.decode()
    assert 'name="config"' not in body
    assert 'name="memory"' not in body
    assert 'name="status"' not in body
    assert "liquidation_distance" in body
    assert "Closes the trade at market when" in body  # its kind's sentence
    Automation.objects.filter(pk=automation.pk).update(config={"trigger": "nope"})
    assert "Invalid settings:" in client.get(url).content.decode()
    Automation.objects.filter(pk=automation.pk).update(config=automation.config)
    response = client.post(
        url, {"name": "renamed", "max_price_age_seconds": "20", "config": "{}", "status": "completed", "memory": "{}"}
    )
    assert response.status_code == 302
    automation.refresh_from_db()
    assert automation.name == "renamed"
    assert automation.config["trigger"] == "liquidation_distance"
    assert automation.status == Automation.Status.ACTIVE


def test_automation_pause_action_goes_through_the_service(client, superuser, account):
    automation = _guard(account)
    client.force_login(superuser)
    client.post(
        reverse("admin:automations_automation_changelist"),
        {"action": "pause_selected", "_selected_action": [automation.pk]},
    )
    automation.refresh_from_db()
    assert automation.status == Automation.Status.PAUSED
    assert AuditEntry.objects.filter(automation=automation, message__contains="paused").exists()


def test_tracked_trade_only_managed_is_editable(client, superuser, account):
    trade = _trade(account)
    client.force_login(superuser)
    assert client.get(reverse("admin:automations_trackedtrade_add")).status_code == 403
    url = reverse("admin:automations_trackedtrade_change", args=[trade.pk])
    body = client.get(url).content.decode()
    assert 'name="managed"' in body
    assert 'name="quantity"' not in body
    response = client.post(url, {"managed": "on", "quantity": "999999", "trade_id": "hijack"})
    assert response.status_code == 302
    trade.refresh_from_db()
    assert trade.managed
    assert trade.quantity == 100
    assert trade.trade_id == "t1"
    assert AuditEntry.objects.filter(account=account, message__contains="now managed").exists()
    assert (
        client.post(reverse("admin:automations_trackedtrade_delete", args=[trade.pk]), {"post": "yes"}).status_code
        == 403
    )


def test_global_switch_is_editable_and_audited(client, superuser, account):
    client.force_login(superuser)
    response = client.post(reverse("admin:automations_globalswitch_add"), {"kill_switch": "on", "reason": "incident"})
    assert response.status_code == 302
    assert GlobalSwitch.is_on()
    assert GlobalSwitch.objects.get().pk == 1
    assert client.get(reverse("admin:automations_globalswitch_add")).status_code == 403
    assert AuditEntry.objects.filter(account=account, message__contains="incident").exists()
    client.post(reverse("admin:automations_globalswitch_change", args=[1]), {"reason": ""})
    assert not GlobalSwitch.is_on()


@pytest.mark.parametrize("model", ["automation", "orderintent", "auditentry", "trackedtrade"])
def test_staff_see_only_rows_of_their_own_accounts(client, alice, bob, account, make_account, model):
    # given: alice is staff (not superuser) with view permissions
    alice.is_staff = True
    alice.save()
    alice.user_permissions.add(*Permission.objects.filter(content_type__app_label="automations"))
    bobs = make_account(bob, label="bob-main")
    mine, theirs = {
        "automation": lambda: (_guard(account, "alice-guard"), _guard(bobs, "bob-guard")),
        "orderintent": lambda: (_intent(account), _intent(bobs)),
        "auditentry": lambda: (
            AuditEntry.objects.create(account=account, event="decision", outcome="ok", message="alice-entry"),
            AuditEntry.objects.create(account=bobs, event="decision", outcome="ok", message="bob-entry"),
        ),
        "trackedtrade": lambda: (_trade(account, "alice-trade"), _trade(bobs, "bob-trade")),
    }[model]()
    client.force_login(alice)
    # when
    response = client.get(reverse(f"admin:automations_{model}_changelist"))
    # then
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    assert mine.pk in shown
    assert theirs.pk not in shown
    assert client.get(reverse(f"admin:automations_{model}_change", args=[theirs.pk])).status_code in (302, 404)
