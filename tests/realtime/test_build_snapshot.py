"""``realtime.snapshot.build_snapshot``: what a cold snapshot shows, read in four queries (issue #14: every socket of
a storm after a deploy builds one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import ExchangeAccount, User
from automations.models import Automation, TrackedTrade
from realtime.snapshot import build_snapshot

pytestmark = pytest.mark.django_db


def test_a_cold_snapshot_is_four_queries_and_shows_the_active_account_with_its_guards(
    alice: User,
    bob: User,
    make_account: Callable[..., ExchangeAccount],
    make_trade: Callable[..., TrackedTrade],
    django_assert_num_queries: Any,
) -> None:
    zeta = make_account(alice, label="zeta")
    alpha, beta = make_account(alice, label="alpha"), make_account(alice, label="beta")
    ExchangeAccount.objects.filter(owner=alice).update(is_active=False)
    ExchangeAccount.objects.filter(pk=zeta.pk).update(is_active=True)
    foreign = make_account(bob, label="bob's")
    guard = Automation.objects.create(account=zeta, name="b guard", kind="margin_guard", config={"trade_ids": []})
    Automation.objects.create(
        account=zeta, name="a paused", kind="margin_guard", config={"trade_ids": []}, status=Automation.Status.PAUSED
    )
    Automation.objects.create(account=alpha, name="elsewhere", kind="margin_guard", config={"trade_ids": []})
    make_trade(zeta, "t-1")

    with django_assert_num_queries(4):
        data, rows = build_snapshot(user=alice)
    assert data["account"] is not None
    assert data["account"]["id"] == zeta.pk
    assert [a["label"] for a in data["accounts"]] == ["zeta", "alpha", "beta"]  # the active one first
    assert data["automations"] is not None
    assert [a["name"] for a in data["automations"]["items"]] == ["a paused", "b guard"]
    assert data["automations"]["active"] == 1
    assert [r["guarded_by"] for r in rows] == [[guard.pk]]  # the paused guard and another account's do not count

    assert build_snapshot(user=alice, account_id=beta.pk)[0]["account"]["id"] == beta.pk  # type: ignore[index]
    assert build_snapshot(user=alice, account_id=foreign.pk)[0]["account"] is None
    ExchangeAccount.objects.filter(pk=zeta.pk).update(is_active=False)
    assert build_snapshot(user=alice)[0]["account"]["label"] == "alpha"  # type: ignore[index]  # none active: by label
