"""automations.services.compiled_update: the statement written once updates exactly what the ORM's update does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.models import TrackedTrade
from automations.services.compiled_update import compiled_update

pytestmark = pytest.mark.django_db


def _trade(account: ExchangeAccount, trade_id: str) -> TrackedTrade:
    return TrackedTrade.objects.create(
        account=account,
        trade_id=trade_id,
        origin="axisor",
        state="running",
        side="b",
        quantity=100,
        entry_price=Decimal("100000"),
        margin=10_000,
        leverage=Decimal("10"),
        liquidation=Decimal("90909"),
        stoploss=Decimal("95000.5"),
        last_seen_at=timezone.now(),
    )


def _row(pk: int) -> dict[str, Any]:
    row = TrackedTrade.objects.get(pk=pk)
    return {
        f.attname: getattr(row, f.attname)
        for f in TrackedTrade._meta.concrete_fields
        if f.attname not in ("id", "first_seen_at")
    }


def test_it_writes_what_the_orm_writes(
    alice: User, make_account: Callable[..., ExchangeAccount], django_assert_num_queries: Any
) -> None:
    account = make_account(alice)
    ours, theirs = _trade(account, "t-1"), _trade(account, "t-2")
    now = timezone.now() + timedelta(minutes=1)
    values: dict[str, object] = {
        "state": TrackedTrade.State.CLOSED,
        "quantity": 100,
        "entry_price": Decimal("100000.04"),  # rounded by the field, as the ORM rounds it
        "leverage": Decimal("12.3456789"),
        "stoploss": Decimal(0),
        "exit_price": None,
        "pl": -1234,
        "closed_reason": "closed — é",
        "closed_by_axisor": True,
        "closed_at": now,
        "last_seen_at": now,
    }
    with django_assert_num_queries(1):
        assert compiled_update(TrackedTrade, where={"account_id": account.pk, "trade_id": "t-1"}, values=values) == 1
    assert TrackedTrade.objects.filter(account=account, trade_id="t-2").update(**values) == 1
    assert {**_row(ours.pk), "trade_id": "t-2"} == _row(theirs.pk)
    assert _row(ours.pk)["exit_price"] is None
    # nothing matched: nothing written
    assert compiled_update(TrackedTrade, where={"account_id": account.pk, "trade_id": "t-9"}, values=values) == 0


def test_it_refuses_what_it_cannot_write_as_the_orm_would(alice: User, make_account: Callable[..., ExchangeAccount]):
    account = make_account(alice)
    _trade(account, "t-1")
    with pytest.raises(TypeError):
        compiled_update(TrackedTrade, where={"trade_id": "t-1"}, values={"pl": F("pl") + 1})
    with pytest.raises(TypeError):
        compiled_update(TrackedTrade, where={"account_id": account}, values={"pl": 1})
    with pytest.raises(ValueError, match="NULL"):
        compiled_update(TrackedTrade, where={"exit_price": None}, values={"pl": 1})
    with pytest.raises(LookupError):
        compiled_update(TrackedTrade, where={"trade_id": "t-1"}, values={"nope": 1})
    assert TrackedTrade.objects.get(trade_id="t-1").pl == 0
