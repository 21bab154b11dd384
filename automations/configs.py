"""JSON codec of the engine's typed configs: what ``Automation.config`` stores, validated on the way in and out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, fields
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import get_type_hints

from automations.specs import (
    AutoEntryConfig,
    AutomationConfig,
    AutomationKind,
    JSONValue,
    MarginGuardConfig,
    SpecError,
    TpSlConfig,
)

CONFIG_CLASSES: dict[str, type[MarginGuardConfig] | type[TpSlConfig] | type[AutoEntryConfig]] = {
    "margin_guard": MarginGuardConfig,
    "tpsl": TpSlConfig,
    "auto_entry": AutoEntryConfig,
}


@lru_cache(maxsize=8)
def _hints(cls: type) -> dict[str, object]:
    return get_type_hints(cls)


def _decode(name: str, hint: str, value: object) -> object:
    if value is None or value == "":
        return None
    if "Decimal" in hint:
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise SpecError(name, f"{name} must be a number.")
        try:
            number = Decimal(value)
        except InvalidOperation as exc:
            raise SpecError(name, f"{name} must be a number; got {value!r}.") from exc
        if not number.is_finite():
            raise SpecError(name, f"{name} must be a finite number.")
        return number
    if "tuple" in hint:
        if not isinstance(value, list | tuple):
            raise SpecError(name, f"{name} must be a list.")
        return tuple(str(v) for v in value)
    if "int" in hint:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(name, f"{name} must be a whole number.")
        return value
    return value


def config_from_json(kind: AutomationKind | str, data: Mapping[str, object]) -> AutomationConfig:
    """Build and validate the config of ``kind`` from stored JSON; raises ``SpecError`` naming the bad field."""
    cls = CONFIG_CLASSES.get(kind)
    if cls is None:
        raise SpecError("kind", f"Unknown automation kind {kind!r}.")
    if not isinstance(data, Mapping):
        raise SpecError("config", "The configuration must be an object.")
    hints = _hints(cls)  # type: ignore[arg-type]  # classes are hashable
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise SpecError(sorted(unknown)[0], f"Unknown setting {sorted(unknown)[0]!r}.")
    kwargs = {name: _decode(name, str(hints[name]), data[name]) for name in known if name in data}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    for f in fields(cls):
        # An optional setting without a default (AutoEntry's quantity xor margin) is stored by leaving it out.
        if (
            f.name not in kwargs
            and f.default is MISSING
            and f.default_factory is MISSING
            and "None" in str(hints[f.name])
        ):
            kwargs[f.name] = None
    try:
        return cls(**kwargs)  # type: ignore[arg-type]
    except TypeError as exc:
        missing = next((f.name for f in fields(cls) if f.name in str(exc)), "config")
        raise SpecError(missing, f"{missing} is required.") from exc


def config_to_json(config: AutomationConfig) -> dict[str, JSONValue]:
    """JSON-safe dict of a config: Decimals as strings, tuples as lists, unset values left out."""
    data: dict[str, JSONValue] = {}
    for f in fields(config):
        value = getattr(config, f.name)
        if value is None:
            continue
        if isinstance(value, Decimal):
            data[f.name] = str(value)
        elif isinstance(value, tuple):
            if value:
                data[f.name] = list(value)
        else:
            data[f.name] = value
    return data
