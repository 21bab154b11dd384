"""The kind registry: every place that used to learn a kind reads ``automations.kinds``; a toy fourth kind,
defined in this one module and registered once, appears in the codec, the engine, the words, the form and the
pages without touching anything else."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import ClassVar, Literal, get_args

import pytest
from django import forms
from django.urls import reverse

from automations.configs import config_from_json, config_to_json
from automations.decisions import ClosePosition, Evaluation
from automations.describe import TriggerNow, summary, triggers_now
from automations.engine import evaluate
from automations.engine_common import Context
from automations.forms import AutomationForm, FieldGroup, form_class_for
from automations.kinds import KINDS, KindDef, field_rule, kind_for, kind_of_config, registered
from automations.models import Automation
from automations.specs import (
    AccountState,
    AutomationSpec,
    FieldRule,
    KindConfig,
    MarketSnapshot,
    Memory,
    SpecError,
    TradeState,
    one_of,
)

from .builders import NOW, account, market, trade

ToyMood = Literal["calm", "bold"]


@dataclass(frozen=True, slots=True)
class ToyConfig(KindConfig):
    kind: ClassVar[str] = "toy"
    mood: ToyMood
    below: Decimal

    def __post_init__(self) -> None:
        one_of(self.mood, "mood", "Mood", ToyMood)
        if self.below <= 0:
            raise SpecError("below", "Below must be greater than 0.")


def _toy_evaluate(ctx: Context, config: ToyConfig, state: AccountState, memory: Memory) -> Evaluation:
    """Close every managed trade when the last price is under ``below``."""
    if ctx.market.last_price >= config.below:
        return Evaluation((), memory)
    closes = tuple(ClosePosition(trade_id=t.id, reason="toy") for t in state.trades if t.managed)
    return Evaluation(closes, memory)


def _toy_summary(config: ToyConfig) -> str:
    return f"Closes everything below {config.below} ({config.mood})."


def _toy_now(config: ToyConfig, market: MarketSnapshot, trades: tuple[TradeState, ...]) -> list[TriggerNow]:
    return [TriggerNow("market", "toy", market.last_price < config.below, config.below)]


class ToyForm(AutomationForm):
    kind = "toy"
    config_class = ToyConfig
    groups = (FieldGroup("Toy", ("name", "account", "mood", "below", "max_price_age_seconds")),)
    mood = forms.ChoiceField(choices=[(v, v) for v in get_args(ToyMood)])
    below = forms.DecimalField()


TOY = KindDef(
    key="toy",
    label="Toy kind",
    description="A fourth kind defined in one test module.",
    config_type=ToyConfig,
    rules=(FieldRule("mood", "choice", required=True), FieldRule("below", "price", required=True)),
    evaluate=_toy_evaluate,
    summary=_toy_summary,
    triggers_now=_toy_now,
    form_path="tests.automations.test_kinds.ToyForm",
)


@pytest.fixture
def toy():
    with registered(TOY) as kind:
        yield kind
    assert "toy" not in KINDS


def test_the_three_kinds_are_registered_with_their_stored_values():
    assert list(KINDS) == ["margin_guard", "tpsl", "auto_entry"]
    assert Automation.Kind.values == list(KINDS)
    assert [str(label) for label in Automation.Kind.labels] == [k.label for k in KINDS.values()]
    for key, kind in KINDS.items():
        assert kind.config_type.kind == key
        assert kind.form.kind == key
        assert kind.form.config_class is kind.config_type


def test_a_config_type_must_name_its_own_kind():
    with pytest.raises(ValueError, match="not 'other'"):
        replace(TOY, key="other")


def test_unknown_kinds_are_clear_errors():
    with pytest.raises(SpecError, match="Unknown automation kind"):
        kind_for("nope")
    with pytest.raises(SpecError, match="Unknown config type"):
        kind_of_config(ToyConfig("calm", Decimal(1)))
    with pytest.raises(SpecError, match="Unknown automation kind"):
        config_from_json("nope", {})


def test_a_toy_fourth_kind_reaches_codec_engine_words_and_rules(toy):
    config = ToyConfig("bold", Decimal(95000))
    assert config_from_json("toy", config_to_json(config)) == config
    with pytest.raises(SpecError) as bad:
        config_from_json("toy", {"mood": "shy", "below": "1"})
    assert bad.value.field == "mood"
    assert field_rule("toy", "below") is not None
    spec = AutomationSpec(1, "toy", config)
    state = account(trade(trade_id="t1"))
    assert evaluate(spec, market(96000), state, NOW).decisions == ()
    decisions = evaluate(spec, market(94000, age=1), state, NOW).decisions
    assert decisions == (ClosePosition(trade_id="t1", reason="toy"),)
    assert summary(config) == "Closes everything below 95000 (bold)."
    assert triggers_now(config, market(94000), ())[0].met


def test_a_toy_fourth_kind_has_its_form_and_pages(toy, client, alice, make_account):
    assert form_class_for("toy") is ToyForm
    owned = make_account(owner=alice)
    form = ToyForm(
        {"name": "t", "account": owned.pk, "mood": "calm", "below": "90000", "max_price_age_seconds": "15"},
        user=alice,
    )
    assert form.is_valid(), form.errors
    assert form.config == ToyConfig("calm", Decimal(90000))
    client.force_login(alice)
    page = client.get(reverse("automations:choose-kind")).content.decode()
    assert "Toy kind" in page
    assert "A fourth kind defined in one test module." in page
    assert reverse("automations:create", args=["toy"]) in page
    assert client.get(reverse("automations:create", args=["toy"])).status_code == 200
