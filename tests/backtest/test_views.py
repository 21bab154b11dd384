"""Backtest pages and services: "Backtest this" prefilled, a run worked through its steps, the report and chart data,
progress JSON, CSV export, clear errors for bad input (never a 500), owner scoping (404)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from automations.configs import config_to_json
from automations.engine import MarginGuardConfig
from automations.models import Automation
from backtest.models import BacktestResult, BacktestRun
from backtest.services import backtest_run_step

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(alice, make_account):
    return make_account(alice, label="alice-paper")


@pytest.fixture
def guard(account) -> Automation:
    config = MarginGuardConfig(trigger="liquidation_distance", threshold=Decimal(5), action="close")
    return Automation.objects.create(
        account=account, name="close at 5", kind="margin_guard", config=config_to_json(config)
    )


@pytest.fixture
def enqueued():
    with mock.patch("backtest.services.backtest_enqueue") as enqueue:
        yield enqueue


VARIANT: list[dict[str, Any]] = [
    {
        "label": "add margin at 8",
        "kind": "margin_guard",
        "config": {
            "trigger": "liquidation_distance",
            "threshold": "8",
            "action": "add_margin",
            "add_margin_mode": "restore_distance",
            "target_distance": "15",
        },
    }
]


def form_data(guard: Automation | None, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "crash test",
        "automations": [guard.pk] if guard else [],
        "variants": json.dumps(VARIANT),
        "source": "scenario",
        "scenario": "flash_crash",
        "seed": "1",
        "start_price": "100000",
        "trades_source": "described",
        "trades": "buy 500 10x\nsell 300 5x\nbuy 200 25x sl=80000",
        "balance": "1000000",
        "funding_rate": "0.01",
        "fee_tier": "1",
        "latency_ms": "1000",
        "resolution": "1m",
        "csv_kind": "candles",
        "rebase": "on",
    }
    data.update(changes)
    return data


def run_all(run_id: int) -> BacktestRun:
    """Work a run through its steps as the Celery task chain would."""
    step: int | None = 0
    while step is not None:
        step = backtest_run_step(run_id=run_id, step=step)
    return BacktestRun.objects.get(pk=run_id)


def test_backtest_this_is_prefilled_from_the_automation(client, alice, guard):
    client.force_login(alice)
    page = client.get(reverse("automations:account", args=[guard.account_id])).content.decode()
    link = f"{reverse('backtest:new')}?automation={guard.pk}"
    assert link in page
    response = client.get(link)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.initial["automations"] == [guard.pk]
    variants = json.loads(form.initial["variants"])
    assert variants[0]["label"] == "close at 5 (variant)"
    assert variants[0]["config"]["threshold"] == "5"
    assert "Backtest “close at 5”" in response.content.decode()


def test_a_run_from_the_form_to_the_report(client, alice, guard, enqueued, django_capture_on_commit_callbacks):
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{reverse('backtest:new')}?automation={guard.pk}", form_data(guard))
    run = BacktestRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("backtest:detail", args=[run.pk])
    enqueued.assert_called_once_with(run.pk, 0)
    assert run.status == BacktestRun.Status.QUEUED
    assert [c["label"] for c in run.configs] == ["close at 5", "add margin at 8"]
    assert run.automation == guard
    page = client.get(reverse("backtest:detail", args=[run.pk])).content.decode()
    assert 'id="bt-progress"' in page
    run = run_all(run.pk)
    assert run.status == BacktestRun.Status.DONE
    assert run.progress == 100
    assert run.rows == 1440
    results = list(BacktestResult.objects.filter(run=run))
    assert [r.label for r in results] == ["No automation", "close at 5", "add margin at 8"]
    baseline, close, add = (r.summary for r in results)
    assert baseline["liquidations"] >= 1  # the 25x long does not survive a −15 % crash
    assert close["liquidations_avoided"] >= 1
    assert add["margin_added"] > 0
    progress = client.get(reverse("backtest:progress", args=[run.pk])).json()
    assert progress == {"status": "done", "progress": 100, "message": "", "finished": True, "stalled": False}
    page = client.get(reverse("backtest:detail", args=[run.pk])).content.decode()
    assert "Side by side" in page
    assert 'id="bt-chart-data"' in page
    assert "Liquidations avoided" in page
    chart = client.get(reverse("backtest:detail", args=[run.pk])).context["chart"]
    assert len(chart["configs"]) == 3
    assert chart["configs"][1]["markers"]
    assert chart["price"]["t"]
    csv_text = client.get(reverse("backtest:actions-csv", args=[run.pk])).content.decode()
    assert csv_text.splitlines()[0].startswith("label,time,price,source,kind")
    assert "close at 5" in csv_text
    listing = client.get(reverse("backtest:list")).content.decode()
    assert "crash test" in listing


def test_another_user_sees_nothing(client, alice, bob, guard, enqueued):
    client.force_login(alice)
    client.post(reverse("backtest:new"), form_data(guard))
    run = BacktestRun.objects.get()
    client.force_login(bob)
    for name in ("backtest:detail", "backtest:progress", "backtest:actions-csv"):
        assert client.get(reverse(name, args=[run.pk])).status_code == 404
    assert client.post(reverse("backtest:delete", args=[run.pk])).status_code == 404
    assert client.post(reverse("backtest:rerun", args=[run.pk])).status_code == 404
    assert client.get(f"{reverse('backtest:new')}?automation={guard.pk}").status_code == 404
    assert client.get(f"{reverse('backtest:new')}?automation=abc").status_code == 404
    assert "crash test" not in client.get(reverse("backtest:list")).content.decode()
    # bob cannot replay alice's automation by posting its id either
    response = client.post(reverse("backtest:new"), form_data(guard))
    assert response.status_code == 200
    assert "automations" in response.context["form"].errors
    assert BacktestRun.objects.count() == 1


def test_pages_need_a_login(client):
    assert client.get(reverse("backtest:list")).status_code == 302


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"variants": "{not json"}, "variants", "This is not valid JSON"),
        ({"variants": json.dumps([{"kind": "nope", "config": {}}])}, "variants", '"kind" must be'),
        (
            {"variants": json.dumps([{"label": "x", "kind": "margin_guard", "config": {"trigger": "margin_ratio"}}])},
            "variants",
            "Configuration 1 (x)",
        ),
        (
            {
                "variants": json.dumps(
                    [{"kind": "margin_guard", "config": {**VARIANT[0]["config"], "threshold": "150"}}]
                )
            },
            "variants",
            "less than 100",
        ),
        ({"variants": "", "automations": []}, "automations", "Choose an automation or give a configuration"),
        ({"variants": json.dumps(VARIANT * 11)}, "variants", "at most 10"),
        ({"trades": "buy lots"}, "trades", "Line 1: write side, quantity and leverage"),
        ({"trades": "buy 500 500x"}, "trades", "leverage must be 1 to 100"),
        ({"trades": "buy 500 10x sl=abc"}, "trades", "sl must be a price"),
        ({"trades": "buy 500 10x sl=101000 tp=100000"}, "trades", "stop-loss must be below"),
        ({"trades": "", "variants": json.dumps(VARIANT)}, "trades", "Describe at least one trade"),
        ({"source": "exchange"}, "account", "Choose the exchange account"),
        ({"source": "csv"}, "csv_file", "Choose a CSV file"),
        ({"seed": "-4"}, "seed", "greater than or equal to 0"),
        ({"latency_ms": "999999"}, "latency_ms", "less than or equal to 60000"),
        ({"balance": "1e400"}, "balance", "whole number"),
        ({"funding_rate": "NaN"}, "funding_rate", "number"),
        ({"name": "x\x00y"}, "name", ""),
    ],
)
def test_bad_input_gets_a_form_error_not_a_500(client, alice, guard, enqueued, changes, field, message):
    client.force_login(alice)
    response = client.post(reverse("backtest:new"), form_data(guard, **changes))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert BacktestRun.objects.count() == 0


def test_exchange_range_is_checked(client, alice, guard, account, enqueued):
    client.force_login(alice)
    changes = {"source": "exchange", "account": account.pk, "resolution": "1m"}
    response = client.post(
        reverse("backtest:new"), form_data(guard, date_from="2026-01-02 00:00", date_to="2026-01-01 00:00", **changes)
    )
    assert "The end must be after the start" in " ".join(response.context["form"].errors["date_to"])
    response = client.post(
        reverse("backtest:new"), form_data(guard, date_from="2020-01-01 00:00", date_to="2026-01-01 00:00", **changes)
    )
    assert "more than 600,000 candles" in " ".join(response.context["form"].errors["date_to"])


def test_csv_upload_is_parsed_stored_and_replayed(client, alice, guard, enqueued):
    client.force_login(alice)
    rows = ["time,open,high,low,close"]
    price = 100000
    for minute in range(120):
        low = price - 2000 if minute == 60 else price - 50
        rows.append(f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z,{price},{price + 50},{low},{price}")
    upload = SimpleUploadedFile("prices.csv", "\n".join(rows).encode(), content_type="text/csv")
    response = client.post(reverse("backtest:new"), form_data(guard, source="csv", csv_file=upload))
    assert response.status_code == 302
    run = BacktestRun.objects.get()
    assert run.rows == 120
    assert run.source_params == {"file": "prices.csv", "kind": "candles"}
    run = run_all(run.pk)
    assert run.status == BacktestRun.Status.DONE


def test_bad_csv_names_the_line(client, alice, guard, enqueued):
    client.force_login(alice)
    text = "time,open,high,low,close\n2026-01-01T00:00:00Z,1,2,1,1\n2026-01-01T00:01:00Z,100000,99000,100000,100000\n"
    upload = SimpleUploadedFile("bad.csv", text.encode())
    response = client.post(reverse("backtest:new"), form_data(guard, source="csv", csv_file=upload))
    errors = " ".join(response.context["form"].errors["csv_file"])
    assert "Data row 1" in errors or "Data row 2" in errors


def test_a_failing_step_marks_the_run_failed_with_a_message(client, alice, guard, enqueued):
    client.force_login(alice)
    client.post(reverse("backtest:new"), form_data(guard))
    run = BacktestRun.objects.get()
    with mock.patch(
        "backtest.services.scenario_history",
        side_effect=__import__("backtest.history").history.HistoryError("no prices"),
    ):
        assert backtest_run_step(run_id=run.pk, step=0) is None
    run.refresh_from_db()
    assert run.status == BacktestRun.Status.FAILED
    assert run.message == "no prices"
    page = client.get(reverse("backtest:detail", args=[run.pk])).content.decode()
    assert "The backtest failed" in page
    assert "no prices" in page
    # and it can be started again
    response = client.post(reverse("backtest:rerun", args=[run.pk]))
    assert response.status_code == 302
    assert BacktestRun.objects.filter(status=BacktestRun.Status.QUEUED).count() == 1


def test_a_second_delivery_of_the_first_step_does_nothing(client, alice, guard, enqueued):
    client.force_login(alice)
    client.post(reverse("backtest:new"), form_data(guard))
    run = BacktestRun.objects.get()
    assert backtest_run_step(run_id=run.pk, step=0) == 1
    assert backtest_run_step(run_id=run.pk, step=0) is None
    assert BacktestResult.objects.filter(run=run).count() == 1


def test_the_task_goes_to_the_default_queue_at_low_priority(client, alice, guard, django_capture_on_commit_callbacks):
    from backtest import tasks

    client.force_login(alice)
    with (
        mock.patch.object(tasks.backtest_run_step_task, "apply_async") as apply_async,
        django_capture_on_commit_callbacks(execute=True),
    ):
        client.post(reverse("backtest:new"), form_data(guard))
    run = BacktestRun.objects.get()
    apply_async.assert_called_once_with(args=(run.pk, 0), queue="celery", priority=9)


def test_delete(client, alice, guard, enqueued):
    client.force_login(alice)
    client.post(reverse("backtest:new"), form_data(guard))
    run = run_all(BacktestRun.objects.get().pk)
    assert client.post(reverse("backtest:delete", args=[run.pk])).status_code == 302
    assert not BacktestRun.objects.exists()
    assert not BacktestResult.objects.exists()


def test_ids_beyond_64_bits_are_refused_not_a_500(client, alice, guard, enqueued):
    client.force_login(alice)
    huge = "99999999999999999999999"
    assert client.get(f"{reverse('backtest:new')}?automation={huge}").status_code == 404
    assert client.get(f"/backtests/{huge}/").status_code == 404
    response = client.post(reverse("backtest:new"), form_data(guard, automations=[huge], account=huge))
    assert response.status_code == 200
    assert set(response.context["form"].errors) >= {"automations", "account"}
    deep = client.post(reverse("backtest:new"), form_data(guard, variants="[" * 5000))
    assert "not valid JSON" in " ".join(deep.context["form"].errors["variants"])


def test_a_stalled_run_offers_to_start_again(client, alice, guard, enqueued):
    from datetime import timedelta

    from django.utils import timezone

    client.force_login(alice)
    client.post(reverse("backtest:new"), form_data(guard))
    run = BacktestRun.objects.get()
    page = client.get(reverse("backtest:detail", args=[run.pk])).content.decode()
    assert '<div id="bt-stalled" hidden>' in page  # a fresh run: no restart button shown
    BacktestRun.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    page = client.get(reverse("backtest:detail", args=[run.pk])).content.decode()
    assert '<div id="bt-stalled">' in page
    assert client.get(reverse("backtest:progress", args=[run.pk])).json()["stalled"] is True


def test_an_engine_failure_fails_the_run_with_its_message(client, alice, guard, enqueued):
    from automations.engine import EngineError

    client.force_login(alice)
    client.post(reverse("backtest:new"), form_data(guard))
    run = BacktestRun.objects.get()
    with mock.patch("backtest.replay.evaluate_safe", side_effect=EngineError(1, "ValueError: boom")):
        run = run_all(run.pk)
    assert run.status == BacktestRun.Status.FAILED
    assert run.message == "The automation engine failed on this configuration: automation 1: ValueError: boom"
