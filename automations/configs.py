"""JSON codec of the kinds' typed configs: what ``Automation.config`` stores, validated on the way in and out.

Decoding is pydantic's: each kind's config dataclass gets a strict model of its stored form (numbers as strings or
integers, never floats or booleans; lists of trade ids; unknown keys refused), built once from the dataclass's own
fields and types; the dataclass's ``__post_init__`` then checks the rules. Every failure is a ``SpecError`` naming
the field, so a bad stored config is a clear message, never a 500.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import MISSING, fields
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError, create_model

from automations.kinds import kind_for
from automations.specs import AutomationConfig, AutomationKind, JSONValue, KindConfig, SpecError


def _no_float(value: object) -> object:
    if isinstance(value, bool | float):
        raise ValueError("must be a number written as a string or a whole number")  # noqa: TRY004 (pydantic wants a ValueError)
    return value


_NUMBER = Annotated[Decimal, BeforeValidator(_no_float)]
_WHOLE = Annotated[int, Strict()]


def _stored_type(hint: object) -> Any:
    """The pydantic type of a stored value of a config field typed ``hint`` (choices stay strings: the config's own
    check names the allowed values)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [a for a in get_args(hint) if a is not type(None)]
        return _stored_type(inner[0]) | None if len(inner) == 1 else Any
    if hint is Decimal:
        return _NUMBER
    if hint is int:
        return _WHOLE
    if origin is tuple:
        return tuple[str, ...]
    return str


@lru_cache(maxsize=32)
def _model(config_type: type[KindConfig]) -> type[BaseModel]:
    hints = get_type_hints(config_type)
    definitions: dict[str, Any] = {f.name: (_stored_type(hints[f.name]) | None, None) for f in fields(config_type)}
    return create_model(
        f"Stored{config_type.__name__}",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        **definitions,
    )


def _spec_error(exc: ValidationError) -> SpecError:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error.get("loc") else "config"
    if error.get("type") == "extra_forbidden":
        return SpecError(name, f"Unknown setting {name!r}.")
    return SpecError(name, f"{name}: {error.get('msg', 'invalid value')}.")


def config_from_json(kind: AutomationKind, data: Mapping[str, object]) -> AutomationConfig:
    """Build and validate the config of ``kind`` from stored JSON; raises ``SpecError`` naming the bad field."""
    config_type = kind_for(kind).config_type
    if not isinstance(data, Mapping):
        raise SpecError("config", "The configuration must be an object.")
    try:
        model = _model(config_type)  # type: ignore[arg-type]  # classes are hashable
        stored = model.model_validate({k: v for k, v in data.items() if v not in (None, "")})
    except ValidationError as exc:
        raise _spec_error(exc) from exc
    kwargs: dict[str, Any] = {}
    for f in fields(config_type):
        value = getattr(stored, f.name)
        if value is not None:
            kwargs[f.name] = value
        elif f.default is MISSING and f.default_factory is MISSING:
            # An optional setting without a default (Auto Entry's quantity xor margin) is stored by leaving it out;
            # a required one left out is reported by name.
            if type(None) not in get_args(get_type_hints(config_type)[f.name]):
                raise SpecError(f.name, f"{f.name} is required.")
            kwargs[f.name] = None
    config: AutomationConfig = config_type(**kwargs)
    return config


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
