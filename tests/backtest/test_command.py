"""``manage.py backtest``: JSON and CSV for scripts, clear errors on bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from automations.configs import config_to_json
from automations.engine import MarginGuardConfig
from automations.models import Automation

CLOSE5 = json.dumps(
    {
        "label": "close 5",
        "kind": "margin_guard",
        "config": {"trigger": "liquidation_distance", "threshold": "5", "action": "close"},
    }
)
ADD8 = json.dumps(
    {
        "label": "add 8",
        "kind": "margin_guard",
        "config": {
            "trigger": "liquidation_distance",
            "threshold": "8",
            "action": "add_margin",
            "add_margin_mode": "restore_distance",
            "target_distance": "15",
        },
    }
)
TRADES = ["--trade", "buy 500 10x", "--trade", "sell 300 5x", "--trade", "buy 200 25x"]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("backtest", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_json_report_compares_configurations_on_a_scenario():
    report = json.loads(run("--config", CLOSE5, "--config", ADD8, "--scenario", "flash_crash", "--seed", "1", *TRADES))
    assert report["history"]["rows"] == 1440
    assert report["baseline"]["liquidations"] >= 1
    labels = [r["label"] for r in report["results"]]
    assert labels == ["close 5", "add 8"]
    close, add = report["results"]
    assert close["liquidations_avoided"] >= 1
    assert close["counts"]["close"] >= 1
    assert add["margin_added"] > 0
    assert all(a["kind"] in ("close", "skip", "funding", "liquidation", "stoploss") for a in close["actions_list"])
    assert len(report["price"]["t"]) > 100


def test_summary_csv_has_one_row_per_configuration():
    text = run("--config", CLOSE5, "--config", ADD8, "--scenario", "slow_bleed", *TRADES, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["label"] for r in rows] == ["(no automation)", "close 5", "add 8"]
    assert int(rows[0]["liquidations"]) >= 1
    assert int(rows[2]["margin_added"]) > 0


def test_actions_csv_lists_every_action(tmp_path):
    target = tmp_path / "actions.csv"
    run("--config", CLOSE5, "--scenario", "flash_crash", *TRADES, "--format", "actions-csv", "--output", str(target))
    rows = list(csv.DictReader(target.open()))
    kinds = {(r["label"], r["kind"]) for r in rows}
    assert ("close 5", "close") in kinds
    assert ("(no automation)", "liquidation") in kinds
    assert all(r["time"].startswith("2026-01-01T") for r in rows)


@pytest.mark.django_db
def test_a_saved_automation_and_the_accounts_trades(alice, make_account):
    account = make_account(alice)
    config = MarginGuardConfig(
        trigger="liquidation_distance", threshold=__import__("decimal").Decimal(5), action="close"
    )
    guard = Automation.objects.create(account=account, name="saved", kind="margin_guard", config=config_to_json(config))
    report = json.loads(run("--automation", str(guard.pk), "--scenario", "short_squeeze", "--trade", "sell 100 20x"))
    assert report["results"][0]["label"] == "saved"
    assert report["results"][0]["closed_by"] == {"t1": "automation"}
    with pytest.raises(CommandError, match="no running trade"):
        run("--automation", str(guard.pk), "--scenario", "short_squeeze", "--account-trades", str(account.pk))


def test_csv_ticks(tmp_path):
    path = tmp_path / "ticks.csv"
    path.write_text("time,price\n2026-01-01T00:00:00Z,100000\n2026-01-01T00:00:01Z,95000\n2026-01-01T00:00:02Z,90000\n")
    report = json.loads(
        run(
            "--config", CLOSE5, "--csv", str(path), "--csv-kind", "ticks", "--trade", "buy 100 10x", "--latency-ms", "0"
        )
    )
    (close,) = [a for a in report["results"][0]["actions_list"] if a["kind"] == "close"]
    assert (close["price"], close["fill"], close["outcome"]) == ("95000.0", "95000.0", "done")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "flash_crash", *TRADES], "between 1 and 10 configurations"),
        (["--config", "{bad", "--scenario", "flash_crash", *TRADES], "not valid JSON"),
        (["--config", CLOSE5, *TRADES], "exactly one price source"),
        (["--config", CLOSE5, "--scenario", "flash_crash", "--csv", "x.csv", *TRADES], "exactly one price source"),
        (["--config", CLOSE5, "--scenario", "flash_crash"], "at least one --trade"),
        (["--config", CLOSE5, "--scenario", "flash_crash", "--trade", "buy 1 1000x"], "leverage must be 1 to 100"),
        (["--config", CLOSE5, "--csv", "/nonexistent.csv", *TRADES], "Cannot read"),
        (
            [
                "--config",
                CLOSE5,
                "--exchange",
                "simulator",
                "--from",
                "2026-01-02T00:00Z",
                "--to",
                "2026-01-01T00:00Z",
                *TRADES,
            ],
            "after --from",
        ),
        (
            [
                "--config",
                CLOSE5,
                "--exchange",
                "simulator",
                "--from",
                "yesterday",
                "--to",
                "2026-01-01T00:00Z",
                *TRADES,
            ],
            "not an ISO",
        ),
        (["--config", CLOSE5, "--scenario", "flash_crash", "--latency-ms", "-1", *TRADES], "latency"),
        (["--config", CLOSE5, "--scenario", "flash_crash", "--funding-rate", "5", *TRADES], "funding-rate"),
    ],
)
def test_bad_input_is_a_clear_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


@pytest.mark.django_db
def test_unknown_automation():
    with pytest.raises(CommandError, match="No automation 999"):
        run("--automation", "999", "--scenario", "flash_crash", *TRADES)
