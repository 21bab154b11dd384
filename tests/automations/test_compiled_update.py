"""automations.services.compiled_update: the statement written once updates exactly what the ORM's update does."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.models import TrackedTrade
from automations.services.compiled_update import compiled_update, compiled_update_rows

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


def test_a_list_matches_by_in_as_the_orms_in_lookup(alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    account = make_account(alice)
    for trade_id in ("t-1", "t-2", "t-3", "t-4"):
        _trade(account, trade_id)
    where = {"account_id": account.pk, "trade_id": ["t-1", "t-3", "t-9"]}
    assert compiled_update(TrackedTrade, where=where, values={"pl": 7}) == 2
    assert TrackedTrade.objects.filter(account=account, trade_id__in=["t-2", "t-4"]).update(pl=7) == 2
    assert compiled_update(TrackedTrade, where={"trade_id": ("t-2",)}, values={"pl": 8}) == 1  # a tuple of one
    rows = dict(TrackedTrade.objects.values_list("trade_id", "pl"))
    assert rows == {"t-1": 7, "t-2": 8, "t-3": 7, "t-4": 7}
    assert compiled_update(TrackedTrade, where={"trade_id": []}, values={"pl": 9}) == 0  # IN () matches nothing
    with pytest.raises(ValueError, match="NULL"):
        compiled_update(TrackedTrade, where={"exit_price": [None]}, values={"pl": 1})


def test_rows_written_together_are_what_the_orm_writes_row_by_row(
    alice: User, make_account: Callable[..., ExchangeAccount], django_assert_num_queries: Any
) -> None:
    """``compiled_update_rows``: one statement on PostgreSQL (each value cast to its column), one per row
    elsewhere; the keys matched are returned, a key that matches nothing writes nothing."""
    account = make_account(alice)
    for trade_id in ("t-1", "t-2", "t-3", "t-4"):
        _trade(account, trade_id)
    now = timezone.now() + timedelta(minutes=1)

    def values(n: int) -> dict[str, object]:
        return {
            "state": TrackedTrade.State.CLOSED,
            "entry_price": Decimal("100000.04") + n,
            "leverage": Decimal("12.3456789"),
            "exit_price": None if n == 1 else Decimal("90000.5"),
            "pl": -1234 * n,
            "closed_reason": "closed — é'",
            "closed_by_axisor": n == 1,
            "closed_at": now,
            "last_seen_at": now,
        }

    rows = [{"account_id": account.pk, "trade_id": t, **values(n)} for n, t in ((1, "t-1"), (2, "t-2"), (3, "t-9"))]
    statements = 1 if connection.vendor == "postgresql" else len(rows)
    with django_assert_num_queries(statements):
        matched = compiled_update_rows(TrackedTrade, key=("account_id", "trade_id"), rows=rows)
    assert matched == {(account.pk, "t-1"), (account.pk, "t-2")}
    assert TrackedTrade.objects.filter(account=account, trade_id="t-3").update(**values(1)) == 1
    assert TrackedTrade.objects.filter(account=account, trade_id="t-4").update(**values(2)) == 1
    assert {**_row(TrackedTrade.objects.get(trade_id="t-1").pk), "trade_id": "t-3"} == _row(
        TrackedTrade.objects.get(trade_id="t-3").pk
    )
    assert {**_row(TrackedTrade.objects.get(trade_id="t-2").pk), "trade_id": "t-4"} == _row(
        TrackedTrade.objects.get(trade_id="t-4").pk
    )
    assert not TrackedTrade.objects.filter(trade_id="t-9").exists()
    with pytest.raises(ValueError, match="same columns"):
        compiled_update_rows(TrackedTrade, key=("trade_id",), rows=[{"trade_id": "t-1", "pl": 1}, {"trade_id": "t-2"}])
    with pytest.raises(TypeError):
        compiled_update_rows(TrackedTrade, key=("trade_id",), rows=[{"trade_id": "t-1", "pl": F("pl") + 1}])
