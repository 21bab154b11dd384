"""History and performance pages through the Django client: owner scoping, filters, pagination, CSV, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.models import Automation, OrderIntent
from history.models import BalancePoint, ClosedTrade

pytestmark = pytest.mark.django_db


def _trade(account: ExchangeAccount, n: int, **extra: object) -> ClosedTrade:
    fields: dict[str, object] = {
        "side": "buy",
        "quantity": 100,
        "leverage": Decimal(10),
        "margin": 10_000,
        "entry_price": Decimal(100000),
        "exit_price": Decimal(101000),
        "pl": 990,
        "opening_fee": 100,
        "closing_fee": 99,
        "funding_fees": 1,
        "opened_at": timezone.now() - dt.timedelta(hours=2),
        "closed_at": timezone.now() - dt.timedelta(minutes=n),
        "closed_by": ClosedTrade.ClosedBy.OUTSIDE,
        **extra,
    }
    return ClosedTrade.objects.create(account=account, trade_id=f"t-{account.pk}-{n}", **fields)


@pytest.fixture
def two_accounts(alice: User, make_account: Callable[..., ExchangeAccount]) -> tuple[ExchangeAccount, ExchangeAccount]:
    return make_account(alice, label="main"), make_account(alice, label="second", api_key="key-0002")


def test_history_lists_every_account_and_filters_by_account_and_outcome(
    logged: Client, two_accounts: tuple[ExchangeAccount, ExchangeAccount], bob: User, make_account
) -> None:
    main, second = two_accounts
    _trade(main, 1)
    _trade(second, 2, pl=-500, exit_price=Decimal(99500), closed_by=ClosedTrade.ClosedBy.STOPLOSS)
    _trade(make_account(bob, label="bobs"), 3)

    page = logged.get("/history/").content.decode()
    assert f"t-{main.pk}-1" in page
    assert f"t-{second.pk}-2" in page
    assert "bobs" not in page
    only_second = logged.get("/history/", {"account": second.pk}).content.decode()
    assert f"t-{main.pk}-1" not in only_second
    assert "Stop-loss" in only_second
    wins = logged.get("/history/", {"account": "", "outcome": "win"}).content.decode()  # all accounts again
    assert f"t-{main.pk}-1" in wins
    assert f"t-{second.pk}-2" not in wins
    losses = logged.get("/history/", {"account": "", "outcome": "loss"}).content.decode()
    assert f"t-{second.pk}-2" in losses
    assert f"t-{main.pk}-1" not in losses


def test_history_filters_by_automation_and_dates(logged: Client, two_accounts) -> None:
    main, _second = two_accounts
    guard = Automation.objects.create(account=main, name="night watch", kind=Automation.Kind.MARGIN_GUARD, config={})
    _trade(main, 1, closed_by="automation", automation=guard, automation_name=guard.name)
    _trade(main, 2, closed_at=timezone.now() - dt.timedelta(days=10))
    by_guard = logged.get("/history/", {"automation": guard.pk}).content.decode()
    assert "night watch" in by_guard
    assert f"t-{main.pk}-2" not in by_guard
    today = timezone.localdate().isoformat()
    recent = logged.get("/history/", {"start": today, "end": today}).content.decode()
    assert f"t-{main.pk}-1" in recent
    assert f"t-{main.pk}-2" not in recent


def test_bad_filters_are_reported_not_a_500(logged: Client, two_accounts, bob: User, make_account) -> None:
    foreign = make_account(bob, label="bobs")
    for query in (
        {"account": foreign.pk},
        {"account": "x"},
        {"start": "2026-13-45"},
        {"outcome": "<script>"},
        {"start": "2026-02-02", "end": "2026-01-01"},
        {"page": "-3"},
        {"automation": "99999999999999999999999"},
    ):
        response = logged.get("/history/", query)
        assert response.status_code == 200, query
    body = logged.get("/history/", {"start": "2026-02-02", "end": "2026-01-01"}).content.decode()
    assert "The end date is before the start date." in body
    assert logged.get("/history/export.csv", {"account": "x"}).status_code == 200


def test_pagination_50_a_page(logged: Client, two_accounts) -> None:
    main, _ = two_accounts
    for n in range(60):
        _trade(main, n)
    first = logged.get("/history/").content.decode()
    assert first.count("data-trade=") == 50
    assert "Page 1 of 2" in first
    second = logged.get("/history/", {"page": 2}).content.decode()
    assert second.count("data-trade=") == 10


def test_csv_export_has_every_filtered_trade_and_defuses_formulas(logged: Client, alice: User, make_account) -> None:
    evil = make_account(alice, label="=HYPERLINK(1)")
    for n in range(60):
        _trade(evil, n)
    response = logged.get("/history/export.csv")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 60
    assert rows[0]["account"] == "'=HYPERLINK(1)"
    assert rows[0]["net_pl_sats"] == str(990 - 100 - 99 - 1)
    assert rows[0]["net_pl_percent"] == "7.90"
    assert rows[0]["closed_by"] == "outside"


def test_anonymous_is_sent_to_login(client: Client) -> None:
    for url in ("/history/", "/history/export.csv", "/history/performance/"):
        assert client.get(url).status_code == 302


def test_performance_totals_win_rate_per_day_balance_and_automations(logged: Client, two_accounts) -> None:
    main, second = two_accounts
    guard = Automation.objects.create(account=main, name="night watch", kind=Automation.Kind.MARGIN_GUARD, config={})
    entry = Automation.objects.create(account=main, name="dip buyer", kind=Automation.Kind.AUTO_ENTRY, config={})
    _trade(main, 1, closed_by="automation", automation=guard, automation_name=guard.name)
    _trade(main, 2, pl=-500)
    _trade(second, 3)
    OrderIntent.objects.create(account=main, automation=entry, action="open", trade_id=f"t-{main.pk}-2",
                               state=OrderIntent.State.RECONCILED)  # fmt: skip
    OrderIntent.objects.create(account=main, automation=guard, action="add_margin", trade_id="x",
                               params={"amount": 2500}, state=OrderIntent.State.RECONCILED)  # fmt: skip
    OrderIntent.objects.create(account=main, automation=guard, action="add_margin", trade_id="x",
                               params={"amount": 999}, state=OrderIntent.State.REJECTED)  # fmt: skip
    BalancePoint.objects.create(account=main, at=timezone.now() - dt.timedelta(hours=1), free=900_000, in_margin=0)
    BalancePoint.objects.create(account=second, at=timezone.now(), free=50_000, in_margin=10_000)

    page = logged.get("/history/performance/").content.decode()
    assert 'id="win-rate">66.7 %' in page
    assert 'id="total-fees">597<' in page
    assert 'id="total-funding">3<' in page
    assert f'id="total-net" class="pos">{2 * 990 - 500 - 3 * 200}<' in page
    assert 'id="balance-last">960,000<' in page
    assert page.count("<rect ") == 30

    only_main = logged.get("/history/performance/", {"account": main.pk}).content.decode()
    assert 'id="win-rate">50.0 %' in only_main
    assert 'id="balance-last">900,000<' in only_main
    rows = {s.automation.name: s for s in logged.get("/history/performance/").context["automations"]}
    assert rows["night watch"].margin_added == 2500
    assert rows["night watch"].rejected == 1
    assert rows["night watch"].closed == 1
    assert rows["night watch"].closed_pl == 790
    assert rows["dip buyer"].opened == 1
    assert rows["dip buyer"].opened_pl == -700


def test_a_trade_that_made_less_than_its_fees_is_a_loss(logged: Client, two_accounts) -> None:
    main, _ = two_accounts
    _trade(main, 1, pl=150)  # 150 before fees, 200 of fees: a loss of 50
    _trade(main, 2, pl=1000)
    page = logged.get("/history/performance/", {"account": main.pk}).content.decode()
    assert 'id="win-rate">50.0 %' in page
    losses = logged.get("/history/", {"outcome": "loss"}).content.decode()
    assert f"t-{main.pk}-1" in losses
    assert f"t-{main.pk}-2" not in losses
