"""Automation forms: every field validated with a plain-English error on the right field, LN Markets' rules taken
from the engine's specs, garbage (NaN, infinity, 10 kB strings, control characters, other users' accounts) refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from automations.engine import AutoEntryConfig, MarginGuardConfig, TpSlConfig
from automations.forms import AuditFilterForm, AutoEntryForm, MarginGuardForm, TpSlForm
from automations.kinds import KINDS
from automations.models import Automation
from automations.services import management

MARGIN_GUARD = {
    "name": "Guard",
    "max_price_age_seconds": "15",
    "trigger": "liquidation_distance",
    "threshold": "5",
    "action": "close",
    "cooldown_seconds": "60",
}
TPSL = {
    "name": "Take profit",
    "max_price_age_seconds": "15",
    "direction": "profit",
    "trigger_percent": "10",
    "action": "set_takeprofit",
    "price": "110000",
}
AUTO_ENTRY = {
    "name": "Dip buyer",
    "max_price_age_seconds": "15",
    "side": "buy",
    "leverage": "10",
    "quantity": "100",
    "trigger": "price_below",
    "trigger_price": "90000",
    "repeat_count": "0",
    "repeat_cooldown_seconds": "0",
}
BASE = {"margin_guard": MARGIN_GUARD, "tpsl": TPSL, "auto_entry": AUTO_ENTRY}

GARBAGE_NUMBERS = ["NaN", "nan", "sNaN", "inf", "-Infinity", "1e400", "abc", "5" * 10_000, "1,5", "0x10", "½"]

# (kind, changes to the valid data, the field that must carry the error)
BAD_INPUT = [
    # common fields
    ("margin_guard", {"name": ""}, "name"),
    ("margin_guard", {"name": "   "}, "name"),
    ("margin_guard", {"name": "x" * 101}, "name"),
    ("margin_guard", {"name": "x" * 10_240}, "name"),
    ("margin_guard", {"name": "bad\x00name"}, "name"),
    ("margin_guard", {"name": "bad\x07bell"}, "name"),
    ("margin_guard", {"name": "evil\u202eflip"}, "name"),
    ("margin_guard", {"name": "lone \ud800 surrogate"}, "name"),
    ("margin_guard", {"max_price_age_seconds": "0"}, "max_price_age_seconds"),
    ("margin_guard", {"max_price_age_seconds": "99999"}, "max_price_age_seconds"),
    ("margin_guard", {"max_price_age_seconds": "1.5"}, "max_price_age_seconds"),
    ("margin_guard", {"account": "abc"}, "account"),
    ("margin_guard", {"account": "99999999999999999999999999"}, "account"),
    ("margin_guard", {"account": ""}, "account"),
    # Margin Guard
    ("margin_guard", {"trigger": "price"}, "trigger"),
    ("margin_guard", {"threshold": ""}, "threshold"),
    ("margin_guard", {"threshold": "0"}, "threshold"),
    ("margin_guard", {"threshold": "100"}, "threshold"),
    ("margin_guard", {"threshold": "-5"}, "threshold"),
    ("margin_guard", {"threshold": "5.123456"}, "threshold"),
    ("margin_guard", {"action": "explode"}, "action"),
    ("margin_guard", {"action": "reduce"}, "reduce_percent"),
    ("margin_guard", {"action": "reduce", "reduce_percent": "100"}, "reduce_percent"),
    ("margin_guard", {"action": "reduce", "reduce_percent": "0"}, "reduce_percent"),
    ("margin_guard", {"action": "add_margin"}, "add_margin_mode"),
    ("margin_guard", {"action": "add_margin", "add_margin_mode": "all"}, "add_margin_mode"),
    ("margin_guard", {"action": "add_margin", "add_margin_mode": "fixed"}, "add_margin_amount"),
    (
        "margin_guard",
        {"action": "add_margin", "add_margin_mode": "fixed", "add_margin_amount": "0"},
        "add_margin_amount",
    ),
    (
        "margin_guard",
        {"action": "add_margin", "add_margin_mode": "fixed", "add_margin_amount": "1.5"},
        "add_margin_amount",
    ),
    (
        "margin_guard",
        {"action": "add_margin", "add_margin_mode": "fixed", "add_margin_amount": str(10**30)},
        "add_margin_amount",
    ),
    (
        "margin_guard",
        {"action": "add_margin", "add_margin_mode": "restore_distance", "target_distance": "3"},
        "target_distance",
    ),
    (
        "margin_guard",
        {"action": "add_margin", "add_margin_mode": "fixed", "add_margin_amount": "1000", "max_added_per_trade": "0"},
        "max_added_per_trade",
    ),
    ("margin_guard", {"cooldown_seconds": "-1"}, "cooldown_seconds"),
    ("margin_guard", {"cooldown_seconds": ""}, "cooldown_seconds"),
    ("margin_guard", {"trade_ids": "<script>alert(1)</script>"}, "trade_ids"),
    ("margin_guard", {"trade_ids": "abc, abc"}, "trade_ids"),
    ("margin_guard", {"trade_ids": "x" * 10_240}, "trade_ids"),
    # TP/SL
    ("tpsl", {"direction": "sideways"}, "direction"),
    ("tpsl", {"trigger_percent": "0"}, "trigger_percent"),
    ("tpsl", {"trigger_percent": "-3"}, "trigger_percent"),
    ("tpsl", {"direction": "loss", "trigger_percent": "100"}, "trigger_percent"),
    ("tpsl", {"price": ""}, "price"),
    ("tpsl", {"price": "0"}, "price"),
    ("tpsl", {"price": "-100000"}, "price"),
    ("tpsl", {"price": "100000.25"}, "price"),
    ("tpsl", {"price": "100000.3"}, "price"),
    ("tpsl", {"action": "trailing_stoploss", "price": ""}, "trailing_distance"),
    ("tpsl", {"action": "trailing_stoploss", "price": "", "trailing_distance": "0"}, "trailing_distance"),
    ("tpsl", {"action": "breakeven", "price": "", "direction": "loss"}, "action"),
    # Auto Entry
    ("auto_entry", {"side": "long"}, "side"),
    ("auto_entry", {"leverage": "0"}, "leverage"),
    ("auto_entry", {"leverage": "0.5"}, "leverage"),
    ("auto_entry", {"leverage": "101"}, "leverage"),
    ("auto_entry", {"leverage": ""}, "leverage"),
    ("auto_entry", {"quantity": "0"}, "quantity"),
    ("auto_entry", {"quantity": "-100"}, "quantity"),
    ("auto_entry", {"quantity": "500001"}, "quantity"),
    ("auto_entry", {"quantity": "1.5"}, "quantity"),
    ("auto_entry", {"quantity": ""}, "quantity"),
    ("auto_entry", {"margin": "10000"}, "quantity"),
    ("auto_entry", {"quantity": "", "margin": "0"}, "margin"),
    ("auto_entry", {"trigger": "sometimes"}, "trigger"),
    ("auto_entry", {"trigger_price": ""}, "trigger_price"),
    ("auto_entry", {"trigger_price": "90000.3"}, "trigger_price"),
    ("auto_entry", {"trigger_price": "0"}, "trigger_price"),
    ("auto_entry", {"stoploss": "95000"}, "stoploss"),
    ("auto_entry", {"stoploss": "85000", "stoploss_percent": "5"}, "stoploss"),
    ("auto_entry", {"stoploss": "85000.2"}, "stoploss"),
    ("auto_entry", {"takeprofit": "80000"}, "takeprofit"),
    ("auto_entry", {"takeprofit_percent": "100"}, "takeprofit_percent"),
    ("auto_entry", {"stoploss_percent": "0"}, "stoploss_percent"),
    ("auto_entry", {"repeat_count": "-1"}, "repeat_count"),
    ("auto_entry", {"repeat_cooldown_seconds": "-1"}, "repeat_cooldown_seconds"),
]

# A setting the chosen trigger or action does not use is hidden on the form and ignored (kind, changes, field).
UNUSED_INPUT = [
    ("margin_guard", {"reduce_percent": "10"}, "reduce_percent"),
    ("margin_guard", {"reduce_percent": "NaN", "add_margin_amount": "-5"}, "add_margin_amount"),
    ("tpsl", {"action": "close"}, "price"),
    ("auto_entry", {"trigger": "immediate"}, "trigger_price"),
]

NUMBER_FIELDS = [
    ("margin_guard", "threshold"),
    ("margin_guard", "cooldown_seconds"),
    ("tpsl", "trigger_percent"),
    ("tpsl", "price"),
    ("auto_entry", "leverage"),
    ("auto_entry", "quantity"),
    ("auto_entry", "trigger_price"),
    ("auto_entry", "repeat_count"),
]

FORMS = {key: kind.form for key, kind in KINDS.items()}


def _data(kind: str, account_id: int, **changes: str) -> dict[str, str]:
    return {**BASE[kind], "account": str(account_id), **changes}


@pytest.fixture
def account(alice, make_account):
    return make_account(alice, label="paper")


@pytest.mark.parametrize(("kind", "changes", "field"), BAD_INPUT)
def test_bad_input_is_an_error_on_its_field(alice, account, kind, changes, field):
    # given
    form = FORMS[kind](_data(kind, account.pk, **changes), user=alice)
    # when
    valid = form.is_valid()
    # then
    assert not valid
    assert field in form.errors, form.errors
    assert all(str(message).strip() for message in form.errors[field])
    assert form.config is None


@pytest.mark.parametrize(("kind", "field"), NUMBER_FIELDS)
@pytest.mark.parametrize("garbage", GARBAGE_NUMBERS)
def test_numbers_refuse_garbage(alice, account, kind, field, garbage):
    form = FORMS[kind](_data(kind, account.pk, **{field: garbage}), user=alice)
    assert not form.is_valid()
    assert field in form.errors


def test_messages_name_the_rule_in_plain_words(alice, account):
    tpsl = TpSlForm(_data("tpsl", account.pk, price="100000.25"), user=alice)
    assert not tpsl.is_valid()
    assert "multiple of 0.5 USD" in tpsl.errors["price"][0]
    entry = AutoEntryForm(_data("auto_entry", account.pk, leverage="101"), user=alice)
    assert not entry.is_valid()
    assert entry.errors["leverage"] == ["Must be from 1 to 100."]
    entry = AutoEntryForm(_data("auto_entry", account.pk, quantity="500001"), user=alice)
    assert not entry.is_valid()
    assert entry.errors["quantity"] == ["Must be from 1 to 500,000."]


def test_another_users_account_is_not_a_choice(alice, bob, make_account):
    bobs = make_account(bob, label="bob-main")
    form = MarginGuardForm(_data("margin_guard", bobs.pk), user=alice)
    assert not form.is_valid()
    assert "account" in form.errors
    assert "bob-main" not in str(form["account"])


@pytest.mark.parametrize(
    ("kind", "changes", "expected"),
    [
        (
            "margin_guard",
            {"action": "reduce", "reduce_percent": "25", "trade_ids": "t-1, t-2"},
            MarginGuardConfig(
                trigger="liquidation_distance",
                threshold=Decimal(5),
                action="reduce",
                reduce_percent=Decimal(25),
                cooldown_seconds=60,
                trade_ids=("t-1", "t-2"),
            ),
        ),
        (
            "margin_guard",
            {
                "trigger": "margin_ratio",
                "threshold": "80",
                "action": "add_margin",
                "add_margin_mode": "restore_distance",
                "target_distance": "12.5",
                "max_added_per_trade": "50000",
            },
            MarginGuardConfig(
                trigger="margin_ratio",
                threshold=Decimal(80),
                action="add_margin",
                add_margin_mode="restore_distance",
                target_distance=Decimal("12.5"),
                max_added_per_trade=50000,
                cooldown_seconds=60,
            ),
        ),
        (
            "tpsl",
            {"action": "trailing_stoploss", "price": "", "trailing_distance": "500"},
            TpSlConfig(
                direction="profit",
                trigger_percent=Decimal(10),
                action="trailing_stoploss",
                trailing_distance=Decimal(500),
            ),
        ),
        (
            "auto_entry",
            {"quantity": "", "margin": "20000", "stoploss_percent": "5", "repeat_count": "2"},
            AutoEntryConfig(
                side="buy",
                leverage=Decimal(10),
                quantity=None,
                margin=20000,
                trigger="price_below",
                trigger_price=Decimal(90000),
                stoploss_percent=Decimal(5),
                repeat_count=2,
            ),
        ),
    ],
)
def test_valid_input_builds_the_engine_config(alice, account, kind, changes, expected):
    form = FORMS[kind](_data(kind, account.pk, **changes), user=alice)
    assert form.is_valid(), form.errors
    assert form.config == expected
    assert form.cleaned_data["account"] == account


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_every_field_is_in_a_group(kind):
    form_class = FORMS[kind]
    grouped = [name for group in form_class.groups for name in group.names]
    assert sorted(grouped) == sorted(form_class.base_fields)
    assert set(form_class.config_field_names()) <= set(grouped)


def test_reduce_group_says_there_is_no_partial_close(alice):
    form = MarginGuardForm(user=alice)
    notes = " ".join(str(group.note) for group in form.field_groups())
    assert "no partial close" in notes


@pytest.mark.parametrize("kind", sorted(FORMS))
def test_edit_form_starts_from_the_stored_settings(alice, account, kind):
    # given an automation created from valid data
    form = FORMS[kind](
        _data(kind, account.pk, trade_ids="t-1 t-2") if kind != "auto_entry" else _data(kind, account.pk), user=alice
    )
    assert form.is_valid(), form.errors
    assert form.config is not None
    automation = management.automation_create(
        account=account, name="x", kind=kind, config=form.config, max_price_age_seconds=15
    )
    # when the edit form is rendered and posted back unchanged
    edit = FORMS[kind](user=alice, automation=automation)
    posted = {name: "" if edit[name].value() is None else str(edit[name].value()) for name in edit.fields}
    again = FORMS[kind](posted, user=alice, automation=automation)
    # then it builds the same config, on the same account
    assert again.is_valid(), again.errors
    assert again.config == form.config
    assert again.cleaned_data["account"] == account


def test_edit_form_keeps_the_account(alice, account, make_account):
    other = make_account(alice, label="other")
    form = MarginGuardForm(_data("margin_guard", account.pk), user=alice)
    assert form.is_valid()
    assert form.config is not None
    automation = management.automation_create(account=account, name="g", kind="margin_guard", config=form.config)
    edit = MarginGuardForm(_data("margin_guard", other.pk), user=alice, automation=automation)
    assert edit.is_valid(), edit.errors
    assert edit.cleaned_data["account"] == account


def test_audit_filter_form_only_offers_own_rows(alice, bob, account, make_account):
    bobs = make_account(bob, label="bob-main")
    bobs_automation = Automation.objects.create(account=bobs, name="b", kind="margin_guard", config={})
    form = AuditFilterForm({"account": str(bobs.pk), "automation": str(bobs_automation.pk), "kind": "x"}, user=alice)
    filters = form.filters()
    assert {"account", "automation", "kind"} <= set(form.errors)
    assert filters.account_id is None
    assert filters.automation_id is None
    assert filters.kind is None


@pytest.mark.parametrize(("kind", "changes", "field"), UNUSED_INPUT)
def test_unused_settings_are_ignored(alice, account, kind, changes, field):
    form = FORMS[kind](_data(kind, account.pk, **changes), user=alice)
    assert form.is_valid(), form.errors
    assert form.config is not None
    assert getattr(form.config, field) is None
    assert not form.field_used(field)


def test_every_error_of_a_submit_at_once(alice, account):
    # A bad trade id, a bad threshold, a missing reduce percentage and a bad name: all four reported together.
    data = _data(
        "margin_guard", account.pk, name="", trade_ids="<bad>", threshold="150", action="reduce", cooldown_seconds="-1"
    )
    form = MarginGuardForm(data, user=alice)
    assert not form.is_valid()
    assert set(form.errors) >= {"name", "trade_ids", "threshold", "reduce_percent", "cooldown_seconds"}
    assert form.errors["threshold"] == ["Must be above 0 and below 100."]
    assert form.errors["reduce_percent"] == ["Required with this choice."]


def test_auto_entry_reports_size_and_exit_errors_together(alice, account):
    data = _data("auto_entry", account.pk, quantity="", leverage="101", stoploss="85000", stoploss_percent="5")
    form = AutoEntryForm(data, user=alice)
    assert not form.is_valid()
    assert set(form.errors) >= {"leverage", "quantity", "margin", "stoploss"}


def test_only_the_fields_of_the_chosen_action_are_shown(alice, account):
    form = MarginGuardForm(_data("margin_guard", account.pk, action="add_margin", add_margin_mode="fixed"), user=alice)
    shown = {item.field.name for group in form.field_groups() for item in group.fields if item.used}
    assert {"add_margin_mode", "add_margin_amount", "max_added_per_trade"} <= shown
    assert "reduce_percent" not in shown
    assert "target_distance" not in shown
    closing = MarginGuardForm(_data("margin_guard", account.pk), user=alice)
    groups = {str(g.title): g.used for g in closing.field_groups()}
    assert groups["Reduce"] is False
    assert groups["Add margin"] is False


def test_help_texts_come_from_the_rules(alice):
    form = AutoEntryForm(user=alice)
    assert "from 1 to 100" in str(form.fields["leverage"].help_text)
    assert "on the 0.5 USD tick" in str(form.fields["trigger_price"].help_text)
    assert "from 1 to 500,000" in str(form.fields["quantity"].help_text)
