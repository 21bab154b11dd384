"""What an automation kind is made of (docs/adr/0002-registries.md): one :class:`KindDef` per kind module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.utils.module_loading import import_string

from automations.engine_common import in_scope
from automations.specs import AccountState, FieldRule, KindConfig, MarketSnapshot, Memory, TradeState

if TYPE_CHECKING:
    from automations.decisions import Evaluation
    from automations.engine_common import Context
    from automations.forms import AutomationForm
    from automations.wording import TriggerNow

C = TypeVar("C", bound=KindConfig)


@dataclass(frozen=True)
class KindDef(Generic[C]):
    """One automation kind, everything the rest of the project learns about it.

    * ``key``: the stored ``Automation.kind`` value (never changes: rows hold it); ``label`` and ``description``
      are English, marked with ``gettext_noop`` and translated where shown.
    * ``config_type``: the frozen dataclass of its settings (validated in ``__post_init__``); ``rules`` the table of
      its settings (unit, range, when used) that the form and the summaries read.
    * ``evaluate``: the pure evaluator (``automations.engine.evaluate`` dispatches on the config's type).
    * ``summary`` / ``triggers_now``: the automation in words, and how far each trigger is from the market now.
    * ``form_path``: its Django form class, imported on first use (the forms read the models, which read this
      registry for their choices).
    * ``on_trades``: it manages running trades (its decisions are protective), rather than opening them.
    * ``rule_fields``: settings whose change makes it a new rule (its memory is reset on such an edit).
    """

    key: str
    label: str
    description: str
    config_type: type[C]
    rules: tuple[FieldRule, ...]
    evaluate: Callable[[Context, C, AccountState, Memory], Evaluation]
    summary: Callable[[C], str]
    triggers_now: Callable[[C, MarketSnapshot, tuple[TradeState, ...]], list[TriggerNow]]
    form_path: str
    on_trades: bool = True
    rule_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.config_type.kind != self.key:
            raise ValueError(f"{self.config_type.__name__}.kind is {self.config_type.kind!r}, not {self.key!r}")

    @cached_property
    def form(self) -> type[AutomationForm]:
        form: type[AutomationForm] = import_string(self.form_path)
        return form

    def rule(self, name: str) -> FieldRule | None:
        """The rule of setting ``name`` (``None`` for a field that is not a config setting)."""
        return next((r for r in self.rules if r.name == name), None)


AnyKind = KindDef[Any]


def per_trade(
    now: Callable[[C, MarketSnapshot, TradeState], TriggerNow],
) -> Callable[[C, MarketSnapshot, tuple[TradeState, ...]], list[TriggerNow]]:
    """``triggers_now`` of a kind that acts on running trades: one row per trade it may manage (its scope)."""

    def rows(config: C, market: MarketSnapshot, trades: tuple[TradeState, ...]) -> list[TriggerNow]:
        scope: tuple[str, ...] = getattr(config, "trade_ids", ())
        return [now(config, market, trade) for trade in trades if in_scope(trade, scope)]

    return rows
