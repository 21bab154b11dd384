"""Fixtures for automations against the in-process simulator: a paper account wired to it, and helpers."""

from __future__ import annotations

from decimal import Decimal

from accounts.models import ExchangeAccount
from automations.configs import config_to_json
from automations.engine import AutoEntryConfig, MarginGuardConfig
from automations.models import Automation


def margin_guard(account: ExchangeAccount, **overrides: object) -> Automation:
    config = MarginGuardConfig(
        trigger="liquidation_distance",
        threshold=Decimal(overrides.pop("threshold", "5")),  # type: ignore[arg-type]
        action=overrides.pop("action", "close"),  # type: ignore[arg-type]
        cooldown_seconds=0,
        **overrides,  # type: ignore[arg-type]
    )
    return Automation.objects.create(account=account, name="guard", kind="margin_guard", config=config_to_json(config))


def auto_entry(account: ExchangeAccount, **overrides: object) -> Automation:
    fields: dict[str, object] = {"side": "buy", "leverage": Decimal(10), "quantity": 100, "margin": None}
    fields["trigger"] = "immediate"
    fields.update(overrides)
    config = AutoEntryConfig(**fields)  # type: ignore[arg-type]
    return Automation.objects.create(account=account, name="entry", kind="auto_entry", config=config_to_json(config))
