"""The automation kinds: one module per kind, registered here once (docs/adr/0002-registries.md).

Each module (``margin_guard``, ``tpsl``, ``auto_entry``) holds its config type, its settings table, its pure
evaluator, its sentences and a ``KIND``; the models (``Automation.Kind`` choices), the JSON codec, the engine, the
forms, the views, the admin, the preview and the backtest all read this registry. A new kind is one new module
with a ``KIND`` and its form, plus one line in ``KINDS`` below (the new ``Automation.Kind`` choice is a migration
that ``makemigrations`` writes). ``tests/automations/test_kinds.py`` registers a toy fourth kind to show it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from automations.kinds import auto_entry, margin_guard, tpsl
from automations.kinds.base import AnyKind, KindDef
from automations.specs import FieldRule, KindConfig, SpecError

KINDS: dict[str, AnyKind] = {k.key: k for k in (margin_guard.KIND, tpsl.KIND, auto_entry.KIND)}
_BY_CONFIG: dict[type, AnyKind] = {k.config_type: k for k in KINDS.values()}


def kind_for(key: str) -> AnyKind:
    """The kind ``key``; raises ``SpecError`` (field ``kind``) for an unknown one."""
    kind = KINDS.get(key)
    if kind is None:
        raise SpecError("kind", f"Unknown automation kind {key!r}.")
    return kind


def kind_of_config(config: KindConfig) -> AnyKind:
    """The kind of a config object; raises ``SpecError`` for a type no kind declares."""
    kind = _BY_CONFIG.get(type(config))
    if kind is None:
        raise SpecError("config", f"Unknown config type {type(config).__name__}.")
    return kind


def field_rule(kind: str, name: str) -> FieldRule | None:
    """The rule of setting ``name`` of ``kind`` (``None`` for an unknown kind or a field that is not a setting)."""
    definition = KINDS.get(kind)
    return definition.rule(name) if definition is not None else None


def field_rules() -> dict[str, tuple[FieldRule, ...]]:
    """Every kind's settings table."""
    return {key: kind.rules for key, kind in KINDS.items()}


@contextmanager
def registered(kind: AnyKind) -> Iterator[AnyKind]:
    """Register ``kind`` for the duration of a ``with`` block (tests: a toy kind)."""
    KINDS[kind.key] = kind
    _BY_CONFIG[kind.config_type] = kind
    try:
        yield kind
    finally:
        del KINDS[kind.key]
        del _BY_CONFIG[kind.config_type]


__all__ = ["KINDS", "AnyKind", "KindDef", "field_rule", "field_rules", "kind_for", "kind_of_config", "registered"]
