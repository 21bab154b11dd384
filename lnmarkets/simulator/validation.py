"""Shape validation of request bodies and queries: wrong types, extra fields or bad numbers → 400 BAD_REQUEST."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, cast

from lnmarkets.maths import Side
from lnmarkets.simulator.errors import bad_request

MAX_PRICE = Decimal(100_000_000)


def body_object(body: Any, allowed: set[str], required: set[str]) -> dict[str, Any]:
    """A JSON object with only ``allowed`` keys and every ``required`` key."""
    if not isinstance(body, dict):
        raise bad_request("Body must be a JSON object")
    extra = set(body) - allowed
    if extra:
        raise bad_request(f"Unexpected field(s): {', '.join(sorted(extra))}")
    missing = required - {key for key, value in body.items() if value is not None}
    if missing:
        raise bad_request(f"Missing field(s): {', '.join(sorted(missing))}")
    return cast(dict[str, Any], body)


def as_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (a JSON number without fraction, not a bool, not a string)."""
    if isinstance(value, bool):
        raise bad_request(f"{name} must be an integer")
    if isinstance(value, Decimal):
        if value != value.to_integral_value():
            raise bad_request(f"{name} must be an integer")
        value = int(value)
    if not isinstance(value, int):
        raise bad_request(f"{name} must be an integer")
    if minimum is not None and value < minimum:
        raise bad_request(f"{name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise bad_request(f"{name} must be <= {maximum}")
    return value


def as_decimal(value: Any, name: str) -> Decimal:
    """A finite JSON number as ``Decimal``."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise bad_request(f"{name} must be a number")
    result = Decimal(value)
    if not result.is_finite():
        raise bad_request(f"{name} must be finite")
    return result


def as_price(value: Any, name: str) -> Decimal:
    """A price: > 0, ≤ 100 000 000, on the 0.5 tick."""
    price = as_decimal(value, name)
    if price <= 0 or price > MAX_PRICE:
        raise bad_request(f"{name} must be > 0 and <= {MAX_PRICE}")
    if price % Decimal("0.5") != 0:
        raise bad_request(f"{name} must be a multiple of 0.5")
    return price


def as_str(value: Any, name: str, *, max_length: int = 256) -> str:
    if not isinstance(value, str):
        raise bad_request(f"{name} must be a string")
    if len(value) > max_length:
        raise bad_request(f"{name} must be at most {max_length} characters")
    return value


def as_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    text = as_str(value, name)
    if text not in choices:
        raise bad_request(f"{name} must be one of {', '.join(choices)}")
    return text


def trade_id(body: Mapping[str, Any]) -> str:
    return as_str(body["id"], "id", max_length=64)


@dataclass(frozen=True)
class OrderRequest:
    """A new isolated trade, shape-checked; the business rules (§9.7) are applied by the Exchange."""

    type: Literal["market", "limit"]
    side: Side
    leverage: Decimal
    quantity: int | None = None
    margin: int | None = None
    price: Decimal | None = None
    stoploss: Decimal | None = None
    takeprofit: Decimal | None = None
    stoploss_mode: Literal["fixed", "trailing"] = "fixed"
    client_id: str | None = None


ORDER_FIELDS = {
    "type",
    "side",
    "leverage",
    "quantity",
    "margin",
    "price",
    "stoploss",
    "stoplossMode",
    "takeprofit",
    "clientId",
}


def parse_order(body: Any) -> OrderRequest:
    data = body_object(body, ORDER_FIELDS, {"type", "side", "leverage"})
    order_type = cast(Literal["market", "limit"], as_choice(data["type"], "type", ("market", "limit")))
    side = cast(Side, as_choice(data["side"], "side", ("buy", "sell")))
    leverage = as_decimal(data["leverage"], "leverage")
    if leverage < 1 or leverage > 100:
        raise bad_request("leverage must be between 1 and 100")
    quantity = data.get("quantity")
    margin = data.get("margin")
    if (quantity is None) == (margin is None):
        raise bad_request("Exactly one of quantity and margin is required")
    price = data.get("price")
    if order_type == "limit" and price is None:
        raise bad_request("price is required for a limit order")
    if order_type == "market" and price is not None:
        raise bad_request("price is not allowed for a market order")
    mode = as_choice(data.get("stoplossMode", "fixed"), "stoplossMode", ("fixed", "trailing"))
    stoploss = data.get("stoploss")
    takeprofit = data.get("takeprofit")
    client_id = data.get("clientId")
    return OrderRequest(
        type=order_type,
        side=side,
        leverage=leverage,
        quantity=None if quantity is None else as_int(quantity, "quantity", minimum=1, maximum=10**9),
        margin=None if margin is None else as_int(margin, "margin", minimum=1, maximum=10**12),
        price=None if price is None else as_price(price, "price"),
        stoploss=None if stoploss is None else _stoploss_value(stoploss, mode),
        takeprofit=None if takeprofit is None else as_price(takeprofit, "takeprofit"),
        stoploss_mode=cast(Literal["fixed", "trailing"], mode),
        client_id=None if client_id is None else as_str(client_id, "clientId", max_length=64),
    )


def _stoploss_value(value: Any, mode: str) -> Decimal:
    if mode == "trailing":
        return trailing_distance(value)
    return as_price(value, "stoploss")


def trailing_distance(value: Any) -> Decimal:
    distance = as_decimal(value, "value")
    if distance < Decimal("0.001") or distance > 10:
        raise bad_request("A trailing distance must be between 0.001 and 10")
    return distance


def parse_limit(value: str | None) -> int:
    if value is None:
        return 1000
    if not value.isdigit() or len(value) > 6:
        raise bad_request("limit must be an integer between 1 and 1000")
    return as_int(int(value), "limit", minimum=1, maximum=1000)
