"""JSON and time encoding shared by REST, Stream and control (Decimal in, Decimal/int out, ISO times)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from lnmarkets.simulator.errors import bad_request

MAX_JSON_BYTES = 64 * 1024
MAX_INT = 10**15


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > 16:
        raise ValueError("number too large")
    return int(text)


def _parse_float(text: str) -> Decimal:
    if len(text) > 40:
        raise ValueError("number too long")
    value = Decimal(text)
    if not value.is_finite() or abs(value) > MAX_INT:
        raise ValueError("number out of range")
    return value


def loads(text: str | bytes) -> Any:
    """Parse request JSON: floats become ``Decimal``; NaN/Infinity/huge numbers are refused (→ 400)."""
    if len(text) > MAX_JSON_BYTES:
        raise bad_request("Request body too large")
    try:
        return json.loads(text, parse_float=_parse_float, parse_int=_parse_int, parse_constant=_reject_constant)
    except (ValueError, InvalidOperation, RecursionError) as exc:
        raise bad_request(f"Malformed JSON: {exc}") from exc


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(str(value))
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: object) -> str:
    """Compact JSON; ``Decimal`` prices become JSON numbers (int when integral)."""
    return json.dumps(value, default=_default, separators=(",", ":"))


def iso(moment: datetime) -> str:
    """``2026-11-26T12:00:00.000Z`` (UTC, milliseconds)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def ms(moment: datetime) -> int:
    """Integer milliseconds since the epoch (Stream payloads)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_iso(text: str) -> datetime:
    """An ISO-8601 time from a query parameter; naive times are refused."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise bad_request(f"Invalid ISO time: {text!r}") from exc
    if moment.tzinfo is None:
        raise bad_request(f"Time must carry a timezone: {text!r}")
    return moment.astimezone(UTC)
